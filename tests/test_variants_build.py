"""ONNX variants (harness/variants.py): int8 static and dynamic quantisation as models of their own."""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.bench import BenchConfig, ModelSource, add_variants, bench_models
from harness.cli import main
from harness.errors import OptionError
from harness.export import export_onnx
from harness.metrics import AccuracyMetrics
from harness.results import load_results, write_results
from harness.variants import (VariantFailure, VariantSettings, build_variant, build_variants, calibration_indices,
                              variant_path)

sys.path.insert(0, str(Path(__file__).parent))
from conftest import make_npz  # noqa: E402
from tiny_models import Tiny1d  # noqa: E402

FAST = ["--quick", "--no-history", "--quiet", "--batch-sizes", "1", "--threads", "1", "--processes", "1"]


class TrainOnly:
    """A dataset whose test split must never be read: calibration uses the training split only."""

    def __init__(self, X_train, y_train):
        self.X_train, self.y_train = X_train, y_train

    @property
    def X_test(self):
        raise AssertionError("calibration read X_test")

    @property
    def y_test(self):
        raise AssertionError("calibration read y_test")


def _data(n_train=60, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n_train) % classes
    t = np.linspace(0, 1, 48)
    X = np.stack([np.stack([np.sin(2 * np.pi * (c + 1) * 2 * t + rng.uniform(0, 6.28)),
                            np.cos(2 * np.pi * (c + 1) * t)]) for c in y])
    return (X + 0.1 * rng.standard_normal(X.shape)).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A briefly trained Tiny1d (conv, batch norm, linear) exported to ONNX, and its training data."""
    root = tmp_path_factory.mktemp("variants")
    X, y = _data()
    torch.manual_seed(0)
    model = Tiny1d(cin=2, width=8, classes=3)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()
    model.eval()
    path = export_onnx(model, (2, 48), root / "tiny.onnx", exporter="torchscript")
    src = ModelSource(task="tiny", role="student_kd", onnx=Path(path), input_shape=(2, 48), params=123, macs=456)
    return src, X, y


def _top1(path, X):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})[0].argmax(-1)


# -- calibration data -------------------------------------------------------------------------------
def test_calibration_is_stratified_seeded_and_capped():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    idx = calibration_indices(y, 20, seed=0)
    assert len(idx) == 20 and len(set(idx)) == 20
    assert np.bincount(y[idx]).tolist() == [12, 6, 2]  # in proportion to the training counts
    assert np.array_equal(idx, calibration_indices(y, 20, seed=0))
    assert not np.array_equal(idx, calibration_indices(y, 20, seed=1))
    assert len(calibration_indices(y, 1000)) == 100  # capped at the training size


def test_int8_calibrates_on_training_data_only(tiny, monkeypatch):
    import logging

    src, X, y = tiny
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in the CLI: the root logger unconfigured
    out = build_variant(src, "int8", TrainOnly(X, y), VariantSettings(calibration_samples=32))
    assert not isinstance(out, VariantFailure), out
    assert out.calibration["split"] == "train" and out.calibration["samples"] == 32
    assert root.handlers == []  # ONNX Runtime's root-level log calls did not configure it for good


def test_nan_test_split_does_not_reach_calibration(tiny):
    from harness.tasks.base import Dataset

    src, X, y = tiny
    data = Dataset(name="tiny", kind="1d", X_train=X, y_train=y, X_test=np.full_like(X, np.nan), y_test=y, classes=3)
    out = build_variant(src, "int8", data, VariantSettings())
    assert not isinstance(out, VariantFailure), out
    assert (_top1(out.onnx, X) == _top1(src.onnx, X)).mean() >= 0.8


def test_int8_is_qdq_and_agrees_with_fp32(tiny):
    import onnx

    src, X, y = tiny
    out = build_variant(src, "int8", TrainOnly(X, y), VariantSettings())
    assert out.role == "student_kd@int8" and out.base_role == "student_kd" and out.variant == "int8"
    assert out.checkpoint is None and (out.params, out.macs) == (123, 456)
    assert out.onnx == variant_path(src.onnx, "int8") and out.onnx.name == "tiny.int8.onnx"
    assert not list(out.onnx.parent.glob(".*.tmp*"))  # the temp file was renamed into place
    ops = {n.op_type for n in onnx.load(str(out.onnx)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "BatchNormalization" not in ops
    assert out.calibration == {**out.calibration, "method": "minmax", "samples": 60, "split": "train",
                               "per_channel": True, "format": "QDQ", "seed": 0}
    fp32, int8 = _top1(src.onnx, X), _top1(out.onnx, X)
    assert (fp32 == y).mean() >= 0.8  # the model learned something
    assert (int8 == fp32).mean() >= 0.8
    first = out.onnx.read_bytes()
    again = build_variant(src, "int8", TrainOnly(X, y), VariantSettings())
    assert again.onnx.read_bytes() == first  # seeded: the same calibration gives the same file


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_int8_other_calibration_methods(tiny, method):
    src, X, y = tiny
    out = build_variant(src, "int8", TrainOnly(X, y), VariantSettings(calibration=method, calibration_samples=30))
    assert not isinstance(out, VariantFailure), out
    assert out.calibration["method"] == method
    assert (_top1(out.onnx, X) == _top1(src.onnx, X)).mean() >= 0.6


def test_failures_are_reported_not_raised(tiny, monkeypatch):
    import onnxruntime.quantization as q

    src, X, y = tiny
    no_data = build_variant(src, "int8", None, VariantSettings())
    assert isinstance(no_data, VariantFailure) and "needs --data for calibration" in no_data.reason
    assert no_data.variant_role == "student_kd@int8"

    def broken(model_input, model_output, **kwargs):  # what ORT does when it writes a model it cannot load
        Path(model_output).write_bytes(b"not an onnx model")

    monkeypatch.setattr(q, "quantize_dynamic", broken)
    fail = build_variant(src, "int8-dynamic", TrainOnly(X, y), VariantSettings())
    assert isinstance(fail, VariantFailure) and fail.role == "student_kd" and fail.variant == "int8-dynamic"
    assert fail.reason.startswith("loading failed: ONNX Runtime cannot load it") and "\n" not in fail.reason
    assert not list(src.onnx.parent.glob(".*.tmp*"))
    out = build_variants([src], ("fp32", "int8-dynamic"), TrainOnly(X, y), VariantSettings())
    assert out[0] is src and isinstance(out[1], VariantFailure)


def test_a_failed_step_is_named_with_the_librarys_message(tiny, monkeypatch):
    """A bare exception (ORT's quantizer asserts without a message) names the step and where it was raised."""
    import onnxruntime.quantization as q
    import onnxruntime.quantization.shape_inference as si

    src, X, y = tiny

    def asserts(*args, **kwargs):
        raise AssertionError()  # what a library's bare `assert` raises (pytest rewrites asserts in tests)

    monkeypatch.setattr(si, "quant_pre_process", asserts)
    fail = build_variant(src, "int8", TrainOnly(X, y), VariantSettings())
    assert fail.reason.startswith("pre-processing (quant_pre_process: shape inference and graph optimisation) "
                                  "failed: AssertionError raised in test_variants_build.py:"), fail.reason
    assert "(asserts) with no message" in fail.reason
    monkeypatch.undo()

    def refuses(*args, **kwargs):
        raise ValueError("Unsupported model IR version: 11, max supported IR version: 10")

    monkeypatch.setattr(q, "quantize_static", refuses)
    fail = build_variant(src, "int8", TrainOnly(X, y), VariantSettings())
    assert fail.reason == ("calibration and quantisation (quantize_static) failed: ValueError: Unsupported model IR "
                           "version: 11, max supported IR version: 10")


# -- bench config and CLI ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, text", [
    ({"variants": ["int9"]}, "unknown variant 'int9'"),
    ({"variants": ["int8"]}, "must include fp32"),
    ({"variants": ["fp32", "fp32"]}, "given twice"),
    ({"variants": []}, "variants must be a list"),
    ({"calibration": "kl"}, "calibration"),
    ({"calibration_samples": 0}, "calibration samples"),
])
def test_bench_config_rejects_bad_variant_options(kwargs, text):
    with pytest.raises(OptionError, match=text):
        BenchConfig(**kwargs)


def test_bench_config_defaults():
    cfg = BenchConfig(variants=["fp32", "int8"])
    assert cfg.variants == ("fp32", "int8") and BenchConfig().variants == ("fp32",)
    assert (cfg.calibration, cfg.calibration_samples) == ("minmax", 256)


@pytest.mark.parametrize("opts", [["--variants", "fp32,int9"], ["--variants", "int8"], ["--calibration", "kl"],
                                  ["--calibration-samples", "0"], ["--calibration-samples", "x"]])
@pytest.mark.parametrize("command", ["bench", "run"])
def test_cli_bad_variant_options_one_line(capsys, tmp_path, opts, command):
    argv = [command, "--onnx", "a=x.onnx", *opts] if command == "bench" else [command, "--out", str(tmp_path), *opts]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("harness: error:"), err


# -- bench end to end -------------------------------------------------------------------------------
@pytest.mark.slow
def test_bench_onnx_with_variants_round_trips(capsys, tiny, tmp_path):
    src, X, y = tiny
    npz = tmp_path / "d.npz"
    np.savez(npz, X_train=X, y_train=y, X_test=X[:30], y_test=y[:30])
    out = tmp_path / "r.json"
    code = main(["bench", "--onnx", f"teacher={src.onnx}", "--data", str(npz), "--variants", "fp32,int8",
                 "--calibration-samples", "24", "--suites", "accuracy,latency,storage", "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    res = load_results(out)
    entry = res.models["teacher@int8"]
    assert entry["role"] == "teacher@int8" and entry["base_role"] == "teacher" and entry["variant"] == "int8"
    assert entry["available"] is True and entry["onnx_bytes"] > 0 and len(entry["onnx_sha256"]) == 64
    assert {k: entry["calibration"][k] for k in ("method", "samples", "split", "per_channel", "format", "seed")} == {
        "method": "minmax", "samples": 24, "split": "train", "per_channel": True, "format": "QDQ", "seed": 0}
    assert "variant" not in res.models["teacher"] and res.config["variant_failures"] == 0
    acc = {m.model: m.metrics for m in res.select(suite="accuracy")}
    assert isinstance(acc["teacher@int8"], AccuracyMetrics)
    assert acc["teacher@int8"].base_accuracy == acc["teacher"].accuracy and 0.5 <= acc["teacher@int8"].agreement <= 1
    assert acc["teacher"].agreement is None
    assert {m.model for m in res.select(suite="latency")} == {"teacher", "teacher@int8"}
    again = load_results(write_results(tmp_path / "copy.json", res))
    assert again.to_dict() == res.to_dict()
    doc = json.loads(out.read_text())
    m = next(m for m in doc["measurements"] if m["suite"] == "accuracy" and m["model"] == "teacher@int8")
    assert set(m["metrics"]) == {"accuracy", "correct", "n", "base_accuracy", "agreement"}


def test_bench_without_data_lists_failed_variant(capsys, tiny, tmp_path):
    src, _, _ = tiny
    out = tmp_path / "r.json"
    code = main(["bench", "--onnx", f"teacher={src.onnx}", "--variants", "fp32,int8", "--suites", "storage",
                 "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    res = load_results(out)
    assert res.models["teacher@int8"] == {"task": "onnx", "role": "teacher@int8", "base_role": "teacher",
                                          "variant": "int8", "available": False,
                                          "reason": res.models["teacher@int8"]["reason"]}
    assert "needs --data for calibration" in res.models["teacher@int8"]["reason"]
    assert res.config["variant_failures"] == 1
    assert sum("teacher@int8" in w for w in res.warnings) == 1
    assert not any(m.model == "teacher@int8" for m in res.measurements)


@pytest.mark.slow
def test_torch_backend_skips_variants(tmp_path):
    """A training run's sources: torch measures the fp32 models, onnxruntime also the variants."""
    npz = make_npz(tmp_path / "tiny.npz", "1d")
    assert main(["train", "--data", str(npz), "--epochs", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    from harness.bench import export_run, load_run, run_dataset

    summary, run_dir = load_run(tmp_path / "run")
    data = run_dataset(summary)
    cfg = BenchConfig(suites=["accuracy", "latency", "memory"], batch_sizes=[1], threads=1, quick=True, processes=1,
                      variants=["fp32", "int8"])
    sources = export_run(summary, run_dir, data, cfg)
    assert [s.role for s in sources] == ["teacher", "teacher@int8", "student_scratch", "student_scratch@int8",
                                         "student_kd", "student_kd@int8"]
    res = bench_models(sources, data, replace(cfg, suites=["accuracy", "latency"]))
    for suite in ("accuracy", "latency"):
        got = {(m.model, m.backend) for m in res.select(suite=suite)}
        assert ("student_kd@int8", "onnxruntime") in got and ("student_kd", "torch") in got
        assert not any(b == "torch" and "@" in r for r, b in got)
    assert (run_dir / "onnx" / "student_kd.int8.onnx").is_file()
    assert add_variants(sources[:1], data, BenchConfig()) == sources[:1]


def test_older_models_without_variant_fields_load():
    res = load_results(Path(__file__).parent / "data" / "results-2026-11-28-main-job.json")
    assert all("variant" not in e for e in res.models.values())
    for m in res.select(suite="accuracy"):
        assert m.metrics.base_accuracy is None and m.metrics.agreement is None and m.metrics.accuracy > 0


# -- int8-nncf: NNCF's post-training quantisation (extra .[openvino]) -----------------------------------
def test_int8_nncf_without_nncf_is_one_line(tiny, monkeypatch):
    src, X, y = tiny
    monkeypatch.setitem(sys.modules, "nncf", None)  # as if the package were not installed
    out = build_variant(src, "int8-nncf", TrainOnly(X, y), VariantSettings())
    assert isinstance(out, VariantFailure) and out.variant == "int8-nncf"
    assert "needs the nncf package" in out.reason and "pip install" in out.reason and "\n" not in out.reason
    assert not variant_path(src.onnx, "int8-nncf").exists()


def test_int8_nncf_is_qdq_calibrated_on_training_data_only(tiny, capsys):
    pytest.importorskip("nncf")
    import onnx

    src, X, y = tiny
    out = build_variant(src, "int8-nncf", TrainOnly(X, y), VariantSettings(calibration_samples=48))
    assert not isinstance(out, VariantFailure), out
    assert out.role == "student_kd@int8-nncf" and out.onnx.name == "tiny.int8-nncf.onnx"
    assert out.calibration["method"] == "nncf.quantize" and out.calibration["split"] == "train"
    assert out.calibration["samples"] == 48
    ops = {n.op_type for n in onnx.load(str(out.onnx)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert (_top1(out.onnx, X) == _top1(src.onnx, X)).mean() >= 0.8
    assert "Statistics collection" not in capsys.readouterr().out  # NNCF's progress bars stay off our stdout
