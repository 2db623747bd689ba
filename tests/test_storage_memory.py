"""Storage figures (bytes, gzip, external data) and the isolated memory / cold-start child."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import torch

from harness.backends import Artifact, BackendOptions, get_backend
from harness.errors import CheckpointError, HarnessError, ModelFileError
from harness.export import export_onnx
from harness.measure import memory, storage
from harness.measure.base import SessionHandle

SHAPE = (2, 32)


from tiny_models import Tiny1d  # noqa: E402



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("s")
    model = Tiny1d().eval()
    plain = export_onnx(model, SHAPE, d / "plain.onnx", exporter="torchscript")
    ext = export_onnx(model, SHAPE, d / "ext.onnx", external_data=True, exporter="torchscript")
    return model, plain, ext


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A harness checkpoint of a small kd_models net (skipped when the model package is unusable)."""
    kd_models = pytest.importorskip("kd_models")
    from harness.artifacts import save_checkpoint

    try:
        config = kd_models.default_config("1d", "student", in_channels=2, num_classes=3, input_shape=SHAPE)
        model = kd_models.build_model(config)
    except Exception as exc:
        pytest.skip(f"kd_models not usable: {exc}")
    path = tmp_path_factory.mktemp("c") / "student.pt"
    save_checkpoint(path, model, {"model_config": config, "input_shape": list(SHAPE)})
    return path


def test_storage_external_data_counts_both_files(files):
    _, plain, ext = files
    side = ext.parent / "ext.onnx.data"
    st = storage.storage_metrics(onnx=ext, params=123, macs=456)
    assert st["onnx_bytes"] == os.path.getsize(ext) + os.path.getsize(side)
    assert st["onnx_graph_bytes"] == os.path.getsize(ext)
    assert st["onnx_external_bytes"] == os.path.getsize(side) and st["onnx_external_files"] == 1
    blob = ext.read_bytes() + side.read_bytes()
    assert st["onnx_gzip_bytes"] == len(gzip.compress(blob, compresslevel=9, mtime=0))
    assert st["params"] == 123 and st["macs"] == 456 and st["onnx_params"] == 115
    assert st["checkpoint_bytes"] is None
    st_plain = storage.storage_metrics(onnx=plain)
    assert st_plain["onnx_bytes"] == os.path.getsize(plain) and st_plain["onnx_external_bytes"] == 0


def test_storage_checkpoint_and_errors(tmp_path, files):
    ck = tmp_path / "m.pt"
    ck.write_bytes(b"\0" * 5000)
    st = storage.storage_metrics(checkpoint=ck, gzip=True)
    assert st["checkpoint_bytes"] == 5000 and 0 < st["checkpoint_gzip_bytes"] < 100
    assert st["onnx_bytes"] is None
    with pytest.raises(CheckpointError):
        storage.storage_metrics(checkpoint=tmp_path / "none.pt")
    _, _, ext = files
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(ext.read_bytes())  # graph without its side file
    with pytest.raises(ModelFileError) as err:
        storage.storage_metrics(onnx=lone)
    assert "\n" not in str(err.value)


def _sane(m):
    for k in ("rss_baseline_mb", "rss_after_load_mb", "peak_rss_mb"):
        assert m[k] > 1.0, k
    assert m["peak_rss_mb"] >= m["rss_baseline_mb"]
    assert m["peak_rss_increase_mb"] >= 0 and m["peak_rss_increase_mb"] < 2000
    assert 0 < m["load_s"] < 120 and m["first_inference_ms"] > 0


def test_memory_child_onnxruntime(files):
    _, plain, _ = files
    spec = memory.child_spec("onnxruntime", Artifact("s", onnx=str(plain)), BackendOptions(arena=False),
                             batch_shape=(4, *SHAPE), runs=2)
    m = memory.run_child(spec, timeout_s=120)
    _sane(m)
    assert m["output_shape"] == [4, 3] and m["output_finite"] and m["arena"] is False and m["threads"] == 1
    # the child's peak must not include this (torch-laden) parent's RSS, as ru_maxrss after fork+exec would
    assert m["peak_rss_increase_mb"] < 100


def test_memory_child_torch(checkpoint):
    spec = memory.child_spec("torch", Artifact("s", checkpoint=str(checkpoint)), BackendOptions(),
                             batch_shape=(2, *SHAPE), runs=2)
    m = memory.run_child(spec, timeout_s=180)
    _sane(m)
    assert m["output_shape"] == [2, 3]


@pytest.mark.slow
def test_memory_suite_and_failures(tmp_path, files):
    _, _, ext = files
    sess = get_backend("onnxruntime").open(Artifact("student_kd", onnx=str(ext)), BackendOptions())
    handle = SessionHandle("t", "student_kd", "onnxruntime", BackendOptions(), sess)
    x = np.random.default_rng(0).standard_normal((3, *SHAPE), dtype=np.float32)
    ms = memory.measure([handle], {3: x}, memory.MemoryConfig(repeats=2, runs=1))
    assert [(m.suite, m.batch_size) for m in ms] == [("memory", 3), ("cold_start", 3)]
    _sane({**ms[0].metrics.to_dict(), **ms[1].metrics.to_dict()})
    assert ms[1].metrics.repeats == 2 and len(ms[1].samples_ns) == 2
    assert ms[1].metrics.load_s_min <= ms[1].metrics.load_s <= ms[1].metrics.load_s_max
    # a child that fails reports one line
    bad = memory.MemorySpec("t", "x", "onnxruntime", Artifact("x", onnx=str(tmp_path / "gone.onnx")),
                            batch_shape=(1, *SHAPE))
    with pytest.raises(HarnessError) as err:
        memory.measure([bad], None, memory.MemoryConfig(repeats=1, runs=0))
    msg = str(err.value)
    assert "\n" not in msg and "not found" in msg and "gone.onnx" in msg


def test_measure_sources(files):
    from types import SimpleNamespace

    _, plain, _ = files
    src = SimpleNamespace(task="t", role="student_kd", onnx=plain, checkpoint=None, input_shape=SHAPE)
    ms = memory.measure_sources([src], ["torch", "onnxruntime"], BackendOptions(), batch_size=2,
                                suites=["cold_start"], repeats=1, runs=0)
    assert [(m.suite, m.backend, m.batch_size) for m in ms] == [("cold_start", "onnxruntime", 2)]
    assert ms[0].metrics.load_s > 0
