"""Quantized variants (`student_kd@int8`, ...): the report's "Distill, quantize, or both" table, the
`int8_accuracy_drop` gate rule, and the other rules on variant rows. Files without variants are untouched."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import add_variants, make_results  # noqa: E402

from harness.gate import evaluate_gate, format_gate, gate_exit_code, missing_lines, nothing_compared  # noqa: E402
from harness.metrics import AccuracyMetrics  # noqa: E402
from harness.report import build_report  # noqa: E402
from harness.report.content import build_model  # noqa: E402
from harness.report.derived import drop_vs_fp32, speedup_vs_fp32  # noqa: E402
from harness.report.lookup import role_order, split_role  # noqa: E402
from harness.results import Results  # noqa: E402

# the fixture's fp32 teacher measures 92.0% on onnxruntime (184/200): 99% of it is 91.08%
KD_OK = {"accuracy": 0.915, "time": 0.7, "size": 0.3, "agreement": 0.985}  # 91.5%: keeps the target, fastest
TEACHER_OK = {"accuracy": 0.915, "time": 0.5, "size": 0.27, "agreement": 0.99}  # keeps it, ~2x vs teacher
SCRATCH_SLOW = {"accuracy": 0.85, "time": 1.3, "size": 0.3, "agreement": 0.95}  # misses it, slower than fp32


def bench(variants=None, failed=None, seed=0, **kw) -> Results:
    res = make_results(tasks=("osuleaf",), seed=seed, **kw)
    return add_variants(res, variants if variants is not None else
                        {"teacher@int8": TEACHER_OK, "student_kd@int8": KD_OK, "student_scratch@int8": SCRATCH_SLOW},
                        failed=failed, seed=seed)


@pytest.fixture(scope="module")
def quantized() -> Results:
    return bench(failed={"student_kd@int8-dynamic": "ConvInteger(10) is not implemented\ntraceback ..."})


def test_roles_and_metrics():
    assert split_role("student_kd@int8") == ("student_kd", "int8")
    assert split_role("student_kd") == ("student_kd", None)
    assert role_order(["student_kd@int8", "student_kd", "teacher@int8-dynamic", "teacher", "teacher@int8",
                       "student_scratch"]) == ["teacher", "teacher@int8", "teacher@int8-dynamic", "student_scratch",
                                               "student_kd", "student_kd@int8"]
    assert role_order(["b", "a", "student_kd"]) == ["student_kd", "a", "b"]  # older files: unchanged order
    m = AccuracyMetrics.from_dict({"accuracy": 0.9, "base_accuracy": 0.92, "agreement": 0.97})
    assert (m.base_accuracy, m.agreement, m.extra) == (0.92, 0.97, {})


def test_derived_drop_and_speedup_vs_fp32(quantized):
    d = drop_vs_fp32(quantized, "osuleaf", "student_kd@int8")
    assert d["accuracy"] == pytest.approx(91.5) and d["base_accuracy"] == pytest.approx(90.0)
    assert d["drop_pts"] == pytest.approx(-1.5) and d["agreement_pct"] == pytest.approx(98.5)
    assert drop_vs_fp32(quantized, "osuleaf", "student_kd") == {}
    slow = speedup_vs_fp32(quantized, "osuleaf", "student_scratch@int8", "onnxruntime", 1, 1, "")
    assert slow.value < 1 and slow.ci[1] < 1 and slow.basis == "p50 ratio"
    fast = speedup_vs_fp32(quantized, "osuleaf", "teacher@int8", "onnxruntime", 8, 1, "")
    assert fast.value > 1.5


def test_table_rows_flags_and_columns(quantized):
    t = build_model(quantized).tasks[0]
    v = t.variants
    # one block per runtime, ONNX Runtime first; torch runs the fp32 models only (a variant has no checkpoint)
    assert list(v["backend"].drop_duplicates()) == ["onnxruntime", "torch"]
    ort, torch_rows = v[v["backend"] == "onnxruntime"], v[v["backend"] == "torch"]
    assert list(ort["model"]) == ["teacher", "teacher@int8", "student_scratch", "student_scratch@int8", "student_kd",
                                  "student_kd@int8"]
    assert list(torch_rows["model"]) == ["teacher", "student_scratch", "student_kd"]
    # beside the same-runtime speedup: against the fp32 teacher on ONNX Runtime, from the two latency medians
    tt = torch_rows.set_index("model").loc["teacher"]
    lat = {(m.model, m.backend): m.metrics.p50_ms for m in quantized.measurements
           if m.suite == "latency" and m.batch_size == 1}
    assert tt["speedup_b1"] == 1.0
    assert tt["vs_ort_b1"] == pytest.approx(lat[("teacher", "onnxruntime")] / lat[("teacher", "torch")])
    assert ort.set_index("model").loc["teacher", "vs_ort_b1"] == 1.0
    rows = {r["model"]: r for r in ort.to_dict("records")}
    assert rows["teacher"]["meets_target"] and rows["teacher"]["speedup_b1"] == 1.0
    assert rows["student_kd@int8"]["meets_target"] and rows["teacher@int8"]["meets_target"]
    assert not rows["student_scratch@int8"]["meets_target"]
    assert rows["student_kd@int8"]["of_teacher_pct"] == pytest.approx(100 * 91.5 / 92.0)
    assert rows["student_kd@int8"]["vs_teacher_pts"] == pytest.approx(-0.5)
    assert rows["student_scratch@int8"]["drop_vs_fp32_pts"] == pytest.approx(3.0)
    assert rows["student_kd@int8"]["acc_basis"] == "onnxruntime (seed 0)" and pd.isna(
        rows["student_kd@int8"]["acc_ci_lo_pct"])
    assert rows["student_kd"]["acc_basis"] == "3 seeds" and rows["student_kd"]["acc_ci_lo_pct"] < rows[
        "student_kd"]["acc_pct"]
    assert rows["student_kd@int8"]["onnx_ratio"] < rows["student_kd"]["onnx_ratio"]
    assert rows["student_kd@int8"]["speedup_b8"] > rows["student_kd"]["speedup_b8"] > 1
    assert rows["student_kd@int8"]["speedup_b8_ci_lo"] < rows["student_kd@int8"]["speedup_b8"]
    assert rows["student_kd@int8"]["peak_mem_b1_mb"] < rows["student_kd"]["peak_mem_b1_mb"]
    assert "student_kd@int8-dynamic" not in rows  # failed: a note, not a row
    # the fp32 tables carry the variants too, as models with measurements
    assert "student_kd@int8" in set(t.performance["model"]) and "student_kd@int8" in set(t.accuracy["model"])


def test_verdict_and_notes(quantized):
    t = build_model(quantized).tasks[0]
    (sentence,) = t.section_verdicts["variants"].values()
    assert sentence.startswith("Fastest variant keeping >= 99% of the fp32 teacher's accuracy (MLPerf's rule): "
                               "student_kd@int8, ") and "at batch 8" in sentence
    assert "1.50 pts above its own fp32 model" in sentence
    notes = t.notes["variants"]
    assert notes[0] == "student_kd@int8-dynamic: not available: ConvInteger(10) is not implemented"
    assert notes[1] == "1 variant of osuleaf failed to build or load"
    slow = [n for n in notes if " is slower than " in n]
    assert len(slow) == 1 and slow[0].startswith("student_scratch@int8 is slower than student_scratch in fp32 on "
                                                 "this CPU (onnxruntime p50: 1.3")
    assert "none of avx512_vnni, avx_vnni, amx_int8" in slow[0]


def test_verdict_when_none_keeps_the_target_and_with_vnni():
    res = bench({"student_kd@int8": {**KD_OK, "accuracy": 0.905}, "student_scratch@int8": SCRATCH_SLOW})
    res.environment["cpu_isa"] = ["avx2", "avx512f", "avx512_vnni"]
    t = build_model(res).tasks[0]
    (sentence,) = t.section_verdicts["variants"].values()
    assert sentence.startswith("No variant keeps >= 99% of the fp32 teacher's accuracy (MLPerf's rule); the "
                               "closest is student_kd@int8 at 98.4%")
    assert not t.variants.set_index("model").loc["student_kd@int8", "meets_target"]
    (slow,) = [n for n in t.notes["variants"] if " is slower than " in n]
    assert "this CPU reports avx512_vnni" in slow
    # the faster teacher@int8 is named when it is the faster of two that keep the target
    res2 = bench({"teacher@int8": {**TEACHER_OK, "time": 0.1}, "student_kd@int8": KD_OK})
    (s2,) = build_model(res2).tasks[0].section_verdicts["variants"].values()
    assert "(MLPerf's rule): teacher@int8, " in s2


def test_every_format_shows_the_table(quantized):
    text = build_report(quantized, "full")
    assert "Distill, quantize, or both" in text and "Verdict: Fastest variant keeping" in text
    assert "Note: student_kd@int8-dynamic: not available: ConvInteger(10) is not implemented" in text
    head = next(line for line in text.splitlines() if line.startswith("model ") and "drop vs fp32 pts" in line)
    for label in ("acc %", "acc 95% CI", "acc from", "pts vs teacher", "% of teacher", ">= 99%", "own fp32 acc %",
                  "top-1 agree % w/ fp32", "speedup b1", "b1 95% CI", "speedup b8", "ONNX/teacher", "peak MB b1"):
        assert label in head
    md = build_report(quantized, "md")
    assert "### Distill, quantize, or both" in md and "- **Note:** student_scratch@int8 is slower" in md
    df = pd.read_csv(io.StringIO(build_report(quantized, "csv")))
    var = df[df.section == "variants"]
    assert set(var["model"]) == {"teacher", "teacher@int8", "student_scratch", "student_scratch@int8", "student_kd",
                                 "student_kd@int8"}
    assert {"acc_pct", "acc_basis", "vs_teacher_pts", "of_teacher_pct", "meets_target", "fp32_acc_pct",
            "drop_vs_fp32_pts", "agreement_pct", "speedup_b1", "speedup_b1_ci_lo", "speedup_b1_ci_hi", "speedup_b8",
            "onnx_ratio", "peak_mem_b1_mb"} <= set(var["metric"])
    assert len(df[df.section == "variants_verdict"]) == 1 and len(df[df.section == "variants_note"]) == 3
    doc = json.loads(build_report(quantized, "json"))
    task = doc["tasks"][0]
    assert len(task["tables"]["variants"]) == 6 + 3 and "student_kd@int8" in next(iter(  # 3: fp32 on torch
        task["section_verdicts"]["variants"].values()))
    html = build_report(quantized, "html")
    assert "Distill, quantize, or both" in html and "Note: student_scratch@int8 is slower" in html
    # the accuracy-vs-latency plot has the variants, each under its own label, with open markers
    assert '"text":["teacher","teacher@int8","student_scratch","student_scratch@int8","student_kd",' \
           '"student_kd@int8"]' in html
    assert '"diamond-open"' in html


def test_no_table_without_variants():
    res = make_results(tasks=("osuleaf",))
    t = build_model(res).tasks[0]
    assert t.variants.empty and "variants" not in t.tables() and not t.section_verdicts
    assert "Distill, quantize" not in build_report(res, "full")
    doc = json.loads(build_report(res, "json"))
    assert "variants" not in doc["tasks"][0]["tables"] and "section_verdicts" not in doc["tasks"][0]
    assert not any(s.startswith("variants") for s in pd.read_csv(io.StringIO(build_report(res, "csv")))["section"])


def test_only_failed_variants_still_say_so():
    res = add_variants(make_results(tasks=("osuleaf",)), {}, failed={"student_kd@int8": "calibration data missing"})
    t = build_model(res).tasks[0]
    assert t.notes["variants"][0] == "student_kd@int8: not available: calibration data missing"
    (sentence,) = t.section_verdicts["variants"].values()
    assert sentence.startswith("No variant was measured")
    assert "Verdict: No variant was measured" in build_report(res, "full")


# -- gate -------------------------------------------------------------------------------------------

def rows_of(results, rule):
    return {(r.model, r.batch): r for r in results if r.rule == rule}


def test_int8_accuracy_drop_pass_fail_skip():
    base = bench(seed=1)
    cur = bench({"teacher@int8": TEACHER_OK, "student_kd@int8": {**KD_OK, "accuracy": 0.880},
                 "student_kd@int8-dynamic": KD_OK}, seed=2)
    results = evaluate_gate(base, cur)
    drop = rows_of(results, "int8_accuracy_drop")
    assert drop[("teacher@int8", None)].verdict == "pass"  # 92.0 - 91.5 = 0.5 pts
    kd = drop[("student_kd@int8", None)]
    assert kd.verdict == "fail" and kd.current == pytest.approx(2.0) and kd.baseline == pytest.approx(-1.5)
    assert kd.threshold == 1.0 and kd.unit == "pts" and "deterministic" in kd.note
    new = drop[("student_kd@int8-dynamic", None)]  # new in current: judged on its own drop, the baseline unused
    assert new.verdict == "pass" and new.baseline is None and "new in current" in new.note
    assert drop[("student_scratch@int8", None)].verdict == "missing"  # baseline had it, current does not
    assert gate_exit_code(results) == 1
    assert "drop <= 1.00 pts" in format_gate(results)
    looser = evaluate_gate(base, cur, {"rules": {"int8_accuracy_drop": {"max_drop_pts": 2.5}}})
    assert rows_of(looser, "int8_accuracy_drop")[("student_kd@int8", None)].verdict == "pass"
    off = evaluate_gate(base, cur, {"rules": {"int8_accuracy_drop": {"enabled": False}}})
    assert not rows_of(off, "int8_accuracy_drop")
    # a baseline without any variant (e.g. an fp32-only CI baseline) still gates a lossy new int8 model
    lossy = bench({"student_kd@int8": {**KD_OK, "accuracy": 0.850}}, seed=2)
    plain = bench({}, seed=1)
    r = rows_of(evaluate_gate(plain, lossy), "int8_accuracy_drop")[("student_kd@int8", None)]
    assert r.verdict == "fail" and r.current > 1.0


def test_failed_variant_in_current_is_missing_with_its_reason():
    base = bench(seed=1)
    cur = bench({"teacher@int8": TEACHER_OK, "student_kd@int8": KD_OK}, seed=2,
                failed={"student_scratch@int8": "QLinearConv: unsupported"})
    results = evaluate_gate(base, cur)
    r = rows_of(results, "int8_accuracy_drop")[("student_scratch@int8", None)]
    assert r.verdict == "missing" and "not available: QLinearConv: unsupported" in r.note
    assert any("model student_scratch@int8 of task osuleaf (not available: QLinearConv: unsupported)" in line
               for line in missing_lines(results))
    allowed = evaluate_gate(base, cur, allow_missing=True)
    assert rows_of(allowed, "int8_accuracy_drop")[("student_scratch@int8", None)].verdict == "skip"


def test_speedup_rule_covers_variants_teacher_int8_included():
    base = bench(seed=1)
    cur = bench({"teacher@int8": {**TEACHER_OK, "time": 1.0}, "student_kd@int8": KD_OK,
                 "student_scratch@int8": SCRATCH_SLOW}, seed=2)
    sp = rows_of(evaluate_gate(base, cur), "speedup")
    assert ("teacher", 1) not in sp  # the fp32 teacher is the reference
    assert sp[("teacher@int8", 1)].verdict == "fail" and sp[("teacher@int8", 8)].verdict == "fail"
    assert sp[("student_kd@int8", 1)].verdict == "pass" and sp[("student_scratch@int8", 8)].verdict == "pass"
    assert rows_of(evaluate_gate(base, base), "speedup")[("teacher@int8", 1)].verdict == "pass"


def test_gate_without_variants_is_unchanged():
    a, b = make_results(tasks=("osuleaf",), seed=1), make_results(tasks=("osuleaf",), seed=2)
    results = evaluate_gate(a, b)
    assert not rows_of(results, "int8_accuracy_drop") and gate_exit_code(results) == 0
    # nothing compared still fails for files that share nothing, variant rule or not
    empty = evaluate_gate(Results(), Results())
    assert nothing_compared(empty) and gate_exit_code(empty) == 1
    # a baseline with variants against a current without: missing rows name the model
    results = evaluate_gate(bench(seed=1), b)
    assert gate_exit_code(results) == 1 and any(
        line.startswith("MISSING in current: model student_kd@int8 of task osuleaf") for line in missing_lines(results))


def test_slower_note_from_paired_suite_and_unrecorded_isa():
    """Without the latency suite the paired p50s decide; without cpu_isa the note says it is unknown."""
    res = bench({"student_kd@int8": {**KD_OK, "time": 1.4}}, commit=None)
    res.measurements = [m for m in res.measurements if m.suite != "latency"]
    s = speedup_vs_fp32(res, "osuleaf", "student_kd@int8", "onnxruntime", 1, 1, "")
    assert s.basis == "paired p50 ratio" and s.ci is None and s.value < 1
    (note,) = [n for n in build_model(res).tasks[0].notes["variants"] if " is slower than " in n]
    assert note.startswith("student_kd@int8 is slower than student_kd in fp32 on this CPU (onnxruntime p50: 1.")
    assert "ISA flags were not recorded" in note


def test_two_sources_side_by_side():
    a, b = bench(seed=1, source="a/results.json"), bench(seed=2, source="b/results.json", commit="2222222bbbbbbb")
    rep = build_model([a, b])
    t = rep.tasks[0]
    assert len(t.section_verdicts["variants"]) == 2 and set(t.variants["source"]) == set(rep.labels)
    md = build_report([a, b], "md")
    assert md.count("**Verdict** [") >= 4  # the task verdicts and the variants table's, per source
    assert "| student_kd@int8 " in md


def test_runtime_table_has_torch_compile_and_variant_vs_own_fp32():
    import copy

    res = bench({"student_kd@int8": {"accuracy": 0.895, "time": 0.5, "size": 0.3, "agreement": 0.98}})
    # a torch-compile run of every fp32 model: 0.8x eager's p50 (and its CI)
    for m in [m for m in res.measurements if m.suite == "latency" and m.backend == "torch"]:
        c = copy.deepcopy(m)
        c.backend = "torch-compile"
        c.metrics.p50_ms *= 0.8
        c.metrics.median_ci95_ms = tuple(v * 0.8 for v in c.metrics.median_ci95_ms)
        res.measurements.append(c)
    t = next(t for t in build_model(res).tasks if t.task == "osuleaf").ort_vs_torch
    kd = t[(t["model"] == "student_kd") & (t["batch_size"] == 1)].iloc[0]
    assert kd["compile_speedup"] == pytest.approx(1.25) and kd["compile_speedup_ci_lo"] <= 1.25 <= kd["compile_speedup_ci_hi"]
    assert kd["ort_speedup"] > 0 and pd.isna(kd["vs_fp32_ort"])  # an fp32 model has no "own fp32"
    q = t[(t["model"] == "student_kd@int8") & (t["batch_size"] == 1)].iloc[0]
    assert q["torch_p50_ms"] == kd["torch_p50_ms"]  # a variant is compared with its fp32 model's eager run
    assert q["vs_fp32_ort"] == pytest.approx(2.0, rel=0.15)  # half the fp32 model's time on ONNX Runtime
    assert "compile speedup" in build_report(res, "full") and "vs own fp32 ORT" in build_report(res, "full")


def test_quick_bench_without_paired_batch_8_judges_variants_by_the_paired_batch():
    # `--quick` runs the paired suite at the first batch size only: batch 8's speedups then come from the
    # latency suite (same statistic, p10 where the file has it), the table says so, and the verdict
    # judges by the batch that was paired.
    res = bench()
    full = build_model(res).tasks[0]
    (before,) = full.section_verdicts["variants"].values()
    assert "at batch 8" in before
    res.measurements = [m for m in res.measurements if not (m.suite == "paired" and m.batch_size == 8)]
    t = build_model(res).tasks[0]
    rows = {r["model"]: r for r in t.variants.to_dict("records")}
    kd = rows["student_kd@int8"]
    from harness.report.derived import has_fast_speedup, speedups

    assert kd["speedup_b1_from"].startswith("paired")
    assert kd["speedup_b8_from"] == ("p10 ratio" if has_fast_speedup(res) else "p50 ratio")
    # the fast-state statistic falls back to the latency suite's p10 ratio, never its p50 one
    fast = speedups(res, "osuleaf", fast=True)
    (key,) = [k for k in fast if k[0] == "student_kd@int8" and k[2] == 8]
    lat = {m.model: m for m in res.measurements if m.suite == "latency" and m.batch_size == 8
           and m.backend == "onnxruntime"}
    assert fast[key].basis == "p10 ratio"
    assert fast[key].value == pytest.approx(lat["teacher"].metrics.p10_ms / lat["student_kd@int8"].metrics.p10_ms)
    assert kd["speedup_b8"] > 1
    (sentence,) = t.section_verdicts["variants"].values()
    assert "student_kd@int8, " in sentence and "at batch 1" in sentence
