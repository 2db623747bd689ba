"""The torch-compile backend: registered, loads like torch, compiles in `prepare` (never in a timed
call), one graph per batch size, outputs as eager, one-line errors; runs in timing workers and in the
memory suite's child. The tests that compile are marked slow (a tiny Conv1d model: seconds each)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.backends import Artifact, BackendOptions, backend_names, get_backend
from harness.backends.torch_compile_backend import TorchCompileSession
from harness.errors import HarnessError, OptionError

from tiny_models import Tiny1d  # noqa: E402

SHAPE = (2, 32)


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"
    return msg


def _model(width: int = 8) -> nn.Module:
    torch.manual_seed(0)
    model = Tiny1d(width=width)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *SHAPE), dtype=np.float32)


def _eager(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    kd_models = pytest.importorskip("kd_models")
    from harness.artifacts import save_checkpoint

    try:
        config = kd_models.default_config("1d", "student", in_channels=2, num_classes=3, input_shape=SHAPE)
        model = kd_models.build_model(config)
    except Exception as exc:  # the model package is developed separately
        pytest.skip(f"kd_models not usable: {exc}")
    path = tmp_path_factory.mktemp("tc") / "student.pt"
    save_checkpoint(path, model, {"model_config": config, "input_shape": list(SHAPE)})
    return path, model.eval()


def test_registered_next_to_the_others():
    assert {"torch", "onnxruntime", "torch-compile"} <= set(backend_names())
    assert get_backend("torch-compile").name == "torch-compile"
    from harness.bench import BenchConfig

    assert BenchConfig(backends=["torch", "torch-compile", "onnxruntime"]).backends[1] == "torch-compile"


def test_open_errors_are_one_line(tmp_path):
    backend = get_backend("torch-compile")
    with pytest.raises(OptionError) as err:
        backend.open(Artifact("t", onnx="x.onnx"), BackendOptions())
    assert "checkpoint" in _one_line(err.value)
    with pytest.raises(OptionError) as err:
        backend.open(Artifact("t", checkpoint="x.pt"), BackendOptions(device="cuda"))
    assert "cpu" in _one_line(err.value)
    with pytest.raises(HarnessError) as err:  # CheckpointError, from the torch backend's loading
        backend.open(Artifact("t", checkpoint=str(tmp_path / "missing.pt")), BackendOptions())
    _one_line(err.value)


def test_no_compiler_is_one_line(checkpoint):
    from torch._inductor import config

    with config.patch({"cpp.cxx": (None, "/nonexistent/kdh-g++")}), pytest.raises(HarnessError) as err:
        get_backend("torch-compile").open(Artifact("s", checkpoint=str(checkpoint[0])), BackendOptions())
    assert "C++ compiler" in _one_line(err.value)


def test_bad_input_is_one_line():
    s = TorchCompileSession.from_module(_model(), BackendOptions(threads=1), input_shape=SHAPE)
    with pytest.raises(OptionError) as err:
        s.prepare(np.zeros((4, 3, 32), np.float32))
    assert "(4, 3, 32)" in _one_line(err.value) and "(N, 2, 32)" in str(err.value)
    assert s.compile_s == {}  # nothing was compiled for a batch that does not fit


@pytest.mark.slow
def test_compiles_in_prepare_per_batch_size_and_matches_eager():
    model = _model()
    s = TorchCompileSession.from_module(model, BackendOptions(threads=1), input_shape=SHAPE)
    assert s.backend == "torch-compile" and s.compile_s == {}
    x4 = _batch(4)
    before = _graphs()
    prepared = s.prepare(x4)
    assert set(s.compile_s) == {4} and s.compile_s[4] > 0
    assert _graphs() == before + 1
    compiled = dict(s.compile_s)
    graphs = _graphs()
    out = s.to_numpy(s.run_prepared(prepared))  # the timed call: no compiling left to do
    s.run_prepared(s.prepare(x4))  # a new batch of a seen shape: no compiling either
    assert s.compile_s == compiled and _graphs() == graphs
    np.testing.assert_allclose(out, _eager(model, x4), atol=1e-5, rtol=1e-4)

    x8 = _batch(8, seed=1)
    prepared8 = s.prepare(x8)  # a second batch size: a graph of its own
    assert set(s.compile_s) == {4, 8} and s.compile_s[4] == compiled[4]
    assert _graphs() == graphs + 1
    np.testing.assert_allclose(s.to_numpy(s.run_prepared(prepared8)), _eager(model, x8), atol=1e-5, rtol=1e-4)
    assert _graphs() == graphs + 1


@pytest.mark.slow
def test_compile_failure_is_one_line():
    from torch._inductor import config

    s = TorchCompileSession.from_module(_model(width=5), BackendOptions(threads=1), input_shape=SHAPE)
    # no compiler once the session is open; fx_graph_cache off: compile for real, not from inductor's cache
    with config.patch({"cpp.cxx": (None, "/nonexistent/kdh-g++"), "fx_graph_cache": False}):
        with pytest.raises(HarnessError) as err:
            s.prepare(_batch(3))
    msg = _one_line(err.value)
    assert "torch.compile failed for input shape (3, 2, 32)" in msg and "Cxx" in msg
    assert s.compile_s == {}


@pytest.mark.slow
def test_checkpoint_threads_worker_and_memory_child(checkpoint):
    """Opens like torch, respects threads, and runs where `harness bench` runs it: a forkserver
    timing worker and the memory suite's fresh child (with compile_s in cold start)."""
    from harness.measure.memory import MemoryConfig, MemorySpec, measure
    from harness.measure.timing import TimingConfig
    from harness.measure.worker import start_workers
    from harness.metrics import ColdStartMetrics, metrics_for

    path, model = checkpoint
    art = Artifact("student_kd", checkpoint=str(path))
    opts = BackendOptions(threads=2)
    s = get_backend("torch-compile").open(art, opts)
    assert s.input_shape == SHAPE and s.artifact.checkpoint == str(path) and s.metadata["input_shape"] == list(SHAPE)
    x = _batch(2)
    torch.set_num_threads(1)  # another session changed the process-wide count: prepare puts it back
    prepared = s.prepare(x)
    assert torch.get_num_threads() == 2 and set(s.compile_s) == {2}
    ref = get_backend("torch").open(art, opts).run(x)
    np.testing.assert_allclose(s.to_numpy(s.run_prepared(prepared)), ref, atol=1e-5, rtol=1e-4)
    s.close()

    [worker] = start_workers([("torch-compile", art, BackendOptions(threads=1), "test/torch-compile")])
    try:
        cfg = TimingConfig(warmup_min_s=0.0, warmup_min_calls=1, min_time_s=0.01, min_samples=3, max_time_s=1.0)
        assert len(worker.time(x, cfg).samples_ns) >= 3
    finally:
        worker.close()

    spec = MemorySpec("t", "student_kd", "torch-compile", art, BackendOptions(threads=1), batch_shape=(1, *SHAPE))
    [cold] = measure([spec], None, MemoryConfig(repeats=1, runs=1, suites=("cold_start",)))
    metrics = metrics_for("cold_start", cold.metrics)
    assert isinstance(metrics, ColdStartMetrics) and "compile_s" in metrics.to_dict()
    assert metrics.compile_s is not None and metrics.compile_s > 0 and metrics.first_inference_ms > 0


@pytest.mark.slow
def test_past_the_recompile_limit_is_an_error_not_eager(monkeypatch):
    from harness.backends import torch_compile_backend

    monkeypatch.setattr(torch_compile_backend, "RECOMPILE_LIMIT", 1)
    s = TorchCompileSession.from_module(_model(), BackendOptions(threads=1), input_shape=SHAPE)
    s.prepare(_batch(4))
    with pytest.raises(HarnessError) as err:
        s.prepare(_batch(5))  # without fullgraph, dynamo would run this shape eagerly
    assert "recompile limit" in _one_line(err.value) and set(s.compile_s) == {4}


@pytest.mark.slow
def test_two_sessions_of_one_architecture_keep_their_own_weights():
    """The accuracy suite opens scratch and KD students (same class, other weights) in one process:
    dynamo may share a compiled graph between them, but each must answer with its own weights."""
    x = _batch(4)
    for seed in (3, 4):
        torch.manual_seed(seed)
        model = Tiny1d().eval()
        s = TorchCompileSession.from_module(model, BackendOptions(threads=1), input_shape=SHAPE)
        np.testing.assert_allclose(s.run(x), _eager(model, x), atol=1e-5, rtol=1e-4)
