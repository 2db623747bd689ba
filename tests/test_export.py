"""ONNX export (dynamic batch, external data, atomic writes), parity check, and onnx_tools counts."""
from __future__ import annotations

import copy
import os

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import harness.export as export_mod
from harness.backends import Artifact, BackendOptions, get_backend
from harness.errors import HarnessError, ModelFileError, OptionError, ParityError
from harness.export import export_onnx, parity_check
from harness.onnx_tools import external_data_files, onnx_input_shape, onnx_macs, onnx_params, validate_onnx


from tiny_models import Tiny1d  # noqa: E402



class Tiny3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1, stride=(1, 2, 2))
        self.bn = nn.BatchNorm3d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4)))


class ConvLinear(nn.Module):
    """No padding, flatten: MACs by hand are easy."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 5, bias=True)  # L 20 -> 16
        self.fc = nn.Linear(4 * 16, 6)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


SHAPE_1D = (2, 32)
SHAPE_3D = (1, 4, 8, 8)


def _model(cls, seed=0):
    torch.manual_seed(seed)
    m = cls()
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _x(shape, n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape), dtype=np.float32)


def _ort(path):
    return get_backend("onnxruntime").open(Artifact("t", onnx=str(path)), BackendOptions())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The default (auto -> dynamo) exporter, once for the module."""
    model = _model(Tiny1d)
    path = export_onnx(model, SHAPE_1D, tmp_path_factory.mktemp("e") / "tiny1d.onnx")
    return model, path


def _exporter(path):
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}.get(
        "kd_harness.exporter"
    )


def test_dynamic_batch_default_exporter(exported):
    model, path = exported
    assert _exporter(path) == "dynamo"
    shape, name = onnx_input_shape(path)
    assert name == "input" and shape == (None, *SHAPE_1D)
    s = _ort(path)
    for b in (1, 7):
        x = _x(SHAPE_1D, b)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        out = s.run(x)
        assert out.shape == (b, 3)
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-4)
    assert s.sess.get_outputs()[0].name == "logits"
    # no per-node debug metadata (stack traces with absolute paths)
    assert not any(n.metadata_props for n in onnx.load(str(path)).graph.node)
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")]  # no temp leftovers


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_dynamic_batch_3d(tmp_path, exporter):
    model = _model(Tiny3d)
    path = export_onnx(model, SHAPE_3D, tmp_path / "tiny3d.onnx", exporter=exporter)
    assert _exporter(path) == exporter
    s = _ort(path)
    for b in (1, 7):
        x = _x(SHAPE_3D, b)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(s.run(x), ref, atol=1e-5, rtol=1e-4)


def test_fallback_to_torchscript(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("dynamo cannot trace this\nsecond line")

    monkeypatch.setattr(export_mod, "_export_dynamo", broken)
    model = _model(Tiny1d)
    path = export_onnx(model, SHAPE_1D, tmp_path / "m.onnx")
    assert _exporter(path) == "torchscript"
    monkeypatch.setattr(export_mod, "_export_torchscript", broken)
    with pytest.raises(HarnessError) as err:
        export_onnx(model, SHAPE_1D, tmp_path / "m2.onnx")
    msg = str(err.value)
    assert "\n" not in msg and "dynamo" in msg and "torchscript" in msg
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]  # failed export leaves nothing behind
    with pytest.raises(OptionError):
        export_onnx(model, SHAPE_1D, tmp_path / "m3.onnx", exporter="tflite")


def test_export_keeps_training_mode(tmp_path):
    model = _model(Tiny1d).train()
    export_onnx(model, SHAPE_1D, tmp_path / "m.onnx", exporter="torchscript")
    assert model.training


def test_external_data_export(tmp_path):
    from harness.measure.storage import storage_metrics

    model = _model(Tiny1d)
    path = export_onnx(model, SHAPE_1D, tmp_path / "m.onnx", external_data=True, exporter="torchscript")
    side = tmp_path / "m.onnx.data"
    assert side.is_file() and side.stat().st_size > 0
    assert external_data_files(path) == [side]
    assert oct(side.stat().st_mode & 0o777) == oct(path.stat().st_mode & 0o777)
    validate_onnx(path)
    x = _x(SHAPE_1D, 4)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_ort(path).run(x), ref, atol=1e-5, rtol=1e-4)
    st = storage_metrics(onnx=path)
    assert st["onnx_bytes"] == os.path.getsize(path) + os.path.getsize(side)
    assert st["onnx_external_bytes"] == os.path.getsize(side)
    # all weights (8*2*5 + 8 + 3*8 + 3 = 115 floats after BN folding) live in the side file
    assert os.path.getsize(side) == 115 * 4
    # re-exporting without external data removes the stale side file
    export_onnx(model, SHAPE_1D, path, exporter="torchscript")
    assert not side.exists() and external_data_files(path) == []


def test_parity_pass_and_fail(tmp_path, exported):
    model, path = exported
    x = _x(SHAPE_1D, 50)
    rep = parity_check(model, path, x, batch_size=16)
    assert rep["passed"] and rep["n"] == 50 and rep["top1_agreement"] == 1.0
    assert rep["max_abs_err"] < 1e-4 and set(rep) == {
        "max_abs_err", "max_rel_err", "top1_agreement", "n", "atol", "rtol", "passed"
    }
    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        perturbed.fc.weight.add_(0.5)
    bad = export_onnx(perturbed, SHAPE_1D, tmp_path / "perturbed.onnx", exporter="torchscript")
    with pytest.raises(ParityError) as err:
        parity_check(model, bad, x)
    msg = str(err.value)
    assert "\n" not in msg and "max_abs_err=" in msg and "n=50" in msg
    rep = parity_check(model, bad, x, strict=False)
    assert rep["passed"] is False and rep["max_abs_err"] > 1e-2
    with pytest.raises(OptionError):
        parity_check(model, path, _x((3, 32), 4))  # wrong input shape


def test_counts_by_hand(tmp_path):
    model = _model(ConvLinear)
    path = export_onnx(model, (3, 20), tmp_path / "cl.onnx", exporter="torchscript")
    conv = 16 * 4 * 3 * 5  # out positions x out channels x (Cin x k)
    fc = 64 * 6
    assert onnx_macs(path, (3, 20)) == conv + fc
    assert onnx_params(path) == sum(p.numel() for p in model.parameters())
    with pytest.raises(OptionError):
        onnx_macs(path, (3, 21))
    # grouped conv + dynamo exporter
    g = nn.Sequential(nn.Conv1d(4, 8, 3, groups=2), nn.Flatten(), nn.Linear(8 * 8, 2)).eval()
    gp = export_onnx(g, (4, 10), tmp_path / "g.onnx", exporter="dynamo")
    assert onnx_macs(gp, (4, 10)) == 8 * 8 * (2 * 3) + 64 * 2


def test_validate_errors(tmp_path):
    with pytest.raises(ModelFileError):
        validate_onnx(tmp_path / "missing.onnx")
    p = tmp_path / "x.onnx"
    p.write_text("not onnx")
    with pytest.raises(ModelFileError) as err:
        validate_onnx(p)
    assert "\n" not in str(err.value)
