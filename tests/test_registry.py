"""The suite registry's contracts: which backend can open which model, and what the storage suite stores."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness.bench import BenchConfig
from harness.measure.builtin_suites import StorageSuite
from harness.measure.registry import CHECKPOINT_BACKENDS, SuiteContext


def _ctx(sources, entries):
    return SuiteContext(sources=sources, data=None, inputs={}, backends=["onnxruntime"], options=None,
                        config=BenchConfig(backends=["onnxruntime"], threads=1), selected=frozenset({"storage"}),
                        model_entries=entries)


def test_models_without_a_checkpoint_run_only_where_no_checkpoint_is_needed():
    variant = SimpleNamespace(task="t", role="student_kd@int8", checkpoint=None)
    fp32 = SimpleNamespace(task="t", role="student_kd", checkpoint=Path("x.pt"))
    assert set(CHECKPOINT_BACKENDS) == {"torch", "torch-compile"}
    for backend in CHECKPOINT_BACKENDS:
        assert not SuiteContext.runs_on(variant, backend) and SuiteContext.runs_on(fp32, backend)
    assert SuiteContext.runs_on(variant, "onnxruntime")


def test_storage_suite_stores_sizes_not_the_whole_model_entry():
    src = SimpleNamespace(task="t", role="student_kd", checkpoint=None)
    entry = {"task": "t", "role": "student_kd", "onnx": "/abs/m.onnx", "onnx_sha256": "ab" * 32, "params": 8598,
             "macs": 1_000_000, "onnx_bytes": 43_933, "onnx_gzip_bytes": 34_100, "parity": {"passed": True},
             "train_seconds": {"mean": 40.0}, "onnx_params": 8598, "variant": None}
    (m,) = StorageSuite().measure(_ctx([src], {("t", "student_kd"): entry}))
    assert m.metrics.to_dict() == {"params": 8598, "macs": 1_000_000, "onnx_bytes": 43_933, "onnx_gzip_bytes": 34_100}
    assert m.metrics.extra == {}
