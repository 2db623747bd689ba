"""The "Distill, quantize, or both" table: every fp32 model of the trio beside its variants
(`student_kd@int8`, `teacher@int8-dynamic`, ...), with accuracy, the accuracy a variant lost against
its own fp32 model, the paired speedup over the fp32 teacher, size and memory, and MLPerf's quality
target (>= 99% of the fp32 reference's accuracy); a verdict naming the fastest variant that keeps the
target, and notes on variants slower than their own fp32 model and on variants that failed.

Shown only for a task that has a variant; files without variants report exactly as before.

Accuracy: an fp32 row reads the training summary's seed mean (with its CI) where seeds exist, else the
measured test accuracy. A variant is built from the seed-0 checkpoint, so its accuracy is the measured
test accuracy on onnxruntime (no seed CI), and its drop is against its own fp32 model measured on the
same test set and backend (harness.report.derived.drop_vs_fp32).
"""
from __future__ import annotations

import re

from typing import Any

from harness.report.derived import VARIANT_BACKEND, drop_vs_fp32, has_fast_speedup, speedup_vs_fp32, speedups
from harness.report.lookup import (
    REFERENCE, find, is_variant, measured_accuracy, measured_backends, model_sizes, opts_key, ratio, split_role,
    summary_accuracy, task_measurements, task_roles, task_summary, variant_entries, variant_failure, variant_roles,
)
from harness.results import Results

QUALITY_TARGET = 0.99  # MLPerf's closed-division rule: >= 99% of the fp32 reference's accuracy
INT8_ISA_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot-product instructions (x86)
TIMED_SUITES = ("paired", "latency")

VARIANT_COLS = ["source", "task", "model", "threads", "options", "acc_pct", "acc_ci_lo_pct", "acc_ci_hi_pct",
                "acc_basis", "vs_teacher_pts", "of_teacher_pct", "meets_target", "fp32_acc_pct", "drop_vs_fp32_pts",
                "agreement_pct"]  # then speedup_b<N> [CI] per batch size, onnx_ratio, peak_mem_b<N>_mb
VARIANT_KEEP = ("source", "task", "model")  # kept when empty; other all-empty columns are dropped


def has_variants(res: Results, task: str) -> bool:
    return bool(variant_entries(res, task) or variant_roles(res, task))


def _groups(res: Results, task: str) -> list[tuple[int | None, str]]:
    """(threads, options key) of the variant backend's timings; one (None, "") when nothing was timed."""
    keys = {(m.threads, opts_key(m)) for m in task_measurements(res, task)
            if m.suite in TIMED_SUITES + ("memory",) and m.backend == VARIANT_BACKEND}
    return sorted(keys, key=lambda k: (k[0] is None, k[0] or 0, k[1])) or [(None, "")]


def _batches(res: Results, task: str, threads: int | None, opts: str, suites: tuple[str, ...]) -> list[int]:
    return sorted({m.batch_size for m in task_measurements(res, task) if m.suite in suites
                   and m.backend == VARIANT_BACKEND and m.threads == threads and opts_key(m) == opts})


def _measured(res: Results, task: str, role: str) -> tuple[float | None, str]:
    for b in dict.fromkeys((VARIANT_BACKEND, *measured_backends(res, task, "accuracy"))):
        v = measured_accuracy(res, task, role, b)
        if v is not None:
            return v, b
    return None, ""


def _accuracy(res: Results, task: str, role: str) -> dict[str, Any]:
    """{"acc", "ci", "basis", "seeds"}: seed mean for an fp32 model when the summary has it, else measured."""
    if not is_variant(role):
        acc = summary_accuracy(res, task, role)
        if acc:
            n = len(acc.get("per_seed") or [])
            basis = f"{n} seed{'s' if n != 1 else ''}" if n else "training summary"
            return {"acc": acc["mean"], "ci": acc.get("ci"), "basis": basis, "seeds": True}
    v, backend = _measured(res, task, role)
    if v is None:
        return {}
    # a variant of a trained run is built from the seed-0 checkpoint; an --onnx pair has no seeds
    basis = backend + (" (seed 0)" if is_variant(role) and task_summary(res, task) else "")
    return {"acc": v, "ci": None, "basis": basis, "seeds": False}


def _teacher_accuracy(res: Results, task: str, seeds: bool) -> float | None:
    """The fp32 teacher's accuracy on the same basis as a row's (seed mean, else measured)."""
    seed = summary_accuracy(res, task, REFERENCE).get("mean")
    measured, _ = _measured(res, task, REFERENCE)
    return (seed if seed is not None else measured) if seeds else (measured if measured is not None else seed)


def _rows_roles(res: Results, task: str) -> list[str]:
    """Every model of the task (the trio's fp32 roles, each followed by its variants), failed variants left out."""
    return [r for r in task_roles(res, task) if variant_failure(res, task, r) is None]


def variant_rows(res: Results, label: str, task: str) -> list[dict[str, Any]]:
    """One row per (model, threads, options): fp32 trio and variants; [] for a task without variants."""
    if not has_variants(res, task):
        return []
    rows = []
    # the fast-state (p10) ratio where the file has it: what the gate judges, steadier than the p50 one
    sp = speedups(res, task, fast=has_fast_speedup(res))
    teacher_bytes = model_sizes(res, task, REFERENCE).onnx_bytes
    for threads, opts in _groups(res, task):
        batches = _batches(res, task, threads, opts, TIMED_SUITES)
        mem_batches = _batches(res, task, threads, opts, ("memory",))
        for role in _rows_roles(res, task):
            acc = _accuracy(res, task, role)
            teacher = _teacher_accuracy(res, task, acc.get("seeds", False))
            a = acc.get("acc")
            of = 100 * a / teacher if a is not None and teacher else None
            d = drop_vs_fp32(res, task, role)
            ci = acc.get("ci")
            row: dict[str, Any] = {
                "source": label, "task": task, "model": role, "threads": threads, "options": opts or None,
                "acc_pct": a, "acc_ci_lo_pct": ci[0] if ci else None, "acc_ci_hi_pct": ci[1] if ci else None,
                "acc_basis": acc.get("basis"),
                "vs_teacher_pts": a - teacher if a is not None and teacher is not None else None,
                "of_teacher_pct": of,
                "meets_target": None if of is None else bool(of >= 100 * QUALITY_TARGET - 1e-9),
                "fp32_acc_pct": d.get("base_accuracy"), "drop_vs_fp32_pts": d.get("drop_pts"),
                "agreement_pct": d.get("agreement_pct"),
            }
            for b in batches:
                s = (1.0, None) if role == REFERENCE else None
                found = sp.get((role, VARIANT_BACKEND, b, threads, opts))
                if found is not None:
                    s = (found.value, found.ci)
                row[f"speedup_b{b}"] = s[0] if s else None
                row[f"speedup_b{b}_ci_lo"] = s[1][0] if s and s[1] else None
                row[f"speedup_b{b}_ci_hi"] = s[1][1] if s and s[1] else None
                if found is not None:
                    row[f"speedup_b{b}_from"] = found.basis
            row["onnx_ratio"] = ratio(model_sizes(res, task, role).onnx_bytes, teacher_bytes)
            if mem_batches:
                mem = find(res, task, "memory", role, VARIANT_BACKEND, mem_batches[0], threads, opts)
                row[f"peak_mem_b{mem_batches[0]}_mb"] = mem.metrics.peak_mb if mem else None
            rows.append(row)
    return rows


def _isa_text(res: Results) -> str:
    isa = (res.environment or {}).get("cpu_isa")
    if not isinstance(isa, (list, tuple)):
        return "the CPU's ISA flags were not recorded, so whether it has int8 dot-product instructions is unknown"
    have = [f for f in INT8_ISA_FLAGS if f in isa] + sorted(f for f in isa if str(f).startswith("amx")
                                                             and f not in INT8_ISA_FLAGS)
    if have:
        return (f"this CPU reports {', '.join(have)}, so it is not for lack of int8 dot-product instructions "
                "(quantize/dequantize overhead on a small model?)")
    return (f"this CPU reports none of {', '.join(INT8_ISA_FLAGS)} (no VNNI/AMX int8 dot-product instructions), "
            "so int8 kernels run without them")


def slower_notes(res: Results, task: str) -> list[str]:
    """One note per variant slower than its own fp32 model at some batch size (p50 ratio and its CI below 1)."""
    out = []
    for role in variant_roles(res, task):
        base = split_role(role)[0]
        bits = []
        for threads, opts in _groups(res, task):
            for b in _batches(res, task, threads, opts, TIMED_SUITES):
                s = speedup_vs_fp32(res, task, role, VARIANT_BACKEND, b, threads, opts)
                # "slower" only when the whole CI says so: a point estimate below 1 inside a CI that
                # spans 1 is no finding (and the paired column may show the variant ahead)
                if s is None or s.value >= 1 or (s.ci is not None and s.ci[1] >= 1):
                    continue
                # and the fast-state calls agree: on a VM that changes speed state, p50s of two separate
                # runs can differ by the state each met, the 10th percentiles far less
                mv, mb = (find(res, task, "latency", r, VARIANT_BACKEND, b, threads, opts) for r in (role, base))
                if mv is not None and mb is not None and None not in (mv.metrics.p10_ms, mb.metrics.p10_ms) \
                        and mv.metrics.p10_ms <= mb.metrics.p10_ms:
                    continue
                bit = f"{1 / s.value:.2f}x at batch {b}"
                if s.ci and s.ci[0] > 0:
                    bit += f" [CI {1 / s.ci[1]:.2f}, {1 / s.ci[0]:.2f}]"
                bits.append(bit + (f", {threads} thread(s)" if len(_groups(res, task)) > 1 else ""))
        if bits:
            out.append(f"{role} is slower than {base} in fp32 on this CPU ({VARIANT_BACKEND} p50: "
                       f"{'; '.join(bits)}); {_isa_text(res)}")
    return out


def failure_notes(res: Results, task: str) -> list[str]:
    """One line per variant that failed to build or load, and their count."""
    failed = [(str(e["role"]), variant_failure(res, task, str(e["role"]))) for e in variant_entries(res, task)]
    failed = [(r, why) for r, why in failed if why is not None]
    lines = [f"{r}: not available: {why}" for r, why in failed]
    if failed:
        total = (res.config or {}).get("variant_failures")
        n = len(failed)
        line = f"{n} variant{'s' if n != 1 else ''} of {task or 'this task'} failed to build or load"
        if isinstance(total, int) and not isinstance(total, bool) and total != n:
            line += f" ({total} in the whole bench)"
        lines.append(line)
    return lines


def _fmt_speed(r: dict[str, Any], b: int) -> str:
    s = f"{r[f'speedup_b{b}']:.2f}x vs the fp32 teacher at batch {b}"
    if r.get(f"speedup_b{b}_ci_lo") is not None:
        s += f" [CI {r[f'speedup_b{b}_ci_lo']:.2f}, {r[f'speedup_b{b}_ci_hi']:.2f}]"
    return s


def variant_verdict(rows: list[dict[str, Any]]) -> str | None:
    """The fastest variant that keeps >= 99% of the fp32 teacher's accuracy, by paired speedup at the
    largest batch size every timed variant shares (onnxruntime); or that none does. None without rows."""
    if not rows:
        return None
    group = (rows[0]["threads"], rows[0]["options"])
    rows = [r for r in rows if (r["threads"], r["options"]) == group]
    target = f">= {100 * QUALITY_TARGET:g}% of the fp32 teacher's accuracy"
    variants = [r for r in rows if is_variant(r["model"])]
    if not variants:
        return f"No variant was measured, so none can be judged against {target}."
    def batches(r: dict[str, Any], paired_only: bool = False) -> set[int]:
        return {int(k[len("speedup_b"):]) for k, v in r.items()
                if re.fullmatch(r"speedup_b\d+", k) and v is not None
                and (not paired_only or str(r.get(f"{k}_from", "")).startswith("paired"))}
    timed = [r for r in variants if batches(r)]
    common = set.intersection(*(batches(r) for r in timed)) if timed else set()
    # Judge by the paired suite wherever every variant has it (`--quick` pairs the first batch size only)
    paired = set.intersection(*(batches(r, True) for r in timed)) if timed else set()
    if paired:
        common = paired
    keep = [r for r in variants if r.get("meets_target")]
    where = f" ({VARIANT_BACKEND}" + (f", {group[0]} thread(s))" if group[0] is not None else ")")
    if not keep:
        judged = [r for r in variants if r.get("of_teacher_pct") is not None]
        if not judged:
            return f"No variant has a measured accuracy to judge against {target}."
        best = max(judged, key=lambda r: r["of_teacher_pct"])
        return (f"No variant keeps {target} (MLPerf's rule); the closest is {best['model']} at "
                f"{best['of_teacher_pct']:.1f}% of it ({best['acc_pct']:.2f}% accuracy).")
    if not common:
        names = ", ".join(r["model"] for r in keep)
        return (f"Variants keeping {target} (MLPerf's rule): {names}; no batch size with a paired speedup "
                f"for every variant{where}, so none is named fastest.")
    b = max(common)
    best = max((r for r in keep if r.get(f"speedup_b{b}") is not None), key=lambda r: r[f"speedup_b{b}"],
               default=None)
    if best is None:
        return f"Variants keeping {target}: {', '.join(r['model'] for r in keep)}; none was timed at batch {b}."
    text = (f"Fastest variant keeping {target} (MLPerf's rule): {best['model']}, {_fmt_speed(best, b)}{where}, "
            f"{best['acc_pct']:.2f}% accuracy ({best['of_teacher_pct']:.1f}% of the teacher's")
    drop = best.get("drop_vs_fp32_pts")
    if drop is not None:
        text += f"; {abs(drop):.2f} pts {'below' if drop >= 0 else 'above'} its own fp32 model"
    text += ")"
    fp32 = [r for r in rows if not is_variant(r["model"]) and r["model"] != REFERENCE and r.get("meets_target")
            and r.get(f"speedup_b{b}") is not None]
    faster = max(fp32, key=lambda r: r[f"speedup_b{b}"], default=None)
    if faster is not None and faster[f"speedup_b{b}"] > best[f"speedup_b{b}"]:
        text += f"; the fp32 {faster['model']} keeps it too and is faster ({faster[f'speedup_b{b}']:.2f}x)"
        if best[f"speedup_b{b}"] < 1.0:  # every quality-keeping variant is slower than the fp32 teacher itself
            text += f", so int8 does not pay on this task and CPU: use the fp32 {faster['model']}"
    return text + "."
