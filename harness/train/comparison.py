"""The trio's accuracy comparisons: KD vs scratch (paired by seed), each student vs the teacher."""
from __future__ import annotations

from typing import Any

import numpy as np


def paired_gain(a, b) -> dict[str, Any]:
    """Paired a - b in points over seeds (a t-test on the per-seed gaps). The gaps are rounded to 1e-9 pts
    first: two seeds that gain the same k/n give equal gaps, not gaps 1e-13 apart that a t-test reads as a
    near-zero spread (p ~ 1e-15)."""
    from harness.measure.stats import paired_difference

    gaps = np.round((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) * 100, 9)
    return paired_difference(gaps, np.zeros_like(gaps))


def compare_students(summary: dict[str, Any]) -> dict[str, Any]:
    """KD vs scratch (paired by seed) and each student vs the teacher, in accuracy points."""
    from harness.measure.stats import paired_difference

    models = summary["models"]
    kd = np.asarray(models["student_kd"]["accuracy"]["per_seed"], dtype=float)
    sc = np.asarray(models["student_scratch"]["accuracy"]["per_seed"], dtype=float)
    teacher = float(models["teacher"]["accuracy"]["mean"])
    out = {"kd_vs_scratch": paired_gain(kd, sc)}
    for role, arr in (("student_kd", kd), ("student_scratch", sc)):
        out[f"{role}_vs_teacher"] = paired_difference(arr * 100, np.full_like(arr, teacher * 100))
    return out
