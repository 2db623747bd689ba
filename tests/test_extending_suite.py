"""docs/extending.md's suite example, run exactly as written there."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.bench import BenchConfig, bench_models, onnx_sources
from harness.export import export_onnx
from harness.measure.registry import SUITE_REGISTRY, selected_suites
from harness.metrics import METRICS_BY_SUITE
from harness.results import Results, load_results, write_results
from harness.tasks import load_npz

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def _section_code(title: str) -> str:
    text = DOC.read_text()
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


@pytest.fixture
def agreement_suite():
    module = types.ModuleType("docs_extending_suite")  # a real module: dataclasses resolve annotations there
    sys.modules[module.__name__] = module
    exec(compile(_section_code("Adding a suite"), str(DOC), "exec"), module.__dict__)
    yield module
    SUITE_REGISTRY.pop("agreement", None)
    METRICS_BY_SUITE.pop("agreement", None)
    sys.modules.pop(module.__name__, None)


def _onnx(path: Path, seed: int, width: int) -> Path:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv1d(1, width, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(), torch.nn.Linear(width, 3))
    return export_onnx(model, (1, 32), path, exporter="torchscript")


def test_toy_suite_from_the_docs_runs_through_bench_and_the_results_file(tmp_path, agreement_suite):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 1, 32)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    np.savez(tmp_path / "data.npz", X_train=X, y_train=y, X_test=X, y_test=y)
    data = load_npz(tmp_path / "data.npz")
    teacher = _onnx(tmp_path / "t.onnx", 0, 8)
    sources = onnx_sources({"teacher": teacher, "twin": teacher, "other": _onnx(tmp_path / "o.onnx", 1, 4)},
                           None, data, "toy")

    cfg = BenchConfig(backends=["onnxruntime"], suites=["accuracy", "agreement"], threads=1, quick=True)
    res = bench_models(sources, data, cfg)
    got = {m.model: m.metrics for m in res.measurements if m.suite == "agreement"}
    assert set(got) == {"teacher", "twin", "other"}
    assert type(got["teacher"]).__name__ == "AgreementMetrics"
    # the same file agrees with itself on every sample; a different network cannot on all 30
    assert got["teacher"].agreement == 1.0 and got["twin"].agreement == 1.0 and got["teacher"].n == 30
    assert 0.0 <= got["other"].agreement < 1.0

    # typed through a results file, read back by attribute
    back = load_results(write_results(tmp_path / "r.json", res))
    other = next(m for m in back.measurements if m.suite == "agreement" and m.model == "other")
    assert type(other.metrics).__name__ == "AgreementMetrics" and other.metrics.agreement == got["other"].agreement


def test_toy_suite_is_selectable_and_skips_without_data(agreement_suite):
    assert [type(s).__name__ for s in selected_suites(["agreement"])] == ["AgreementSuite"]
    assert "agreement" not in BenchConfig().suites  # a user's suite runs when named, never by default
    BenchConfig(suites=["agreement"])  # validates against the registry
    ctx_without_data = type("Ctx", (), {"data": None, "sources": []})()
    assert not selected_suites(["agreement"])[0].applies(ctx_without_data)


def test_unknown_suite_is_one_line():
    from harness.errors import OptionError

    with pytest.raises(OptionError, match="unknown suite 'agreement'; known suites: accuracy, latency"):
        BenchConfig(suites=["agreement"])
    assert isinstance(Results(), Results)
