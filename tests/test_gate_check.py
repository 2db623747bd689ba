"""scripts/gate_check.py: the planted student is the same function with extra work, and the CLI takes --processes."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.cli import main as cli_main

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gate_check.py"


def _gate_check():
    spec = importlib.util.spec_from_file_location("gate_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("shape", [(1, 2, 12), (2, 1, 4, 6, 6)])
def test_planted_slowdown_is_an_exact_identity_before_the_model(shape, tmp_path):
    gc = _gate_check()
    conv = torch.nn.Conv1d(2, 3, 3) if len(shape) == 3 else torch.nn.Conv3d(1, 3, 3)
    model = torch.nn.Sequential(conv, torch.nn.Flatten()).eval()
    planted = gc.PlantedSlowdown(model, 4).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        assert torch.equal(planted(x), model(x))
    assert sum(p.numel() for p in planted.parameters()) == sum(p.numel() for p in model.parameters())
    # it exports with a dynamic batch and runs in ONNX Runtime with the same answer
    from harness.export import export_onnx
    import onnxruntime as ort

    export_onnx(planted, shape[1:], tmp_path / "p.onnx")
    sess = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bench_processes_must_be_a_positive_integer(value, tmp_path, capsys):
    rc = cli_main(["bench", str(tmp_path), "--processes", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--processes" in err[0]
