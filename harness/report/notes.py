"""The report's judgements in words: whether a timing is unstable, the warnings under the
performance table (a row above 100% of the measured peak, with its cause) and under the validity
table (a paired p50 off its isolated p50), and each task's one-sentence verdict.

Each reads the rows that harness.report.tables builds (plain dicts, raw numbers) or a
Measurement's typed metrics; none renders anything.
"""
from __future__ import annotations

from typing import Any

from harness.metrics import RooflineMetrics, TimingMetrics
from harness.report.lookup import peak_by_source, roofline, task_roles
from harness.results import Measurement, Results

VALIDITY_TOLERANCE = 0.05  # paired p50 vs isolated latency p50: more than this apart is a disturbed run


def peak_note(res: Results, label: str, row: dict[str, Any]) -> str | None:
    """The warning for a performance row above 100% of the measured peak, naming the cause; else None."""
    pct, gflops = row.get("pct_peak"), row.get("gflops")
    if pct is None or gflops is None or pct <= 100:
        return None
    roof = roofline(res, row.get("threads")) or RooflineMetrics()
    backend = row["backend"]
    if row.get("peak_kind") == "int8 GEMM":
        return (f"{row['model']} ({backend}, batch {row['batch_size']}, {row['threads']} thread(s)) at {pct:.0f}% "
                f"of the measured int8 GEMM peak ({roof.int8_peak_gops:.1f} GOP/s, {roof.int8_peak_source}): its "
                "quantized kernels outran MatMulInteger's, or the GEMM timing was disturbed; re-bench to measure it")
    peak, src = roof.peak_gflops, roof.peak_source or "unknown source"
    by = peak_by_source(roof)
    if by.get(backend) is None:
        cause = (f"the peak GEMM used slower kernels than the model's runtime: it ran on "
                 f"{', '.join(sorted(by)) or src}, never on {backend}'s own kernels, which can be faster "
                 "(e.g. AVX-512 against a BLAS pinned to AVX2); re-bench to measure it")
    else:
        cause = (f"{backend}'s kernels for this model (convolutions, fused operators) outran its own GEMM "
                 f"({by[backend]:.1f} GFLOP/s) and every other measured GEMM, so the measured peak is no "
                 "ceiling: the GEMM timing was disturbed (other load, a lower clock at that moment), or the "
                 "model's MAC count overstates its work")
    theo = roof.theoretical_peak_gflops
    if theo:
        cause += f"; theoretical peak {theo:.1f} GFLOP/s"
        if gflops > theo:
            cause += (", which the model exceeds too: the clock is above the reported one (turbo), or the "
                      "MAC count overstates the work")
        else:
            cause += f" (model at {100 * gflops / theo:.0f}% of it)"
    else:
        cause += "; theoretical peak unknown (no CPU flags or clock recorded)"
    return (f"{row['model']} ({backend}, batch {row['batch_size']}, {row['threads']} thread(s)) at {pct:.0f}% of "
            f"the measured GEMM peak ({peak:.1f} GFLOP/s, {src}): {cause}")


def is_unstable(m: Measurement | None) -> bool | None:
    """Whether a timing breaks the stability thresholds (harness.measure.stats.stability_warnings).

    A structured `unstable` metric wins; else the thresholds are re-applied to the stored summary
    (p50, p90, IQR, n, median CI), so the answer does not hang on a warning's wording; a
    measurement without those metrics (pytest-benchmark input) counts as unstable when it carries
    any warning."""
    if m is None:
        return None
    flag = m.metrics.unstable
    if isinstance(flag, bool):
        return flag
    met = m.metrics
    if isinstance(met, TimingMetrics) and None not in (met.p50_ms, met.p90_ms, met.iqr_ms, met.n):
        from harness.measure.stats import stability_warnings

        summary = {"p50_ms": met.p50_ms, "p90_ms": met.p90_ms, "iqr_ms": met.iqr_ms, "n": met.n}
        ci = m.metrics.median_ci95_ms
        if ci:
            summary["median_ci95_ms"] = list(ci)
        return bool(stability_warnings(summary))
    return bool(m.warnings)



def validity_notes(row: dict[str, Any]) -> list[str]:
    """The A/A control's failure where the row has a control; else (older files) a warning per model of a
    validity row whose paired p50 is more than 5% off its isolated p50."""
    if row.get("control_ratio") is not None:
        if row.get("valid") is not False:
            return []
        ci = (f" [CI {row['control_ci_lo']:.3f}, {row['control_ci_hi']:.3f}]"
              if row.get("control_ci_lo") is not None else "")
        return [f"A/A control of {row['reference']} ({row['backend']}, batch {row['batch_size']}, "
                f"{row['threads']} thread(s)) read {row['control_ratio']:.3f}{ci} against a second session of "
                "itself: the pairing favoured one session or position, so its group's speedups carry that bias"]
    out = []
    for prefix, model in (("", row["model"]), ("ref_", row["reference"])):
        off = row.get(f"{prefix}paired_vs_latency_pct")
        if off is None or abs(off) <= 100 * VALIDITY_TOLERANCE:
            continue
        # the reference's blocks are shared by all its candidates: one note for it, not one per candidate
        other = row["reference"] if not prefix else "its candidates"
        where = (f"{model} ({row['backend']}, batch {row['batch_size']}, {row['threads']} thread(s), "
                 f"paired with {other})")
        off10 = row.get(f"{prefix}paired_vs_latency_p10_pct")
        if off10 is not None and abs(off10) <= 100 * VALIDITY_TOLERANCE:
            out.append(f"paired p50 of {where} is {off:+.0f}% off its isolated latency p50, but their 10th "
                       f"percentiles agree ({off10:+.1f}%): the machine changed speed state between the two "
                       "suites rather than the pairing disturbing the timing; the fast-state (p10) speedup is "
                       "the steadier figure")
        elif off > 0:
            out.append(f"paired p50 of {where} is {off:.0f}% above its isolated latency p50: the paired run "
                       "disturbed the timing, so the speedup is not the models' own")
        else:
            out.append(f"paired p50 of {where} is {-off:.0f}% below its isolated latency p50: the two suites saw "
                       "different machine states, so the speedup CI misses part of the variation")
    return out



def fmt_p(p: float | None) -> str:
    if p is None:
        return ""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def verdict(res: Results, task: str, acc_rows, perf_rows, size_rows, kd_rows, validity_rows=()) -> str:
    roles = task_roles(res, task)
    subject_role = "student_kd" if "student_kd" in roles else ("student_scratch" if "student_scratch" in roles
                                                                else None)
    # An ONNX pair brought with `bench --onnx teacher=... --onnx NAME=...`: its one other fp32 model.
    others = [r for r in roles if r != "teacher" and "@" not in r]
    if subject_role is None and "teacher" in roles and len(others) == 1:
        subject_role = others[0]
    if subject_role is None:
        return "No student model to judge."
    subject = {"student_kd": "KD student", "student_scratch": "Scratch student"}.get(subject_role,
                                                                                   f"Student '{subject_role}'")
    acc_parts = []
    acc = next((r for r in acc_rows if r["model"] == subject_role), None)
    if acc and acc.get("delta_pts") is not None:
        s = f"{acc['delta_pts']:+.1f} pts vs teacher"
        if acc.get("delta_ci_lo_pts") is not None:
            s += f" [CI {acc['delta_ci_lo_pts']:+.1f}, {acc['delta_ci_hi_pts']:+.1f}]"
        acc_parts.append(s)
    if subject_role == "student_kd" and kd_rows:
        k = kd_rows[0]
        s = f"{k['diff_pts']:+.1f} pts vs scratch"
        if k.get("p_value") is not None:
            s += f", {fmt_p(k['p_value'])}"
        acc_parts.append(s)
    other = []
    mine = [r for r in perf_rows if r["model"] == subject_role and r.get("speedup") is not None]
    if mine:
        border = {b: i for i, b in enumerate(("onnxruntime", "torch"))}
        best = min(mine, key=lambda r: (border.get(r["backend"], 9), r["batch_size"] != 1, r["batch_size"],
                                        r["threads"]))
        sp = best["speedup"]
        word = "faster" if sp >= 1 else "slower"
        val = sp if sp >= 1 else 1 / sp
        s = f"{val:.1f}x {word} on {best['backend']} (batch {best['batch_size']})"
        if best.get("speedup_ci_lo") is not None:
            s += f" [CI {best['speedup_ci_lo']:.2f}, {best['speedup_ci_hi']:.2f}]"
            if best["speedup_ci_lo"] <= 1 <= best["speedup_ci_hi"]:
                s += " (not significant)"
        if best.get("speedup_p10") is not None:
            s += f"; fast-state (p10) {best['speedup_p10']:.1f}x"
            if best.get("speedup_p10_ci_lo") is not None:
                s += f" [CI {best['speedup_p10_ci_lo']:.2f}, {best['speedup_p10_ci_hi']:.2f}]"
        if best.get("speedup_basis") == "paired" and any(
                v.get("valid") is False and v["backend"] == best["backend"] and v["batch_size"] == best["batch_size"]
                and v["threads"] == best["threads"] and v.get("options") == best.get("options")
                and subject_role in (v["model"], v["reference"])
                for v in validity_rows):
            s += " (paired timing failed its validity check)"
        other.append(s)
    size = next((r for r in size_rows if r["model"] == subject_role), None)
    if size and size.get("onnx_ratio"):
        r = size["onnx_ratio"]
        other.append(f"{1 / r:.1f}x smaller ONNX file" if r <= 1 else f"{r:.1f}x larger ONNX file")
    if not acc_parts and not other:
        return f"{subject}: no comparable measurements."
    text = f"{subject}: " + ", ".join(acc_parts)
    if other:
        text += ("; " if acc_parts else "") + ", ".join(other)
    return text + "."

