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
from harness.measure.stats import difference as diff_stats  # noqa: E402
from harness.report.content import build_model  # noqa: E402
from harness.report.lookup import source_labels  # noqa: E402
from harness.report.pytest_benchmark import from_pytest_benchmark, is_pytest_benchmark  # noqa: E402
from harness.report.html import pareto_front  # noqa: E402
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
    # warnings: unstable timing (the words stability_warnings writes), parity failure, results-level warning
    msgs = " | ".join(rep.warnings["message"])
    assert "wide spread" in msgs and "disagrees" in msgs and "parity failed for" in msgs


def test_table_and_md(one):
    table = build_report(one, "full")
    assert "Verdict: KD student:" in table and "speedup vs teacher" in table and "Runtimes vs PyTorch eager" in table
    assert "Warnings" in table and "wide spread" in table
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
    out = build_report(paths, "full")
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
    assert kd.metrics.p50_ms == pytest.approx(bench["stats"]["median"] * 1e3)
    assert kd.metrics.iqr_ms == pytest.approx(bench["stats"]["iqr"] * 1e3)
    assert kd.metrics.n == 50 and len(kd.samples_ns) == 50 and kd.metrics.p99_ms is not None
    assert kd.task == "osuleaf" and kd.batch_size == 1 and kd.threads == 1
    entry = res.model_entry("osuleaf", "student_kd")
    assert entry["onnx_bytes"] == 652_000 and entry["params"] == 151_000
    acc = [m for m in res.measurements if m.suite == "accuracy" and m.model == "student_kd"]
    assert {m.backend for m in acc} == {"onnxruntime", "torch"}

    assert res.environment["cpu_model"] == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert res.environment["cpu_isa"] == ["avx", "avx2", "avx512f", "fma", "sse4_2"]
    text = build_report([path], "full")
    assert "bench.json@9e8d7c6b" in text and "Intel(R) Xeon(R) CPU @ 2.20GHz" in text
    assert "ISA sse4_2 avx avx2 fma avx512f" in text
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
    for fmt in ("table", "full", "md", "csv", "json", "html"):
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
    for fmt in ("table", "full", "md", "csv", "json", "html"):
        assert build_report(partial, fmt)
    empty = Results()
    for fmt in ("table", "full", "md", "csv", "json", "html"):
        assert build_report(empty, fmt)
    only_summary = Results(tasks={"osuleaf": {"task": "osuleaf", "models": {
        "teacher": {"accuracy": {"mean": 0.9}}, "student_kd": {"accuracy": 0.88}}}})
    rep = build_model(only_summary)
    assert rep.tasks[0].verdicts[rep.labels[0]] == "KD student: -2.0 pts vs teacher."
    only_meas = Results(measurements=[Measurement("", "student_scratch", "torch", "latency", 1, 1, {"p50_ms": 1.0})])
    assert "Scratch student" in build_report(only_meas, "full")


def test_bad_inputs(tmp_path):
    with pytest.raises(OptionError, match="unknown report format"):
        build_report(make_results(tasks=("osuleaf",)), "pdf")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "kd-harness/results/0", "measurements": []}))
    with pytest.raises(SchemaError, match="schema"):
        build_report([old], "full")
    with pytest.raises(SchemaError, match="not found"):
        build_report([tmp_path / "missing.json"], "full")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        build_report([bad], "full")


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


# -- issue 9: report bugs and validity checks ---------------------------------------------------

def test_roofline_makes_no_phantom_task(tmp_path):
    """A bench adds one machine-wide roofline row (task "", model ""). With two tasks it used to
    become a third section, "Task (unnamed)", repeating the first task's training table."""
    res = make_results(tasks=("osuleaf", "moving_digits"), roofline={})
    path = tmp_path / "results.json"
    write_results(path, res)  # as `harness run` writes it, read back
    rep = build_model([path])
    assert [t.task for t in rep.tasks] == ["osuleaf", "moving_digits"]
    for fmt in ("table", "md", "html"):
        text = build_report([path], fmt)
        assert "(unnamed)" not in text
    assert [t["task"] for t in json.loads(build_report([path], "json"))["tasks"]] == ["osuleaf", "moving_digits"]
    # the roofline still serves both tasks
    for t in rep.tasks:
        assert t.performance["pct_peak"].notna().all()
    # a single task with a roofline row: one section, as before
    rep1 = build_model(make_results(tasks=("osuleaf",), roofline={}))
    assert [t.task for t in rep1.tasks] == ["osuleaf"]
    # measurements with no task at all still get a section of their own
    only = Results(measurements=[Measurement("", "student_kd", "torch", "latency", 1, 1, {"p50_ms": 1.0})])
    assert [t.task for t in build_model(only).tasks] == [""]


def test_cpu_model_and_isa_shown():
    """collect() writes cpu_model (not cpu) and cpu_isa: the sources line must show both."""
    from harness.measure.environment import collect

    env = collect(threads=1)
    assert "cpu_model" in env and "cpu_isa" in env
    res = make_results(tasks=("osuleaf",))
    res.environment = {**env, "cpu_model": "Test CPU 9000", "cpu_isa": ["avx2", "avx512f", "fma"]}
    table = build_report(res, "full")
    line = next(line for line in table.splitlines() if "measurements" in line)
    assert "Test CPU 9000" in line and "ISA avx2 fma avx512f" in line
    assert "Test CPU 9000" in build_report(res, "md") and "Test CPU 9000" in build_report(res, "html")
    assert json.loads(build_report(res, "json"))["sources"][0]["cpu"] == "Test CPU 9000"
    # pytest-benchmark input and older files name it "cpu"
    res.environment = {"cpu": "Old CPU"}
    assert "Old CPU" in build_report(res, "full")


def test_unstable_column(one):
    """The column follows the stability thresholds, not a word in a warning's text."""
    perf = build_model(one).tasks[0].performance
    flagged = perf[perf["unstable"].fillna(False).astype(bool)]
    assert {(r.model, r.batch_size) for r in flagged.itertuples()} == {("teacher", 1)}
    assert set(flagged["backend"]) == {"torch", "onnxruntime"}
    # the warnings on those rows are the latency suite's own wording
    lat = [m for m in one.measurements if m.suite == "latency" and m.model == "teacher" and m.batch_size == 1]
    assert all(m.warnings for m in lat) and not any("unstable" in w for m in lat for w in m.warnings)
    table = build_report(one, "full")
    teacher_b1 = [line for line in table.splitlines() if line.startswith("teacher ") and " 1 " in line
                  and line.rstrip().endswith("yes")]
    assert len(teacher_b1) >= 2
    # a structured flag wins; without summary metrics any warning counts
    from harness.report.notes import is_unstable
    assert is_unstable(Measurement("t", "m", "torch", "latency", 1, 1, {"unstable": True})) is True
    assert is_unstable(Measurement("t", "m", "torch", "latency", 1, 1, {"p50_ms": 1.0}, warnings=["x"])) is True
    assert is_unstable(Measurement("t", "m", "torch", "latency", 1, 1, {"p50_ms": 1.0})) is False


def test_validity_section_flags_disturbed_paired_timing():
    res = make_results(tasks=("osuleaf",), paired_disturbance={"student_kd": 1.21})
    rep = build_model(res)
    t = rep.tasks[0]
    v = t.validity
    assert len(v) == 8  # 2 students x 2 backends x 2 batch sizes
    kd = v[v.model == "student_kd"]
    sc = v[v.model == "student_scratch"]
    assert (kd["paired_vs_latency_pct"] > 15).all() and not kd["valid"].any()
    assert (sc["paired_vs_latency_pct"].abs() <= 5).all() and sc["valid"].all()
    assert (v["reference"] == "teacher").all() and v["ref_paired_vs_latency_pct"].abs().max() <= 5
    notes = t.notes["validity"]
    assert len(notes) == 4 and all(n.startswith("paired p50 of student_kd (") for n in notes)
    assert any("(onnxruntime, batch 1, 1 thread(s), paired with teacher) is" in n
               and "% above its isolated latency p50: the paired run disturbed the timing" in n for n in notes)
    assert "(paired timing failed its validity check)" in t.verdicts[rep.labels[0]]
    table = build_report(res, "full")
    assert "Validity: the A/A control" in table
    assert "Warning: paired p50 of student_kd" in table
    md = build_report(res, "md")
    assert "### Validity" in md and "**Warning:** paired p50 of student_kd" in md
    html = build_report(res, "html")
    assert "Validity: the A/A control" in html and "Warning: paired p50 of student_kd" in html
    df = pd.read_csv(io.StringIO(build_report(res, "csv")))
    assert {"validity", "validity_warning"} <= set(df["section"])
    assert len(df[(df.section == "validity") & (df.metric == "paired_vs_latency_pct")]) == 8
    doc = json.loads(build_report(res, "json"))
    assert len(doc["tasks"][0]["tables"]["validity"]) == 8 and len(doc["tasks"][0]["notes"]["validity"]) == 4
    # undisturbed: every row within 5%, no warnings, no caveat
    clean = build_model(make_results(tasks=("osuleaf",)))
    assert clean.tasks[0].validity["valid"].all() and "validity" not in clean.tasks[0].notes
    assert "validity" not in clean.tasks[0].verdicts[clean.labels[0]]


def test_pct_of_peak_above_100_comes_with_its_cause():
    # peak measured on numpy and torch only (an older file): ONNX Runtime's own GEMM never ran
    res = make_results(tasks=("osuleaf",), roofline={
        "peak_gflops": 60.0, "peak_source": "numpy", "peak_by_source": {"numpy": 60.0, "torch": 50.0},
        "numpy_gflops": 60.0, "torch_gflops": 50.0, "onnxruntime_gflops": None})
    t = build_model(res).tasks[0]
    perf = t.performance
    over = perf[perf.pct_peak > 100]
    assert len(over) >= 2  # the teachers at batch 8 at least
    notes = t.notes["performance"]
    assert len(notes) == len(over)
    for r, note in zip(over.itertuples(), notes):
        assert note.startswith(f"{r.model} ({r.backend}, batch {r.batch_size}, 1 thread(s)) at ")
        assert "% of the measured GEMM peak (60.0 GFLOP/s, numpy)" in note and "theoretical peak 192.0" in note
    ort_note = next(n for n in notes if "(onnxruntime," in n)
    assert "never on onnxruntime's own kernels" in ort_note and "slower kernels than the model's runtime" in ort_note
    assert perf["pct_theoretical"].notna().all() and (perf["pct_theoretical"] < 100).all()
    table = build_report(res, "full")
    assert "(!)" in table and "Warning: teacher (onnxruntime, batch 8" in table
    assert "measured GEMM peak 60.0 GFLOP/s (by source: numpy 60.0, torch 50.0; 1 thread(s)); " \
           "theoretical peak 192.0 GFLOP/s" in table
    # every printed % of peak above 100 has a warning naming that row
    for line in table.splitlines():
        if "(!)" in line:
            model, backend, batch = line.split()[:3]
            assert any(n.startswith(f"{model} ({backend}, batch {batch},") for n in notes)
    assert "Warning: teacher (onnxruntime, batch 8" in build_report(res, "html")
    # the runtime's own GEMM measured and still outrun, above the theoretical peak too
    res2 = make_results(tasks=("osuleaf",), roofline={
        "peak_gflops": 60.0, "peak_source": "onnxruntime",
        "peak_by_source": {"numpy": 55.0, "torch": 50.0, "onnxruntime": 60.0}, "theoretical_peak_gflops": 100.0})
    notes2 = build_model(res2).tasks[0].notes["performance"]
    ort2 = next(n for n in notes2 if "(onnxruntime, batch 8" in n)
    assert "outran its own GEMM (60.0 GFLOP/s)" in ort2 and "which the model exceeds too" in ort2
    # a real peak: nothing above 100%, no warning
    fine = build_model(make_results(tasks=("osuleaf",), roofline={})).tasks[0]
    assert (fine.performance["pct_peak"] <= 100).all() and "performance" not in fine.notes
    # an old roofline row without peak_by_source or a theoretical peak still loads
    old = make_results(tasks=("osuleaf",), roofline={"peak_gflops": 60.0})
    for m in old.measurements:
        if m.suite == "roofline":
            for k in ("peak_by_source", "theoretical_peak_gflops", "theoretical_peak_method", "onnxruntime_gflops"):
                setattr(m.metrics, k, None)
    old_notes = build_model(old).tasks[0].notes["performance"]
    assert all("theoretical peak unknown" in n for n in old_notes)
    assert "never on onnxruntime's own kernels" in next(n for n in old_notes if "(onnxruntime," in n)
    assert "theoretical peak unknown" in build_report(old, "full")


def test_validity_names_a_machine_state_change_when_the_p10s_agree():
    from harness.report.lookup import find

    res = make_results(tasks=("osuleaf",), paired_disturbance={"student_kd": 1.21})
    for m in res.measurements:  # the fast state agrees between the suites: only the p50s moved
        if m.suite == "latency":
            m.metrics.p10_ms = 0.8 * m.metrics.p50_ms
    for m in res.measurements:
        if m.suite == "paired":
            lat = find(res, m.task, "latency", m.model, m.backend, m.batch_size, m.threads, "")
            ref = find(res, m.task, "latency", "teacher", m.backend, m.batch_size, m.threads, "")
            m.metrics.p10_ms = lat.metrics.p10_ms * 1.01
            m.metrics.reference_summary = {"p10_ms": ref.metrics.p10_ms}
    t = build_model(res).tasks[0]
    kd = t.validity[t.validity.model == "student_kd"]
    assert (kd["paired_vs_latency_pct"] > 15).all() and (kd["paired_vs_latency_p10_pct"].round(1) == 1.0).all()
    notes = t.notes["validity"]
    assert len(notes) == 4 and all("10th percentiles agree (+1.0%)" in n and "changed speed state" in n
                                   for n in notes)
    assert "p10 paired/latency" in build_report(res, "full")


# -- issue 12: a column constant over a table is said once, in the section heading ----------------

def test_constant_columns_go_to_section_headings():
    res = make_results(tasks=("osuleaf",))
    for m in res.measurements:
        m.options = {"graph_optimization": "all", "arena": True}
    opts = "arena=True,graph_optimization=all"
    perf_heading = "Latency, throughput and memory per backend and batch size"
    for fmt, prefix in (("full", ""), ("md", "### ")):
        lines = build_report(res, fmt).splitlines()
        i = next(i for i, line in enumerate(lines) if line.startswith(prefix + perf_heading))
        heading, header = lines[i], lines[i + 2]
        # constant over the table (options, threads): in the heading, not a column
        assert heading == f"{prefix}{perf_heading} — threads: 1 · options: {opts}"
        assert "options" not in header and "threads" not in header and opts not in "\n".join(lines[i + 1:i + 16])
        # varying (model, backend, batch size): still columns
        assert re.match(r"\|? ?model +\|? +backend +\|? +batch ", header)
    # CSV and JSON stay complete: every row carries every column
    df = pd.read_csv(io.StringIO(build_report(res, "csv")))
    perf = df[df.section == "performance"]
    assert len(perf) and (perf["options"] == opts).all() and (perf["threads"] == 1).all()
    rows = json.loads(build_report(res, "json"))["tasks"][0]["tables"]["performance"]
    assert all(r["options"] == opts and r["threads"] == 1 for r in rows)
    # HTML keeps its full tables
    assert f"<td>{opts}</td>" in build_report(res, "html")


def test_constant_columns_split():
    from harness.report.display import constant_columns

    disp = pd.DataFrame({"model": ["a", "b"], "threads": ["2", "2"], "options": ["", ""], "p50_ms": ["1", "1"]})
    table, const = constant_columns(disp, ("model", "threads", "options"))
    assert const == [("threads", "2")]  # empty cells are no value to state; metrics are never folded
    assert list(table.columns) == ["model", "options", "p50_ms"]
    assert constant_columns(disp.iloc[:0], ("threads",))[1] == []


def test_verdict_judges_the_one_student_of_a_brought_onnx_pair():
    """`bench --onnx teacher=A --onnx mine=B` has no student_kd/student_scratch: the verdict judges `mine`."""
    from harness.report import build_report as _build

    _make = make_results
    res = _make(tasks=("onnx",), roles=("teacher", "mine"), with_summary=False)
    verdicts = [ln for ln in _build(res, "full").splitlines() if ln.startswith("Verdict")]
    assert verdicts and "Student 'mine'" in verdicts[0] and "faster" in verdicts[0]
    # with a third fp32 model the subject is ambiguous: no guess
    res3 = _make(tasks=("onnx",), roles=("teacher", "mine", "other"), with_summary=False)
    assert any("No student model to judge" in ln for ln in _build(res3, "full").splitlines())
