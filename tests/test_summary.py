"""The report's first screen (harness/report/summary.py, screen.py): what to deploy across every model and
runtime, what distillation bought, the compact table, caveats grouped by cause; the A/A control; int8 peaks."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import add_variants, make_results  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.measure.paired import CONTROL_MARGIN, PairedConfig, control_check, time_round_robin  # noqa: E402
from harness.metrics import RooflineMetrics  # noqa: E402
from harness.report import build_report  # noqa: E402
from harness.report.content import build_model  # noqa: E402
from harness.report.html import label_positions  # noqa: E402
from harness.report.screen import fit_table, render_screen  # noqa: E402
from harness.report.summary import cause_of, grouped_warnings  # noqa: E402
from harness.report.tables import peak_for  # noqa: E402
from harness.results import Results  # noqa: E402

KD_FAST = {"accuracy": 0.915, "time": 0.6, "size": 0.3, "agreement": 0.985}  # keeps 99% of 92.0%, faster
KD_SLOW = {"accuracy": 0.915, "time": 6.0, "size": 0.3, "agreement": 0.985}  # keeps it, 6x slower than fp32


def quantized(variants: dict, **kw) -> Results:
    return add_variants(make_results(tasks=("osuleaf",), **kw), variants)


def summary(res: Results, target: float = 0.99):
    (s,) = build_model(res, target).tasks[0].summaries.values()
    return s


def test_int8_faster_and_keeping_quality_is_named():
    s = summary(quantized({"student_kd@int8": KD_FAST}))
    assert s.deploy.startswith("Deploy student_kd@int8 on onnxruntime: "), s.deploy
    assert "faster than the fp32 teacher at batch 1 [CI" in s.deploy and "Int8 does not pay" not in s.deploy


def test_int8_slower_than_fp32_names_the_fp32_model_first():
    # at a 97% target the fp32 KD student (90.2% of a 92.0% teacher) keeps it; its int8 variant is 6x slower
    s = summary(quantized({"student_kd@int8": KD_SLOW}), target=0.97)
    assert s.deploy.startswith("Deploy student_kd on "), s.deploy
    assert "Int8 does not pay on onnxruntime here" in s.deploy and "(student_kd@int8 " in s.deploy
    assert s.deploy.index("Deploy student_kd on") < s.deploy.index("student_kd@int8")


def test_no_student_keeps_the_target_deploys_the_teacher_and_names_the_closest():
    s = summary(make_results(tasks=("osuleaf",)))  # students at 88.1% and 90.2% of a 92.0% teacher
    assert s.deploy.startswith("Deploy the teacher on ") and "no student keeps >= 99%" in s.deploy
    assert "the closest, student_kd on" in s.deploy


def test_distillation_line_and_compact_table():
    s = summary(make_results(tasks=("osuleaf",)))
    assert s.distillation.startswith("Distillation: +") and "over the same student trained from scratch [CI" in \
        s.distillation and "(training seeds, 3 seeds)" in s.distillation
    assert {r["model"] for r in s.rows} == {"teacher", "student_scratch", "student_kd"}
    kd = next(r for r in s.rows if r["model"] == "student_kd")
    assert kd["runtime"] == "onnxruntime" and kd["speedup"] > 1 and kd["speedup_ci"][0] < kd["speedup"]
    assert kd["throughput_sps"] and kd["size_ratio"] < 1 and kd["peak_mem_mb"] is not None


def test_one_screen_fits_100_columns_and_25_lines_per_task():
    res = add_variants(make_results(tasks=("osuleaf", "moving-digits")),
                       {"student_kd@int8": KD_FAST, "teacher@int8": KD_SLOW, "student_scratch@int8": KD_FAST})
    text = render_screen(build_model(res), width=100)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    blocks = text.split("\n== ")[1:]
    assert len(blocks) == 2 and all(len(b.splitlines()) <= 25 for b in blocks), [len(b.splitlines()) for b in blocks]
    narrow = render_screen(build_model(res), width=70)
    assert max(len(line) for line in narrow.splitlines()) <= 70  # columns dropped, never a wrapped table


def test_fit_table_drops_columns_least_important_first():
    rows = [{"model": "student_kd@int8", "runtime": "ORT", "acc % [CI]": "91.5", "pts": "-0.5",
             "speedup b1 [CI]": "3.10x [2.90, 3.30]", "samples/s": "12k @64", "size": "0.07x", "peak MB": "3.2"}]
    full = fit_table(rows, 200)
    assert "peak MB" in full
    tight = fit_table(rows, 75)
    assert "peak MB" not in tight and "speedup" in tight and max(map(len, tight.splitlines())) <= 75


def test_details_and_quality_target_options(tmp_path, capsys):
    from harness.results import write_results

    path = write_results(tmp_path / "r.json", make_results(tasks=("osuleaf",)))
    assert main(["report", str(path)]) == 0
    short = capsys.readouterr().out
    assert main(["report", str(path), "--details"]) == 0
    full = capsys.readouterr().out
    assert "Latency, throughput and memory" in full and "Latency, throughput and memory" not in short
    assert len(short.splitlines()) < len(full.splitlines())
    assert main(["report", str(path), "--quality-target", "95"]) == 0
    assert "Deploy student_kd on" in capsys.readouterr().out  # 90.2 / 92.0 = 98% keeps a 95% target
    assert main(["report", str(path), "--quality-target", "0"]) == 2
    assert main(["report", str(path), "--format", "md", "--details"]) == 2
    err = capsys.readouterr().err
    assert "--quality-target" in err and "--details goes with the terminal table" in err
    assert build_report(path, "full").startswith("kd-harness report")


# -- warnings grouped by cause ---------------------------------------------------------------------

def test_cause_masks_numbers_and_teacher_warnings_count_once():
    assert cause_of("only 12 samples (< 30): percentiles and CI are rough") == "only # samples (< #)"
    res = make_results(tasks=("osuleaf",))
    for m in res.measurements:
        m.warnings = []
    paired = [m for m in res.measurements if m.suite == "paired" and m.backend == "torch"]
    for m in paired:  # the teacher's blocks are shared by every candidate: the same warning on each
        m.warnings = ["teacher: long tail: p90 is 70% above p50 (threshold 50%); other load"]
    groups = grouped_warnings(res, "osuleaf")
    assert len(groups) == 1 and groups[0]["models"] == ["teacher"] and groups[0]["count"] == 1
    assert groups[0]["category"] == "unsteady timing" and groups[0]["causes"] == {"long tail": 1}
    (s,) = build_model(res).tasks[0].summaries.values()
    assert len(s.caveats) == 1 and s.caveats[0].startswith("Unsteady timing (long tail) on teacher [torch]")


# -- the A/A control -----------------------------------------------------------------------------------

def test_control_check_passes_a_twin_and_fails_a_biased_one():
    rng = np.random.default_rng(0)
    ref = [rng.lognormal(np.log(1e6), 0.05, (20, 10)) for _ in range(2)]
    twin = [rng.lognormal(np.log(1e6), 0.05, (20, 10)) for _ in range(2)]
    ok = control_check(ref, twin)
    assert ok["control_valid"] and abs(ok["control_ratio"] - 1) < 0.03
    slow = [g * (1 + 3 * CONTROL_MARGIN) for g in twin]  # one session 6% slower every round
    bad = control_check(ref, slow)
    assert not bad["control_valid"] and bad["control_ci95"][1] < 1 - CONTROL_MARGIN


class FakeTimer:
    """A timer whose calls take `ns` (times a factor while `disturbed` says so)."""

    def __init__(self, ns: float, rng, factor: float = 1.0):
        self.ns, self.rng, self.factor = ns, rng, factor

    def warm_up(self, batch, cfg):
        return [int(self.ns)] * 5

    def block(self, batch, k, warmup_calls=0):
        return (self.rng.lognormal(np.log(self.ns * self.factor), 0.03, k)).astype(np.int64)


def test_round_robin_gives_the_control_the_references_block_size():
    rng = np.random.default_rng(1)
    timers = [FakeTimer(2e6, rng), FakeTimer(5e5, rng), FakeTimer(2e6, rng)]
    cfg = PairedConfig(rounds=6, block_time_s=0.01, settle_s=0.0)
    out, cal = time_round_robin(timers, None, cfg, sleep=lambda s: None, same_k={2: 0})
    assert out[2].shape == out[0].shape and out[1].shape[1] != out[0].shape[1]
    # a planted disturbance that lands on one session only (a neighbour on its core) fails the control
    timers[2].factor = 1.08
    out, _ = time_round_robin(timers, None, cfg, sleep=lambda s: None, same_k={2: 0})
    assert not control_check([out[0]], [out[2]])["control_valid"]


def test_validity_rows_read_the_control_where_a_file_has_one():
    res = make_results(tasks=("osuleaf",))
    paired = [m for m in res.measurements if m.suite == "paired"]
    for m in paired:
        m.metrics.control_ratio, m.metrics.control_ci95, m.metrics.control_valid = 1.004, (0.99, 1.02), True
    t = build_model(res).tasks[0]
    assert set(t.validity["valid"]) == {True} and "control_ratio" in t.validity.columns
    paired[0].metrics.control_ratio, paired[0].metrics.control_ci95 = 1.09, (1.05, 1.12)
    paired[0].metrics.control_valid = False
    t = build_model(res).tasks[0]
    assert any("A/A control of teacher" in n for n in t.notes.get("validity", []))
    (s,) = t.summaries.values()
    assert any(c.startswith("Validity check failed on 1 paired run(s)") for c in s.caveats)


# -- peaks per data type ---------------------------------------------------------------------------

def test_int8_variants_are_judged_against_the_int8_peak():
    roof = RooflineMetrics(peak_gflops=50.0, theoretical_peak_gflops=80.0, int8_peak_gops=400.0)
    assert peak_for("student_kd@int8", roof) == (400.0, None, "int8 GEMM")
    assert peak_for("student_kd@int8-dynamic", roof)[0] == 400.0
    assert peak_for("student_kd", roof) == (50.0, 80.0, "fp32 GEMM")
    assert peak_for("teacher@int8", RooflineMetrics(peak_gflops=50.0))[0] is None  # older file: no int8 peak
    res = quantized({"student_kd@int8": KD_FAST}, roofline={"int8_peak_gops": 1e3})
    for m in res.measurements:
        if m.suite == "latency" and m.model in ("student_kd@int8", "student_kd"):
            m.metrics.gflops = 200.0  # above the fp32 peak (150): an int8 model judged by it would read 133%
    perf = build_model(res).tasks[0].performance
    rows = perf[perf["model"] == "student_kd@int8"]
    assert set(rows["peak_kind"].dropna()) == {"int8 GEMM"} and set(rows["pct_peak"].dropna()) == {20.0}
    fp32 = perf[(perf["model"] == "student_kd") & perf["pct_peak"].notna()]
    assert set(fp32["peak_kind"]) == {"fp32 GEMM"} and (fp32["pct_peak"] > 100).all()


def test_int8_peak_is_measured():
    from harness.measure.roofline import measure_int8_peak

    out = measure_int8_peak(threads=1, n=128, max_runs=2)
    assert out["int8_peak_gops"] > 0 and "MatMulInteger" in out["int8_peak_source"]


def test_pareto_labels_of_close_points_take_different_sides():
    pos = label_positions([(1.0, 90.0), (1.02, 90.1), (10.0, 80.0), (1.01, 90.05)])
    assert len({pos[0], pos[1], pos[3]}) == 3 and pos[2] == "top center"


def test_pareto_labels_of_long_names_do_not_overlap():
    from harness.report.html import PLOT_AREA_PX, _label_box, _overlap

    names = ["teacher", "teacher@int8", "student_scratch", "student_scratch@int8", "student_kd", "student_kd@int8"]
    # twin students (same architecture) on one spot, as a real run gives them; variants beside them
    pts = [(0.35, 98.3), (0.30, 96.7), (0.06, 97.5), (0.07, 95.5), (0.06, 97.5), (0.068, 96.7)]
    pos = label_positions(pts, names)
    # the same pixel geometry the placement assumes: no two labels share pixels
    import math
    xs = [math.log10(x) for x, _ in pts]
    ys = [y for _, y in pts]
    w, h = PLOT_AREA_PX
    px = [w * (0.05 + 0.9 * (x - min(xs)) / (max(xs) - min(xs))) for x in xs]
    py = [h * (0.05 + 0.9 * (y - min(ys)) / (max(ys) - min(ys))) for y in ys]
    boxes = [_label_box(p, x, y, 7.0 * len(n)) for p, x, y, n in zip(pos, px, py, names)]
    assert all(_overlap(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:]), pos


def test_best_runtime_headline_compares_each_model_on_its_fastest_runtime():
    from harness.report.summary import best_runtime_line

    def row(model, runtime, p50, speedup, ci=None):
        return {"model": model, "runtime": runtime, "p50_ms": p50, "speedup": speedup, "batch": 1,
                "p50_ci": ci or (0.95 * p50, 1.05 * p50)}

    rows = [row("teacher", "onnxruntime", 0.348, 1.0), row("teacher", "openvino", 0.129, 1.0),
            row("student_kd", "onnxruntime", 0.061, 5.7), row("student_kd", "openvino", 0.084, 1.5),
            row("student_kd@int8", "onnxruntime", 0.05, 7.0)]  # variants are not the headline's student
    line = best_runtime_line(rows)
    assert line.startswith("Each on its fastest runtime: student_kd on onnxruntime (0.061 ms) vs the teacher on "
                           "openvino (0.129 ms): 2.1x [CI 1.91, 2.34] at batch 1 (latency medians, not paired)"), line
    assert line.endswith("on onnxruntime alone 5.7x (paired).")
    assert best_runtime_line([r for r in rows if r["runtime"] == "onnxruntime"]) == ""  # one runtime: no line


def test_a_variants_accuracy_is_its_own_runtimes():
    """OpenVINO's int8 kernels round differently from ONNX Runtime's: each runtime's row of a variant carries
    the accuracy measured on that runtime, and the verdict judges the quality target per runtime."""
    from dataclasses import replace as dc_replace

    from harness.report.summary import model_rows

    res = quantized({"student_kd@int8": KD_FAST})
    extra = []
    for m in res.measurements:
        if m.model == "student_kd@int8" and m.backend == "onnxruntime" and m.suite in ("latency", "accuracy"):
            metrics = m.metrics.to_dict() if hasattr(m.metrics, "to_dict") else dict(m.metrics)
            if m.suite == "accuracy":
                metrics["accuracy"] = 0.80  # far below the target on this runtime only
            extra.append(dc_replace(m, backend="openvino", metrics=metrics))
    res.measurements += extra
    rows, _ = model_rows(res, "osuleaf")
    acc = {r["runtime"]: (r["acc_pct"], r["meets_target"]) for r in rows if r["model"] == "student_kd@int8"}
    assert acc["openvino"] == (80.0, False) and acc["onnxruntime"][1] is True
    assert abs(acc["onnxruntime"][0] - 91.5) < 1e-6
