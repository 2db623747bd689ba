"""The serving suite: MLPerf LoadGen scenarios, the max-QPS search, INVALID handling, the report's
"Under load" table and the gate's serving_qps_ratio rule. Real LoadGen runs use a tiny model and
LoadGen's own settings shortened; nothing here asserts on a time."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import make_results  # noqa: E402
from tiny_models import Tiny1d  # noqa: E402

from harness.export import export_onnx  # noqa: E402
from harness.measure.loadgen_run import RunResult, parse_summary  # noqa: E402
from harness.measure.serving import search_max_qps  # noqa: E402
from harness.metrics import ServingMetrics  # noqa: E402
from harness.results import Measurement  # noqa: E402

VALID = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 788.28
Result is : VALID
  Performance constraints satisfied : Yes
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
Early Stopping Result:
 * Run successful.
99.00 percentile latency (ns)   : 2298285
"""
INVALID = VALID.replace("Result is : VALID", "Result is : INVALID").replace(
    "Performance constraints satisfied : Yes", "Performance constraints satisfied : NO").replace(
    " * Run successful.", " * Reduce target QPS to improve latency.")


def test_parse_summary_valid_and_invalid():
    ok, why, stats = parse_summary(VALID)
    assert ok and why is None and stats["Completed samples per second"] == "788.28"
    r = RunResult("Server", ok, why, stats)
    assert r.latency_ms(99) == pytest.approx(2.298285) and r.rate() == pytest.approx(788.28)
    bad, why, _ = parse_summary(INVALID)
    assert not bad and "Performance constraints satisfied: NO" in why and "Reduce target QPS" in why
    assert parse_summary("") == (False, "LoadGen wrote no result line", {})


def _fake(capacity: float):
    calls = []

    def run_at(q: float) -> RunResult:
        calls.append(q)
        ok = q <= capacity
        text = VALID if ok else INVALID
        return RunResult("Server", *parse_summary(text))

    return run_at, calls


def test_search_bisects_to_the_capacity_within_tolerance():
    run_at, calls = _fake(1234.0)
    s = search_max_qps(run_at, upper=4000.0, steps=12, tolerance=0.05)
    assert calls[0] == 4000.0 and calls[1] == 2000.0 and calls[2] == 1000.0  # halve to the first VALID
    assert s.max_qps <= 1234.0 and s.resolution <= 0.05
    lowest_invalid = min(q for q in calls if q > 1234.0)
    assert s.max_qps * (1 + s.resolution) == pytest.approx(lowest_invalid)
    assert [r["valid"] for r in s.runs] == [q <= 1234.0 for q in calls] and s.reason is None


def test_search_valid_at_the_offline_rate_stops_and_none_valid_gives_a_reason():
    run_at, calls = _fake(1e9)
    s = search_max_qps(run_at, upper=500.0, steps=7, tolerance=0.05)
    assert calls == [500.0] and s.max_qps == 500.0 and s.resolution is None
    run_at, calls = _fake(0.0)
    s = search_max_qps(run_at, upper=500.0, steps=4, tolerance=0.05)
    assert s.max_qps is None and len(calls) == 4
    assert s.reason.startswith("no Server run met the bound down to 62.5 QPS (LoadGen: Performance constraints")


# -- the gate rule and the report, on synthetic serving measurements ------------------------------------
def _serving(res, role, max_qps, batching=False, resolution=0.04, backend="onnxruntime"):
    runs = [{"target_qps": max_qps * 2, "valid": False, "p99_ms": 40.0, "completed_qps": max_qps * 1.5,
             "reason": "Performance constraints satisfied: NO"},
            {"target_qps": max_qps, "valid": True, "p99_ms": 2.0, "completed_qps": max_qps, "reason": None}]
    m = ServingMetrics(batching=batching, max_batch=8 if batching else 1, max_wait_ms=0.1 if batching else 0.0,
                       latency_bound_ms=5.0, latency_bound_from="10 x the teacher's SingleStream p99",
                       singlestream_p90_ms=0.4, singlestream_p99_ms=0.5, singlestream_valid=True, offline_sps=3000.0,
                       offline_valid=True, max_qps=max_qps, max_qps_p99_ms=2.0, server_runs=runs,
                       search_resolution=resolution, reason=None)
    res.measurements.append(Measurement(task="osuleaf", model=role, backend=backend, suite="serving",
                                        batch_size=m.max_batch, threads=1, metrics=m))
    return res


def _with_serving(student_qps: float, batched_student_qps: float | None = None):
    res = make_results(tasks=("osuleaf",))
    for batching, scale in ((False, 1.0), (True, 3.0)):
        _serving(res, "teacher", 1000.0 * scale, batching)
        q = student_qps if not batching else (batched_student_qps or student_qps * scale)
        _serving(res, "student_kd", q, batching)
    return res


def test_gate_rule_on_the_max_qps_ratio():
    from harness.gate import evaluate_gate

    base = _with_serving(5000.0)
    rows = [r for r in evaluate_gate(base, _with_serving(5000.0)) if r.rule == "serving_qps_ratio"
            and r.model == "student_kd"]
    assert len(rows) == 2 and {r.verdict for r in rows} == {"pass"}
    assert rows[0].baseline == pytest.approx(5.0)
    slow = [r for r in evaluate_gate(base, _with_serving(2500.0)) if r.rule == "serving_qps_ratio"
            and r.model == "student_kd"]
    assert {r.verdict for r in slow} == {"fail"}  # half the ratio: far outside the search brackets
    near = [r for r in evaluate_gate(base, _with_serving(4400.0)) if r.rule == "serving_qps_ratio"
            and r.model == "student_kd"]
    assert {r.verdict for r in near} == {"not significant"}  # 12% down, but within the brackets' reach
    plain = make_results(tasks=("osuleaf",))
    assert not [r for r in evaluate_gate(plain, plain) if r.rule == "serving_qps_ratio"]


def test_report_under_load_table_verdict_and_knee():
    from harness.report import build_report
    from harness.report.content import build_model
    from harness.report.html import _knee_fig

    res = _with_serving(5000.0, batched_student_qps=4000.0)
    t = build_model(res).tasks[0]
    df = t.serving.set_index(["model", "batching"])
    assert df.loc[("student_kd", "off"), "qps_ratio"] == pytest.approx(5.0)
    assert df.loc[("student_kd", "on"), "qps_ratio"] == pytest.approx(4000.0 / 3000.0)
    assert df.loc[("teacher", "on"), "runs_valid"] == "1/2"
    (v,) = t.section_verdicts["serving"].values()
    assert "student_kd (onnxruntime): batching off, 5000 vs 4000 QPS" in v
    assert "teacher (onnxruntime): batching on, 3000 vs 1000 QPS" in v
    text = build_report(res, "full")
    assert "Under load: MLPerf LoadGen" in text and "max QPS" in text
    screen = " ".join(build_report(res, "table").split())
    assert ("Under load (LoadGen Server, max QPS) on onnxruntime, p99 <= 5 ms: teacher 3000 QPS (batching on), "
            "student_kd 5000 QPS (no batching, 1.7x the teacher's).") in screen
    report = build_model(res)
    fig = _knee_fig(report, "osuleaf")
    assert len(fig.data) == 4 and list(fig.data[0].x) == [1000.0, 2000.0]
    # a model that met the bound at no QPS: one note line with LoadGen's reason
    res.measurements[-1].metrics.max_qps = None
    res.measurements[-1].metrics.reason = "no Server run met the bound down to 10 QPS (LoadGen: Min queries)"
    notes = build_model(res).tasks[0].notes["serving"]
    assert [n for n in notes if "no Server run" in n] == [
        "student_kd on onnxruntime, batching on: no Server run met the bound down to 10 QPS (LoadGen: Min queries)"]
    # the same call measured two ways: LoadGen's SingleStream p90 (0.4 ms here) against the latency suite's
    lat = next(m for m in res.measurements if m.suite == "latency" and m.model == "teacher"
               and m.backend == "onnxruntime" and m.batch_size == 1 and m.threads == 1)
    assert any(n.startswith(f"teacher on onnxruntime: LoadGen's SingleStream p90 is {0.4 / lat.metrics.p90_ms:.2f}x "
                            "the latency suite's") for n in notes)
    # ... split by what the same run measured: LoadGen's path around the call, the calls timed inside the SUT
    L = lat.metrics.p90_ms
    for m in res.measurements:
        if m.suite == "serving" and m.model == "teacher":
            m.metrics.singlestream_p90_ms = 1.5 * L
            m.metrics.singlestream_p50_ms, m.metrics.singlestream_call_p50_ms = 0.9 * L, 0.9 * L - 0.004
            m.metrics.singlestream_call_p90_ms = 1.02 * L  # the calls agree: the rest is LoadGen's path
            m.metrics.singlestream_loop_p90_ms = [L, 1.3 * L]
    (note,) = [n for n in build_model(res).tasks[0].notes["serving"] if n.startswith("teacher on onnxruntime: Load")]
    assert "LoadGen's own path per query (issue, the SUT's callback, completion) is 4.0 us" in note
    assert f"the model calls timed inside the SUT read p90 {1.02 * L:.3g} ms (1.02x)" in note
    assert "(they differ by 30%: the machine's noise at this p90)" in note
    assert note.endswith("the rest is LoadGen's fixed path, which matters most for the fastest models")
    for m in res.measurements:
        if m.suite == "serving" and m.model == "teacher":
            m.metrics.singlestream_call_p90_ms = 1.25 * L  # slower calls, as slow as this process's loop then
    (note,) = [n for n in build_model(res).tasks[0].notes["serving"] if n.startswith("teacher on onnxruntime: Load")]
    assert note.endswith("the latency suite ran at another time, and the machine moved")
    for m in res.measurements:
        if m.suite == "serving" and m.model == "teacher":
            m.metrics.singlestream_call_p90_ms = 1.5 * L  # slower than the loops on either side of the run
    (note,) = [n for n in build_model(res).tasks[0].notes["serving"] if n.startswith("teacher on onnxruntime: Load")]
    assert note.endswith("rerun to tell them apart")


def test_repeated_searches_report_their_median_and_spread():
    from harness.measure.serving import Search, combine
    from harness.report.content import build_model

    s = combine([Search(q, [{"target_qps": q, "valid": True}], 0.04, None) for q in (900.0, 1300.0, 1200.0)])
    assert s.max_qps == 1200.0 and s.repeats == [900.0, 1300.0, 1200.0] and len(s.runs) == 3
    assert combine([Search(900.0, [], 0.04, None), Search(None, [], None, "no run met it")]).max_qps is None
    res = _with_serving(5000.0)
    m = res.measurements[-1].metrics
    m.max_qps_repeats, m.max_qps_spread = [14000.0, 15000.0, 20000.0], 6000.0 / 15000.0
    notes = build_model(res).tasks[0].notes["serving"]
    assert ("student_kd on onnxruntime, batching on: max QPS varied 40% across 3 searches (14000, 15000, 20000): "
            "the machine's noise") in " ".join(notes)
    # rows from one search each say that their spread was not measured; repeated ones do not
    assert any(n.startswith("max QPS comes from one search per model and batching setting (3 rows)") for n in notes)
    for x in res.measurements:
        if x.suite == "serving":
            x.metrics.max_qps_repeats = [x.metrics.max_qps] * 3
    assert not any("one search" in n for n in build_model(res).tasks[0].notes["serving"])


# -- real LoadGen runs on a tiny model ---------------------------------------------------------------
SHORT = ["--serving-min-duration-ms", "100", "--serving-min-queries", "32", "--serving-max-batch", "4"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("serving")
    torch.manual_seed(0)
    t, s = root / "teacher.onnx", root / "student.onnx"
    export_onnx(Tiny1d(width=16).eval(), (2, 32), t)
    export_onnx(Tiny1d(width=4).eval(), (2, 32), s)
    return root, t, s


def _bench(root, t, s, out, *extra):
    from harness.cli import main

    return main(["bench", "--onnx", f"teacher={t}", "--onnx", f"student={s}", "--input-shape", "2,32", "--backends",
                 "onnxruntime", "--suites", "storage,serving", "--threads", "1", "--no-history", "--quiet",
                 "--out", str(out), *SHORT, *extra])


def test_serving_suite_with_real_loadgen(pair):
    pytest.importorskip("mlperf_loadgen")
    from harness.results import load_results

    root, t, s = pair
    out = root / "r.json"
    assert _bench(root, t, s, out) == 0
    res = load_results(out)
    ms = [m for m in res.measurements if m.suite == "serving"]
    assert sorted((m.model, m.metrics.batching) for m in ms) == [("student", False), ("student", True),
                                                                 ("teacher", False), ("teacher", True)]
    bound = {m.metrics.latency_bound_ms for m in ms}
    assert len(bound) == 1  # one bound for teacher and student: the teacher's
    teacher = next(m for m in ms if m.model == "teacher")
    assert bound.pop() == pytest.approx(10 * teacher.metrics.singlestream_p99_ms)
    for m in ms:
        x = m.metrics
        assert x.singlestream_p90_ms > 0 and x.offline_sps > 0 and x.server_runs
        # the same SingleStream run's calls timed inside the SUT: LoadGen's latency contains each of them
        assert 0 < x.singlestream_call_p50_ms <= x.singlestream_p90_ms
        assert len(x.singlestream_loop_p90_ms) == 2 and min(x.singlestream_loop_p90_ms) > 0
        assert all(r["valid"] in (True, False) and (r["valid"] or r["reason"]) for r in x.server_runs)
        assert x.max_qps is not None or x.reason
        assert (x.max_batch, x.max_wait_ms > 0) == ((4, True) if x.batching else (1, False))
        logs = Path(x.log_dir)
        assert (logs / "singlestream" / "mlperf_log_summary.txt").exists()
        assert (logs / "singlestream" / "mlperf_log_detail.txt").exists()
        assert logs.is_relative_to(root / "r-loadgen")  # kept beside the results file


def test_a_bound_no_run_can_meet_is_one_line_per_model(pair):
    pytest.importorskip("mlperf_loadgen")
    from harness.report import build_report
    from harness.results import load_results

    root, t, s = pair
    out = root / "tight.json"
    assert _bench(root, t, s, out, "--latency-bound-ms", "0.0001") == 0
    res = load_results(out)
    ms = [m for m in res.measurements if m.suite == "serving"]
    assert ms and all(m.metrics.max_qps is None and "no Server run met the bound" in m.metrics.reason for m in ms)
    assert all(not r["valid"] for m in ms for r in m.metrics.server_runs)
    text = build_report(res, "full")
    assert text.count("no Server run met the bound down to") >= 4
    assert any(m.suite == "storage" for m in res.measurements)


def test_without_loadgen_the_other_suites_still_run(pair, monkeypatch, capsys):
    from harness.results import load_results

    root, t, s = pair
    monkeypatch.setitem(sys.modules, "mlperf_loadgen", None)
    out = root / "nolg.json"
    assert _bench(root, t, s, out) == 0
    res = load_results(out)
    assert any(w.startswith("serving: not measured: the serving suite needs MLPerf LoadGen: pip install -e "
                            "'.[serving]'") for w in res.warnings)
    assert {m.suite for m in res.measurements} == {"storage"}
