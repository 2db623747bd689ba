"""ONNX models exported with a fixed batch axis: measured at that batch only, refused up front otherwise."""
import numpy as np
import pytest
import torch

from harness.bench import BenchConfig, fit_fixed_batch, onnx_sources
from harness.errors import OptionError
from harness.measure.accuracy import predict


class _Tiny(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = torch.nn.Conv1d(2, width, 3)
        self.head = torch.nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.conv(x).mean(-1))


def _sources(specs):
    return onnx_sources(specs, (2, 20), None, task="t")


def _export(path, batch, dynamic=False):
    torch.onnx.export(_Tiny(4).eval(), (torch.zeros(batch, 2, 20),), str(path), input_names=["x"],
                      output_names=["y"], dynamo=False, dynamic_axes={"x": {0: "n"}} if dynamic else None)
    return path


def test_a_fixed_batch_model_is_measured_at_its_batch_only(tmp_path):
    specs = {"teacher": _export(tmp_path / "t.onnx", 1), "student": _export(tmp_path / "s.onnx", 1)}
    cfg = fit_fixed_batch(BenchConfig(), _sources(specs), explicit_batch=False, explicit_throughput=False)
    assert cfg.batch_sizes == [1] and cfg.throughput_batch_sizes == [1] and cfg.fixed_batch == 1


def test_dynamic_models_keep_the_batch_sweep(tmp_path):
    specs = {"teacher": _export(tmp_path / "t.onnx", 1, dynamic=True), "student": _export(tmp_path / "s.onnx", 1, True)}
    cfg = BenchConfig()
    assert fit_fixed_batch(cfg, _sources(specs), explicit_batch=False, explicit_throughput=False) == cfg


def test_asked_batch_sizes_a_fixed_model_cannot_take_are_refused(tmp_path):
    specs = {"teacher": _export(tmp_path / "t.onnx", 4, dynamic=True), "student": _export(tmp_path / "s.onnx", 4)}
    with pytest.raises(OptionError, match="student take\\(s\\) a fixed batch of 4.*use --batch-sizes 4"):
        fit_fixed_batch(BenchConfig(batch_sizes=[1, 8]), _sources(specs), explicit_batch=True, explicit_throughput=False)
    specs["teacher"] = _export(tmp_path / "t2.onnx", 2)
    with pytest.raises(OptionError, match="different fixed batch sizes"):
        fit_fixed_batch(BenchConfig(), _sources(specs), explicit_batch=False, explicit_throughput=False)


def test_cli_refuses_before_any_work(capsys, tmp_path):
    from harness.cli import main

    t, s = _export(tmp_path / "t.onnx", 1), _export(tmp_path / "s.onnx", 1)
    code = main(["bench", "--onnx", f"teacher={t}", "--onnx", f"student={s}", "--batch-sizes", "1,8",
                 "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and "use --batch-sizes 1" in err and not (tmp_path / "r.json").exists()


def test_accuracy_pads_the_last_chunk_for_a_fixed_batch_model():
    class FixedFour:
        def run(self, x):
            assert x.shape[0] == 4, x.shape  # the model only takes 4
            return np.stack([x[:, 0, 0], -x[:, 0, 0]], axis=1)

    X = np.zeros((10, 1, 3), np.float32)
    X[:, 0, 0] = np.where(np.arange(10) % 3 == 0, 1.0, -1.0)
    pred = predict(FixedFour(), X, 4, fixed_batch=True)
    assert pred.tolist() == [0 if i % 3 == 0 else 1 for i in range(10)]


def test_int8_variant_of_a_fixed_batch_model_calibrates_in_its_batch(tmp_path):
    from pathlib import Path

    from harness.bench import ModelSource
    from harness.variants import VariantFailure, VariantSettings, build_variant

    class Train:
        X_train = np.random.default_rng(0).standard_normal((37, 2, 20)).astype(np.float32)  # 37: not a multiple
        y_train = np.arange(37) % 3

    for batch in (1, 4):
        path = _export(tmp_path / f"b{batch}.onnx", batch)
        src = ModelSource(task="t", role="student", onnx=Path(path), input_shape=(2, 20), fixed_batch=batch)
        out = build_variant(src, "int8", Train(), VariantSettings(calibration_samples=37))
        assert not isinstance(out, VariantFailure), out.reason
        assert out.role == "student@int8" and Path(out.onnx).is_file()
