"""The "Distill, quantize, or both" table: every fp32 model of the trio beside its variants
(`student_kd@int8`, `teacher@int8-dynamic`, ...), with accuracy, the accuracy a variant lost against
its own fp32 model, the paired speedup over the fp32 teacher, size and memory, and MLPerf's quality
target (>= 99% of the fp32 reference's accuracy); a verdict naming the fastest variant that keeps the
target, and notes on variants slower than their own fp32 model and on variants that failed.

Shown only for a task that has a variant; files without variants report exactly as before.

Rows per runtime: model x variant x backend (torch runs the fp32 models only: a variant is an ONNX
file with no checkpoint). Each row's speedup is paired with the fp32 teacher on its own runtime, and
`vs_ort_b<N>` is its latency against the fp32 teacher on ONNX Runtime (two latency-suite medians, not
paired), so a runtime that is fast for everything does not hide behind its own teacher.

Accuracy: an fp32 row reads the training summary's seed mean (with its CI) where seeds exist, else the
measured test accuracy. A variant is built from the seed-0 checkpoint, so its accuracy is the measured
test accuracy on its row's runtime (no seed CI), and its drop is against its own fp32 model measured on
the same test set and backend (harness.report.derived.drop_vs_fp32).
"""
from __future__ import annotations

import re

from typing import Any

from harness.report.derived import (
    VARIANT_BACKEND, Speedup, drop_vs_fp32, has_fast_speedup, p50_ratio, speedup_vs_fp32, speedups,
)
from harness.report.lookup import (
    REFERENCE, find, is_variant, measured_accuracy, measured_backends, model_sizes, opts_key, ratio, split_role,
    summary_accuracy, task_measurements, task_roles, task_summary, variant_entries, variant_failure, variant_roles,
)
from harness.results import Results

QUALITY_TARGET = 0.99  # MLPerf's closed-division rule: >= 99% of the fp32 reference's accuracy
INT8_ISA_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot-product instructions (x86)
TIMED_SUITES = ("paired", "latency")

VARIANT_COLS = ["source", "task", "model", "backend", "threads", "options", "acc_pct", "acc_ci_lo_pct", "acc_ci_hi_pct",
                "acc_basis", "vs_teacher_pts", "of_teacher_pct", "meets_target", "fp32_acc_pct", "drop_vs_fp32_pts",
                "agreement_pct"]  # then speedup_b<N> [CI] per batch size, onnx_ratio, peak_mem_b<N>_mb
VARIANT_KEEP = ("source", "task", "model", "backend")  # kept when empty; other all-empty columns are dropped


def has_variants(res: Results, task: str) -> bool:
    return bool(variant_entries(res, task) or variant_roles(res, task))


Group = tuple[str, int | None, str]  # (backend, threads, options key)


def _groups(res: Results, task: str) -> list[Group]:
    """(backend, threads, options key) of every timed backend, ONNX Runtime first (the variants' reference
    runtime); one (onnxruntime, None, "") when nothing was timed."""
    keys = {(m.backend, m.threads, opts_key(m)) for m in task_measurements(res, task)
            if m.suite in TIMED_SUITES + ("memory",)}
    return sorted(keys, key=lambda k: (k[0] != VARIANT_BACKEND, k[0], k[1] is None, k[1] or 0, k[2])) \
        or [(VARIANT_BACKEND, None, "")]


def _batches(res: Results, task: str, group: Group, suites: tuple[str, ...], role: str | None = None) -> list[int]:
    backend, threads, opts = group
    return sorted({m.batch_size for m in task_measurements(res, task) if m.suite in suites
                   and m.backend == backend and m.threads == threads and opts_key(m) == opts
                   and (role is None or m.model == role)})


def _measured(res: Results, task: str, role: str, backend: str = VARIANT_BACKEND) -> tuple[float | None, str]:
    for b in dict.fromkeys((backend, VARIANT_BACKEND, *measured_backends(res, task, "accuracy"))):
        v = measured_accuracy(res, task, role, b)
        if v is not None:
            return v, b
    return None, ""


def _accuracy(res: Results, task: str, role: str, backend: str = VARIANT_BACKEND) -> dict[str, Any]:
    """{"acc", "ci", "basis", "seeds"}: seed mean for an fp32 model when the summary has it, else measured."""
    if not is_variant(role):
        acc = summary_accuracy(res, task, role)
        if acc:
            n = len(acc.get("per_seed") or [])
            basis = f"{n} seed{'s' if n != 1 else ''}" if n else "training summary"
            return {"acc": acc["mean"], "ci": acc.get("ci"), "basis": basis, "seeds": True}
    v, backend = _measured(res, task, role, backend)
    if v is None:
        return {}
    # a variant of a trained run is built from the seed-0 checkpoint; an --onnx pair has no seeds
    basis = backend + (" (seed 0)" if is_variant(role) and task_summary(res, task) else "")
    return {"acc": v, "ci": None, "basis": basis, "seeds": False}


def _teacher_accuracy(res: Results, task: str, seeds: bool, backend: str = VARIANT_BACKEND) -> float | None:
    """The fp32 teacher's accuracy on the same basis as a row's (seed mean, else measured)."""
    seed = summary_accuracy(res, task, REFERENCE).get("mean")
    measured, _ = _measured(res, task, REFERENCE, backend)
    return (seed if seed is not None else measured) if seeds else (measured if measured is not None else seed)


def _rows_roles(res: Results, task: str) -> list[str]:
    """Every model of the task (the trio's fp32 roles, each followed by its variants), failed variants left out."""
    return [r for r in task_roles(res, task) if variant_failure(res, task, r) is None]


def _on_backend(res: Results, task: str, role: str, backend: str) -> bool:
    return any(m.model == role and m.backend == backend for m in task_measurements(res, task))


def _vs_ort_teacher(res: Results, task: str, role: str, backend: str, batch: int, threads: int | None,
                    opts: str) -> Any:
    """`role` on `backend` against the fp32 teacher on ONNX Runtime at the same batch and threads: the
    ratio of the two latency-suite medians (not paired: two runtimes never share a round)."""
    m = find(res, task, "latency", role, backend, batch, threads, opts)
    t = find(res, task, "latency", REFERENCE, VARIANT_BACKEND, batch, threads)
    return p50_ratio(t, m) if m is not None and t is not None else None


def variant_rows(res: Results, label: str, task: str) -> list[dict[str, Any]]:
    """One row per (model, backend, threads, options): fp32 trio and variants on every runtime that ran
    them; [] for a task without variants."""
    if not has_variants(res, task):
        return []
    rows = []
    # the fast-state (p10) ratio where the file has it: what the gate judges, steadier than the p50 one
    sp = speedups(res, task, fast=has_fast_speedup(res))
    teacher_bytes = model_sizes(res, task, REFERENCE).onnx_bytes
    groups = _groups(res, task)
    for group in groups:
        backend, threads, opts = group
        batches = _batches(res, task, group, TIMED_SUITES)
        mem_batches = _batches(res, task, group, ("memory",))
        for role in _rows_roles(res, task):
            if len(groups) > 1 and not _on_backend(res, task, role, backend):
                continue  # torch runs no variant; a model not run on this runtime has no row here
            acc = _accuracy(res, task, role, backend)
            teacher = _teacher_accuracy(res, task, acc.get("seeds", False), backend)
            a = acc.get("acc")
            of = 100 * a / teacher if a is not None and teacher else None
            d = drop_vs_fp32(res, task, role, backend)
            ci = acc.get("ci")
            row: dict[str, Any] = {
                "source": label, "task": task, "model": role, "backend": backend, "threads": threads,
                "options": opts or None,
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
                found = sp.get((role, backend, b, threads, opts))
                if found is not None:
                    s = (found.value, found.ci)
                row[f"speedup_b{b}"] = s[0] if s else None
                row[f"speedup_b{b}_ci_lo"] = s[1][0] if s and s[1] else None
                row[f"speedup_b{b}_ci_hi"] = s[1][1] if s and s[1] else None
                if found is not None:
                    row[f"speedup_b{b}_from"] = found.basis
                if len({g[0] for g in groups}) > 1:
                    x = (Speedup(1.0, None, "reference") if role == REFERENCE and backend == VARIANT_BACKEND
                         else _vs_ort_teacher(res, task, role, backend, b, threads, opts))
                    row[f"vs_ort_b{b}"] = x.value if x else None
                    row[f"vs_ort_b{b}_ci_lo"] = x.ci[0] if x and x.ci else None
                    row[f"vs_ort_b{b}_ci_hi"] = x.ci[1] if x and x.ci else None
            row["onnx_ratio"] = ratio(model_sizes(res, task, role).onnx_bytes, teacher_bytes)
            if mem_batches:
                mem = find(res, task, "memory", role, backend, mem_batches[0], threads, opts)
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
    """One note per (variant, runtime) slower than its own fp32 model on that runtime at some batch size
    (p50 ratio and its CI below 1)."""
    out = []
    groups = _groups(res, task)
    multi_threads = len({(g[1], g[2]) for g in groups if g[0] == VARIANT_BACKEND}) > 1
    for role in variant_roles(res, task):
        base = split_role(role)[0]
        bits: dict[str, list[str]] = {}
        for group in groups:
            backend, threads, opts = group
            for b in _batches(res, task, group, TIMED_SUITES, role):
                s = speedup_vs_fp32(res, task, role, backend, b, threads, opts)
                # "slower" only when the whole CI says so: a point estimate below 1 inside a CI that
                # spans 1 is no finding (and the paired column may show the variant ahead)
                if s is None or s.value >= 1 or (s.ci is not None and s.ci[1] >= 1):
                    continue
                # and the fast-state calls agree: on a VM that changes speed state, p50s of two separate
                # runs can differ by the state each met, the 10th percentiles far less
                mv, mb = (find(res, task, "latency", r, backend, b, threads, opts) for r in (role, base))
                if mv is not None and mb is not None and None not in (mv.metrics.p10_ms, mb.metrics.p10_ms) \
                        and mv.metrics.p10_ms <= mb.metrics.p10_ms:
                    continue
                bit = f"{1 / s.value:.2f}x at batch {b}"
                if s.ci and s.ci[0] > 0:
                    bit += f" [CI {1 / s.ci[1]:.2f}, {1 / s.ci[0]:.2f}]"
                bits.setdefault(backend, []).append(bit + (f", {threads} thread(s)" if multi_threads else ""))
        for backend, found in bits.items():
            out.append(f"{role} is slower than {base} in fp32 on this CPU ({backend} p50: "
                       f"{'; '.join(found)}); {_isa_text(res)}")
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
    """Per runtime that ran variants (ONNX Runtime first): the fastest variant that keeps >= 99% of the
    fp32 teacher's accuracy, by paired speedup over the fp32 teacher on that runtime at the largest batch
    size every timed variant shares; or that none does. None without rows."""
    if not rows:
        return None
    backends = list(dict.fromkeys(r.get("backend") or VARIANT_BACKEND for r in rows))
    with_variants = [b for b in backends if any(is_variant(r["model"]) and (r.get("backend") or VARIANT_BACKEND) == b
                                                for r in rows)] or backends[:1]
    texts = []
    for backend in with_variants:
        mine = [r for r in rows if (r.get("backend") or VARIANT_BACKEND) == backend]
        group = (mine[0]["threads"], mine[0]["options"])
        text = _verdict_one([r for r in mine if (r["threads"], r["options"]) == group], backend)
        texts.append(text if len(with_variants) == 1 else f"On {backend}: {text}")
    return " ".join(texts)


def _verdict_one(rows: list[dict[str, Any]], backend: str) -> str:
    group = (rows[0]["threads"], rows[0]["options"])
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
    where = f" ({backend}" + (f", {group[0]} thread(s))" if group[0] is not None else ")")
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
            text += f", so int8 does not pay on this task, runtime and CPU: use the fp32 {faster['model']}"
    return text + "."
