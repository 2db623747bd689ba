"""Results files written before the typed metrics (committed copies) still load, round-trip, report and gate.

- results-2026-11-28-single-process.json: CI's baseline of 2026-11-28 01:26, before worker processes
  (paired suite without process_rounds or speedup_p10);
- results-2026-11-28-main-job.json: `harness run` of 2026-11-28 13:34, every suite, with the raw
  samples dropped to keep the copy small;
- results/baseline.json: the current CI baseline (worker processes, speedup_p10).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.gate import evaluate_gate, gate_exit_code
from harness.metrics import AccuracyMetrics, GenericMetrics, LatencyMetrics, PairedMetrics, RooflineMetrics
from harness.report import build_report
from harness.results import load_results

ROOT = Path(__file__).resolve().parents[1]
OLDER = [ROOT / "tests" / "data" / "results-2026-11-28-single-process.json",
         ROOT / "tests" / "data" / "results-2026-11-28-main-job.json",
         ROOT / "results" / "baseline.json"]


@pytest.mark.parametrize("path", OLDER, ids=lambda p: p.name)
def test_older_file_round_trips_losslessly(path):
    doc = json.loads(path.read_text())
    res = load_results(path)
    assert not any(isinstance(m.metrics, GenericMetrics) for m in res.measurements)  # every suite typed
    # every metric the file holds comes back under its name, with its value
    for before, m in zip(doc["measurements"], res.measurements):
        assert m.metrics.to_dict() == before["metrics"], (m.suite, m.model)
    assert res.to_dict()["measurements"] == [{**d, "options": d.get("options") or {},
                                              "warnings": d.get("warnings") or []} for d in doc["measurements"]]


@pytest.mark.parametrize("path", OLDER, ids=lambda p: p.name)
def test_older_file_reports_and_gates_against_itself(path):
    res = load_results(path)
    for m in res.measurements:
        if m.suite == "paired":
            assert isinstance(m.metrics, PairedMetrics) and m.metrics.speedup > 1.0
        if m.suite == "accuracy":
            assert isinstance(m.metrics, AccuracyMetrics) and 0.0 < m.metrics.accuracy <= 1.0
    text = build_report([path], "full")
    assert "student_kd" in text and "speedup" in text.lower()
    assert "<html" in build_report([path], "html").lower()
    verdicts = evaluate_gate(path, path)
    assert gate_exit_code(verdicts) == 0 and any(r.verdict == "pass" for r in verdicts)


def test_main_job_file_has_every_suite_typed():
    res = load_results(OLDER[1])
    by_suite = {m.suite: m.metrics for m in res.measurements}
    assert isinstance(by_suite["latency"], LatencyMetrics) and by_suite["latency"].p50_ms > 0
    assert isinstance(by_suite["roofline"], RooflineMetrics) and by_suite["roofline"].peak_gflops > 0
    assert by_suite["memory"].peak_mb is not None and by_suite["cold_start"].load_s > 0
