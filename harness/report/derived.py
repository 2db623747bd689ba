"""Figures derived from measurements, computed once for both the report and the gate.

- `speedups(res, task)`: teacher/student speedup per (role, backend, batch, threads, options), from
  the paired suite when it ran, else the ratio of the latency suite's p50s, with its CI and the
  per-round ratios the gate's significance test needs;
- `delta_vs_teacher(res, task, role)`: a student's accuracy minus the teacher's, in points, with its
  CI and test (from the training summary);
- `drop_vs_fp32(res, task, role)`: a variant's (`student_kd@int8`) measured accuracy lost against its
  own fp32 model, in points, and their top-1 agreement;
- `speedup_vs_fp32(...)`: a variant's speedup over its own fp32 model (ratio of the two p50s).

Why one module: the report and the gate once derived the speedup each in its own way, and a reader
could see one figure in the report and be gated on another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.measure.paired import FAST_STATE_QUANTILE, run_groups
from harness.measure.stats import difference
from harness.results import Measurement, Results
from harness.report.lookup import (
    REFERENCE, comparison_block, find, measured_accuracy, num, opts_key, pair, ratio, split_role, summary_accuracy,
    task_measurements,
)

SpeedupKey = tuple  # (role, backend, batch_size, threads, options key)


@dataclass(frozen=True)
class Speedup:
    value: float
    ci: tuple[float, float] | None = None
    basis: str = ""  # "paired", "paired p10", "p50 ratio" or "p10 ratio" (the last two: latency suite)
    p_value: float | None = None  # teacher vs student timings differ (Mann-Whitney; paired suite only)
    measurement: Measurement | None = None  # the paired measurement it came from, if any

    def round_ratios(self) -> np.ndarray | None:
        """Per-round teacher/student ratios of the block statistic (p50, or p10 for the fast state):
        rounds are the independent unit of the paired suite. Older files without a round layout pair
        the calls one to one when they can; None when there is nothing to pair."""
        m = self.measurement
        if m is None:
            return None
        q = float(FAST_STATE_QUANTILE) if self.basis == "paired p10" else 50.0
        try:
            ref_groups, cand_groups = run_groups(m)
            t = np.concatenate([np.percentile(g, q, axis=1) for g in ref_groups])
            s = np.concatenate([np.percentile(g, q, axis=1) for g in cand_groups])
        except (TypeError, ValueError):
            ref = m.metrics.reference_samples_ns
            if not (isinstance(ref, list) and m.samples_ns and len(ref) == len(m.samples_ns) and len(ref) >= 3):
                return None
            t, s = np.asarray(ref, dtype=float), np.asarray(m.samples_ns, dtype=float)
        ok = s > 0
        return t[ok] / s[ok] if ok.sum() >= 3 else None


def has_fast_speedup(res: Results) -> bool:
    """Whether the file's paired suite recorded the fast-state (p10) speedup (newer files do)."""
    return any(m.suite == "paired" and m.metrics.speedup_p10 is not None for m in res.measurements)


def p50_ratio(teacher: Measurement, student: Measurement) -> Speedup | None:
    """Speedup as the ratio of two latency p50s; its CI from the two medians' CIs (conservative)."""
    sp = ratio(teacher.metrics.p50_ms, student.metrics.p50_ms)
    if sp is None:
        return None
    tc, sc = teacher.metrics.median_ci95_ms, student.metrics.median_ci95_ms
    ci = (tc[0] / sc[1], tc[1] / sc[0]) if tc and sc and sc[0] > 0 and sc[1] > 0 else None
    return Speedup(sp, ci, "p50 ratio")


def p10_ratio(teacher: Measurement, student: Measurement) -> Speedup | None:
    """The fast-state speedup from two latency runs: the ratio of their p10 calls (no CI: the latency
    suite gives none for a p10). Taken at different moments, unlike the paired suite's."""
    sp = ratio(teacher.metrics.p10_ms, student.metrics.p10_ms)
    return Speedup(sp, None, "p10 ratio") if sp is not None else None


def speedups(res: Results, task: str, fast: bool = False) -> dict[SpeedupKey, Speedup]:
    """Every student's speedup over the teacher in `task`: paired suite first, else the latency ratio.

    fast=True reads the fast-state ratio (each model's p10 call, `speedup_p10`); the gate uses it
    when both files carry it, the report shows it beside the p50 ratio. Where the paired suite did not
    run at a batch size (`--quick` pairs only the first), the same statistic comes from the latency
    suite: its p10 ratio with fast=True, its p50 ratio otherwise.
    """
    out: dict[SpeedupKey, Speedup] = {}
    for m in task_measurements(res, task, "paired"):
        value = m.metrics.speedup_p10 if fast else m.metrics.speedup
        if value is None or m.model == REFERENCE:
            continue
        ci = m.metrics.speedup_p10_ci95 if fast else m.metrics.speedup_ci95
        out[(m.model, m.backend, m.batch_size, m.threads, opts_key(m))] = Speedup(
            value, pair(ci), "paired p10" if fast else "paired", m.metrics.p_value, m)
    lat = task_measurements(res, task, "latency")
    teachers = {(m.backend, m.batch_size, m.threads, opts_key(m)): m for m in lat if m.model == REFERENCE}
    for m in lat:
        key = (m.model, m.backend, m.batch_size, m.threads, opts_key(m))
        t = teachers.get(key[1:])
        if m.model == REFERENCE or key in out or t is None:
            continue
        sp = p10_ratio(t, m) if fast else p50_ratio(t, m)
        if sp is not None:
            out[key] = sp
    return out


def delta_vs_teacher(res: Results, task: str, role: str) -> dict[str, Any]:
    """Training-summary accuracy of `role` minus the teacher's, in points: {"diff", "ci", "p_value",
    "test", "per_seed"}; from the summary's comparison block when present, else from the seeds."""
    block = comparison_block(res, task, f"{role}_vs_teacher")
    if block is not None:
        per = [num(x) for x in block.get("per_pair") or [] if num(x) is not None]
        return {"diff": num(block["diff_pts"]), "ci": pair(block.get("ci95")), "p_value": num(block.get("p_value")),
                "test": block.get("test"), "per_seed": per}
    acc, ref = summary_accuracy(res, task, role), summary_accuracy(res, task, REFERENCE)
    if not acc or not ref:
        return {}
    return difference(acc.get("per_seed"), ref.get("per_seed"), acc.get("ci"), ref.get("ci"), acc.get("mean"),
                      ref.get("mean"))


# -- variants (`<base role>@<variant>`, e.g. student_kd@int8) -------------------------------------

VARIANT_BACKEND = "onnxruntime"  # the only backend a variant runs on


def _accuracy_measurement(res: Results, task: str, role: str, backend: str) -> Measurement | None:
    ms = [m for m in task_measurements(res, task, "accuracy")
          if m.model == role and m.backend == backend and m.metrics.accuracy is not None]
    return max(ms, key=lambda m: m.metrics.n or 0) if ms else None


def drop_vs_fp32(res: Results, task: str, role: str, backend: str = VARIANT_BACKEND) -> dict[str, Any]:
    """A variant's measured accuracy against its own fp32 model on the same test set and backend, in
    percent: {"accuracy", "base_accuracy", "drop_pts" (fp32 minus variant: positive = points lost),
    "agreement_pct" (top-1 agreement with the fp32 model, or None)}; {} for an fp32 role or when either
    accuracy is missing. The fp32 accuracy is the variant's own `base_accuracy` (measured beside it),
    else the fp32 model's accuracy measurement on that backend."""
    base_role, variant = split_role(role)
    m = _accuracy_measurement(res, task, role, backend) if variant else None
    if m is None:
        return {}
    acc = m.metrics.accuracy * 100.0 if m.metrics.accuracy <= 1.0 else m.metrics.accuracy
    base = m.metrics.base_accuracy
    if base is not None:
        base = base * 100.0 if base <= 1.0 else base
    else:
        base = measured_accuracy(res, task, base_role, backend)
    if base is None:
        return {}
    agree = m.metrics.agreement
    return {"accuracy": acc, "base_accuracy": base, "drop_pts": base - acc,
            "agreement_pct": None if agree is None else agree * 100.0 if agree <= 1.0 else agree}


def speedup_vs_fp32(res: Results, task: str, role: str, backend: str, batch: int, threads: int | None = None,
                    opts: str | None = None) -> Speedup | None:
    """A variant's speedup over its own fp32 model at one (backend, batch, threads, options): the ratio of
    the two latency-suite p50s (fp32 / variant) with its CI from the two median CIs; without latency
    measurements, the ratio of the paired candidates' p50s (no CI). Below 1: the variant is slower."""
    base_role, variant = split_role(role)
    if variant is None:
        return None
    mv, mb = (find(res, task, "latency", r, backend, batch, threads, opts) for r in (role, base_role))
    if mv is not None and mb is not None:
        sp = p50_ratio(mb, mv)
        if sp is not None:
            return sp
    pv = find(res, task, "paired", role, backend, batch, threads, opts)
    pb = find(res, task, "paired", base_role, backend, batch, threads, opts) if base_role != REFERENCE else None
    vp50 = pv.metrics.student_p50_ms if pv else None
    bp50 = pb.metrics.student_p50_ms if pb else (pv.metrics.teacher_p50_ms if pv and base_role == REFERENCE
                                                  else None)
    value = ratio(bp50, vp50)
    return Speedup(value, None, "paired p50 ratio") if value is not None else None
