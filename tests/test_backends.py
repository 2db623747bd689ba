"""Backends: torch and ONNX Runtime sessions, options, and one-line errors for bad model files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.backends import Artifact, BackendOptions, backend_names, get_backend
from harness.backends.torch_backend import TorchSession
from harness.errors import HarnessError, ModelFileError, OptionError
from harness.export import export_onnx


from tiny_models import Tiny1d, Tiny3d  # noqa: E402



def _randomise_bn(model):
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


SHAPE_1D = (2, 32)
SHAPE_3D = (1, 4, 6, 6)


@pytest.fixture(scope="module")
def onnx1d(tmp_path_factory):
    torch.manual_seed(0)
    model = _randomise_bn(Tiny1d())
    path = export_onnx(model, SHAPE_1D, tmp_path_factory.mktemp("b") / "tiny1d.onnx", exporter="torchscript")
    return model, path


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"
    return msg


def test_registry_and_bad_name():
    assert {"torch", "onnxruntime"} <= set(backend_names())
    with pytest.raises(OptionError) as err:
        get_backend("tensorflow")
    assert "tensorflow" in _one_line(err.value)


def test_torch_and_ort_agree_1d(onnx1d):
    model, path = onnx1d
    x = np.random.default_rng(0).standard_normal((5, *SHAPE_1D), dtype=np.float32)
    with TorchSession.from_module(model, BackendOptions(threads=1), input_shape=SHAPE_1D) as ts:
        ref = ts.run(x)
    with get_backend("onnxruntime").open(Artifact("t", onnx=str(path)), BackendOptions(threads=1)) as os_:
        assert os_.input_shape == SHAPE_1D
        out = os_.run(x)
    assert ref.shape == out.shape == (5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-4)


def test_torch_and_ort_agree_3d(tmp_path):
    torch.manual_seed(0)
    model = _randomise_bn(Tiny3d())
    path = export_onnx(model, SHAPE_3D, tmp_path / "tiny3d.onnx", exporter="torchscript")
    x = np.random.default_rng(1).standard_normal((3, *SHAPE_3D), dtype=np.float32)
    ref = TorchSession.from_module(model).run(x)
    out = get_backend("onnxruntime").open(Artifact("t", onnx=str(path)), BackendOptions()).run(x)
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-4)


def test_ort_options_applied(onnx1d):
    _, path = onnx1d
    opts = BackendOptions(threads=2, inter_op_threads=3, graph_optimization="basic", arena=False)
    s = get_backend("onnxruntime").open(Artifact("t", onnx=str(path)), opts)
    so = s.sess.get_session_options()
    assert so.intra_op_num_threads == 2
    assert so.inter_op_num_threads == 3
    assert so.graph_optimization_level.name == "ORT_ENABLE_BASIC"
    assert so.enable_cpu_mem_arena is False
    assert s.sess.get_providers() == ["CPUExecutionProvider"]
    for level, name in [("disable", "ORT_DISABLE_ALL"), ("extended", "ORT_ENABLE_EXTENDED"), ("all", "ORT_ENABLE_ALL")]:
        s = get_backend("onnxruntime").open(Artifact("t", onnx=str(path)), BackendOptions(graph_optimization=level))
        assert s.sess.get_session_options().graph_optimization_level.name == name


def test_ort_bad_options(onnx1d):
    _, path = onnx1d
    art = Artifact("t", onnx=str(path))
    with pytest.raises(OptionError) as err:
        get_backend("onnxruntime").open(art, BackendOptions(graph_optimization="max"))
    assert "max" in _one_line(err.value)
    with pytest.raises(OptionError):
        get_backend("onnxruntime").open(art, BackendOptions(threads=0))
    with pytest.raises(OptionError):
        get_backend("onnxruntime").open(Artifact("t", checkpoint="x.pt"), BackendOptions())
    if "cuda" not in get_backend("onnxruntime").available_devices():
        with pytest.raises(OptionError) as err:
            get_backend("onnxruntime").open(art, BackendOptions(device="cuda"))
        _one_line(err.value)


def test_torch_options_applied():
    s = TorchSession.from_module(Tiny1d(), BackendOptions(threads=2), input_shape=SHAPE_1D)
    torch.set_num_threads(1)  # another session changed the global count
    s.prepare(np.zeros((1, *SHAPE_1D), np.float32))
    assert torch.get_num_threads() == 2
    with pytest.raises(OptionError):
        TorchSession.from_module(Tiny1d(), BackendOptions(threads=0))
    if not torch.cuda.is_available():
        with pytest.raises(OptionError) as err:
            TorchSession.from_module(Tiny1d(), BackendOptions(device="cuda"))
        _one_line(err.value)
    with pytest.raises(OptionError):
        get_backend("torch").open(Artifact("t", onnx="x.onnx"), BackendOptions())


def test_torch_backend_from_checkpoint(tmp_path):
    kd_models = pytest.importorskip("kd_models")
    from harness.artifacts import save_checkpoint

    try:
        config = kd_models.default_config("1d", "student", in_channels=2, num_classes=3, input_shape=SHAPE_1D)
        model = kd_models.build_model(config)
    except Exception as exc:  # the model package is developed separately
        pytest.skip(f"kd_models not usable: {exc}")
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model, {"model_config": config, "input_shape": list(SHAPE_1D)})
    s = get_backend("torch").open(Artifact("student_kd", checkpoint=str(ckpt)), BackendOptions(threads=1))
    assert s.input_shape == SHAPE_1D and s.artifact.checkpoint == str(ckpt)
    x = np.random.default_rng(0).standard_normal((4, *SHAPE_1D), dtype=np.float32)
    with torch.inference_mode():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(s.run(x), ref, atol=1e-6)
    with pytest.raises(HarnessError):  # CheckpointError
        get_backend("torch").open(Artifact("t", checkpoint=str(tmp_path / "missing.pt")), BackendOptions())


def test_wrong_input_shape(onnx1d):
    model, path = onnx1d
    bad = np.zeros((4, 3, 32), np.float32)
    s = get_backend("onnxruntime").open(Artifact("t", onnx=str(path)), BackendOptions())
    with pytest.raises(OptionError) as err:
        s.prepare(bad)
    msg = _one_line(err.value)
    assert "(4, 3, 32)" in msg and "(N, 2, 32)" in msg
    with pytest.raises(OptionError):
        s.prepare(np.zeros((4, 2), np.float32))  # wrong rank
    ts = TorchSession.from_module(model, input_shape=SHAPE_1D)
    with pytest.raises(OptionError) as err:
        ts.prepare(bad)
    assert "(N, 2, 32)" in _one_line(err.value)


def _open(path):
    return get_backend("onnxruntime").open(Artifact("t", onnx=str(path)), BackendOptions())


def test_bad_model_files(tmp_path, onnx1d):
    _, good = onnx1d
    data = good.read_bytes()
    cases = {}
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    cases["junk"] = junk
    text = tmp_path / "notes.onnx"
    text.write_text("this is not an onnx model\nreally not\n")
    cases["text"] = text
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    cases["empty"] = empty
    for frac in (0.1, 0.5, 0.9, 0.99):
        cut = tmp_path / f"cut{frac}.onnx"
        cut.write_bytes(data[: int(len(data) * frac)])
        cases[f"cut{frac}"] = cut
    cases["missing"] = tmp_path / "nope.onnx"
    cases["dir"] = tmp_path
    for name, path in cases.items():
        with pytest.raises(ModelFileError) as err:
            _open(path)
        _one_line(err.value)


def test_missing_and_truncated_external_data(tmp_path, onnx1d):
    model, _ = onnx1d
    path = export_onnx(model, SHAPE_1D, tmp_path / "ext.onnx", external_data=True, exporter="torchscript")
    side = tmp_path / "ext.onnx.data"
    assert side.is_file()
    blob = side.read_bytes()
    side.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelFileError) as err:
        _open(path)
    assert "truncated" in _one_line(err.value)
    side.unlink()
    with pytest.raises(ModelFileError) as err:
        _open(path)
    msg = _one_line(err.value)
    assert "ext.onnx.data" in msg and "missing" in msg
