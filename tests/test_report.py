"""Reports: every format from synthetic Results, pytest-benchmark input, partial inputs."""
from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import make_results, write_pytest_benchmark  # noqa: E402

from harness.errors import OptionError, SchemaError  # noqa: E402
from harness.report import build_report, format_for_path, write_report  # noqa: E402
from harness.report.model import build_model, diff_stats, source_labels  # noqa: E402
from harness.report.pytest_benchmark import from_pytest_benchmark, is_pytest_benchmark  # noqa: E402
from harness.report.render import pareto_front  # noqa: E402
from harness.results import Measurement, Results, write_results  # noqa: E402


@pytest.fixture(scope="module")
def one() -> Results:
    return make_results(source="results/run1.json", unstable=True, parity_fail=("student_scratch",))


@pytest.fixture(scope="module")
def two() -> list[Results]:
    return [make_results(tasks=("osuleaf",), seed=0, source="a/results.json", commit="1111111aaaaaaa"),
            make_results(tasks=("osuleaf",), seed=1, source="b/results.json", commit="2222222bbbbbbb")]


def test_model_tables(one):
    rep = build_model(one)
    assert [t.task for t in rep.tasks] == ["osuleaf", "ucf101_small"]
    t = rep.tasks[0]
    assert list(t.accuracy["model"]) == ["teacher", "student_scratch", "student_kd"]
    teacher = t.size.set_index("model").loc["teacher"]
    assert teacher["onnx_ratio"] == pytest.approx(1.0)
    kd = t.size.set_index("model").loc["student_kd"]
    assert kd["onnx_ratio"] == pytest.approx(652_000 / 4_864_000)
    perf = t.performance
    assert set(perf["backend"]) == {"torch", "onnxruntime"} and set(perf["batch_size"]) == {1, 8}
    row = perf[(perf.model == "student_kd") & (perf.backend == "onnxruntime") & (perf.batch_size == 1)].iloc[0]
    assert row["speedup_basis"] == "paired" and 3.0 < row["speedup"] < 3.7
    assert row["speedup_ci_lo"] < row["speedup"] < row["speedup_ci_hi"]
    assert row["throughput_ratio"] > 2.5 and row["mem_ratio"] < 0.5
    assert not t.kd_vs_scratch.empty and t.kd_vs_scratch.iloc[0]["basis"] == "training seeds"
    assert len(t.ort_vs_torch) == 6 and (t.ort_vs_torch["ort_speedup"] > 1).all()
    verdict = t.verdicts[rep.labels[0]]
    assert re.match(r"KD student: [+-]\d+\.\d pts vs teacher \[CI [+-]\d+\.\d, [+-]\d+\.\d\], "
                    r"[+-]\d+\.\d pts vs scratch, p[=<][\d.]+; \d+\.\dx faster on onnxruntime \(batch 1\)", verdict)
    # warnings: unstable timing, parity failure, results-level warning
    msgs = " | ".join(rep.warnings["message"])
    assert "unstable" in msgs and "disagrees" in msgs and "parity failed for" in msgs


def test_table_and_md(one):
    table = build_report(one, "table")
    assert "Verdict: KD student:" in table and "speedup vs teacher" in table and "ONNX Runtime vs PyTorch" in table
    assert "Warnings" in table and "unstable" in table
    md = build_report(one, "md")
    assert "| model " in md and "| acc % (mean)" in md and "|---" in md
    assert "**Verdict** KD student:" in md
    assert "## Task osuleaf" in md and "## Task ucf101_small" in md


def test_csv_parses_back(one):
    text = build_report(one, "csv")
    df = pd.read_csv(io.StringIO(text))
    assert {"section", "source", "task", "model", "metric", "value"} <= set(df.columns)
    assert {"verdict", "accuracy", "size", "performance", "kd_vs_scratch", "ort_vs_torch", "warning"} <= set(
        df["section"])
    sp = df[(df.section == "performance") & (df.metric == "speedup") & (df.model == "student_kd")
            & (df.backend == "onnxruntime") & (df.batch_size == 1) & (df.task == "osuleaf")]
    assert len(sp) == 1 and 3.0 < float(sp["value"].iloc[0]) < 3.7


def test_json_parses(one):
    doc = json.loads(build_report(one, "json"))
    assert doc["schema"] == "kd-harness/report/1"
    assert [t["task"] for t in doc["tasks"]] == ["osuleaf", "ucf101_small"]
    perf = doc["tasks"][0]["tables"]["performance"]
    assert any(r["model"] == "student_kd" and r["speedup"] > 3 for r in perf)
    assert all("KD student" in v for v in doc["tasks"][0]["verdicts"].values())


def test_html_self_contained(one):
    html = build_report(one, "html")
    assert html.startswith("<!DOCTYPE html>")
    assert "Plotly.newPlot" in html and len(html) > 3_000_000  # plotly.js inlined
    assert not re.search(r"<script[^>]+src=", html), "no external scripts"
    assert not re.search(r"<link[^>]+href=[\"']https?:", html)
    for task in ("osuleaf", "ucf101_small"):
        for kind in ("scatter", "latency", "throughput"):
            assert f'id="plot-{task}-{kind}"' in html
    assert "Pareto front" in html and "KD student:" in html and "<table" in html


def test_side_by_side_sources(two, tmp_path):
    assert source_labels(two) == ["results.json@1111111a", "results.json@2222222b"]
    md = build_report(two, "md")
    labels = source_labels(two)
    header = next(line for line in md.splitlines() if line.startswith("| model") and "metric" in line)
    assert all(lab in header for lab in labels)
    assert md.count("**Verdict** [") == 2
    html = build_report(two, "html")
    assert all(lab in html for lab in labels)
    # files on disk from one commit on two machines: the folder tells them apart
    paths = []
    for i, res in enumerate(two):
        res = Results.from_dict(res.to_dict())
        res.environment["git_commit"] = "1111111aaaaaaa"
        p = tmp_path / f"m{i}" / "results.json"
        write_results(p, res)
        paths.append(p)
    out = build_report(paths, "table")
    assert "m0/results.json@1111111a" in out and "m1/results.json@1111111a" in out


def test_pytest_benchmark_input(tmp_path):
    path = tmp_path / "bench.json"
    doc = write_pytest_benchmark(path)
    assert is_pytest_benchmark(doc)
    res = from_pytest_benchmark(doc, source=str(path))
    assert res.environment["git_commit"].startswith("9e8d7c6b")
    lat = [m for m in res.measurements if m.suite == "latency"]
    assert len(lat) == 5
    kd = next(m for m in lat if m.model == "student_kd" and m.backend == "onnxruntime")
    bench = next(b for b in doc["benchmarks"] if b["extra_info"]["role"] == "student_kd"
                 and b["extra_info"]["backend"] == "onnxruntime")
    assert kd.metrics["p50_ms"] == pytest.approx(bench["stats"]["median"] * 1e3)
    assert kd.metrics["iqr_ms"] == pytest.approx(bench["stats"]["iqr"] * 1e3)
    assert kd.metrics["n"] == 50 and len(kd.samples_ns) == 50 and "p99_ms" in kd.metrics
    assert kd.task == "osuleaf" and kd.batch_size == 1 and kd.threads == 1
    entry = res.model_entry("osuleaf", "student_kd")
    assert entry["onnx_bytes"] == 652_000 and entry["params"] == 151_000
    acc = [m for m in res.measurements if m.suite == "accuracy" and m.model == "student_kd"]
    assert {m.backend for m in acc} == {"onnxruntime", "torch"}

    text = build_report([path], "table")
    assert "bench.json@9e8d7c6b" in text
    assert "KD student:" in text and "faster on onnxruntime (batch 1)" in text
    html = build_report([path], "html")
    assert 'id="plot-osuleaf-scatter"' in html and 'id="plot-osuleaf-latency"' in html


def test_pytest_benchmark_without_data_or_extra_info(tmp_path):
    path = tmp_path / "bench.json"
    doc = write_pytest_benchmark(path, with_data=False)
    for b in doc["benchmarks"]:
        b.pop("extra_info")
        b["params"] = None
    res = from_pytest_benchmark(doc)
    assert all(m.samples_ns is None for m in res.measurements)
    assert any("no extra_info.role" in w for w in res.warnings)
    for fmt in ("table", "md", "csv", "json", "html"):
        assert build_report(res, fmt)
    doc["benchmarks"][0]["stats"].pop("median")
    with pytest.raises(SchemaError, match="median"):
        from_pytest_benchmark(doc)


def test_partial_and_empty_results_do_not_crash():
    partial = make_results(tasks=("osuleaf",), roles=("teacher", "student_kd"), backends=("onnxruntime",),
                           batch_sizes=(1,), with_summary=False, with_paired=False, commit=None)
    for m in partial.models.values():
        m.pop("parity")
        m.pop("onnx_bytes")
    partial.measurements = [m for m in partial.measurements if m.suite not in ("storage", "throughput")]
    rep = build_model(partial)
    t = rep.tasks[0]
    row = t.performance[t.performance.model == "student_kd"].iloc[0]
    assert row["speedup_basis"] == "p50 ratio"
    assert t.kd_vs_scratch.empty
    v = t.verdicts[rep.labels[0]]
    assert v.startswith("KD student:") and "faster on onnxruntime" in v and "pts vs teacher" in v
    for fmt in ("table", "md", "csv", "json", "html"):
        assert build_report(partial, fmt)
    empty = Results()
    for fmt in ("table", "md", "csv", "json", "html"):
        assert build_report(empty, fmt)
    only_summary = Results(tasks={"osuleaf": {"task": "osuleaf", "models": {
        "teacher": {"accuracy": {"mean": 0.9}}, "student_kd": {"accuracy": 0.88}}}})
    rep = build_model(only_summary)
    assert rep.tasks[0].verdicts[rep.labels[0]] == "KD student: -2.0 pts vs teacher."
    only_meas = Results(measurements=[Measurement("", "student_scratch", "torch", "latency", 1, 1, {"p50_ms": 1.0})])
    assert "Scratch student" in build_report(only_meas, "table")


def test_bad_inputs(tmp_path):
    with pytest.raises(OptionError, match="unknown report format"):
        build_report(make_results(tasks=("osuleaf",)), "pdf")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "kd-harness/results/0", "measurements": []}))
    with pytest.raises(SchemaError, match="schema"):
        build_report([old], "table")
    with pytest.raises(SchemaError, match="not found"):
        build_report([tmp_path / "missing.json"], "table")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        build_report([bad], "table")


def test_write_report(tmp_path, capsys):
    res = make_results(tasks=("osuleaf",))
    src = tmp_path / "results.json"
    write_results(src, res)
    out = write_report([src], out=tmp_path / "r" / "report.html")
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert format_for_path("x.md", None) == "md" and format_for_path(None, None) == "table"
    assert write_report([src], "csv") is None
    assert capsys.readouterr().out.startswith("section,")
    assert not list((tmp_path / "r").glob(".*tmp"))


def test_pareto_front_and_diff_stats():
    pts = [(1.0, 80.0), (2.0, 90.0), (1.5, 85.0), (3.0, 89.0), (0.5, 70.0), (2.5, 90.0)]
    assert pareto_front(pts) == [(0.5, 70.0), (1.0, 80.0), (1.5, 85.0), (2.0, 90.0)]
    d = diff_stats([90, 91, 92], [88, 89, 90])
    assert d["diff"] == pytest.approx(2.0) and d["ci"] == (2.0, 2.0) and d["p_value"] == 0.0
    d = diff_stats([90, 92, 91.5], [88, 89, 91])
    assert d["test"] == "paired t" and d["ci"][0] < d["diff"] < d["ci"][1]
    assert diff_stats(None, None) == {}
