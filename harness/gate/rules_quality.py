"""Rules on what the models are rather than how fast they run: `size_ratio` (ONNX bytes student /
teacher), `accuracy_delta` (student minus teacher accuracy, judged by seed CIs) and `parity` (ONNX
Runtime matches PyTorch in the current run)."""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.gate.config import non_negative, string
from harness.gate.rules import Option, Rule, RuleResult, fmt_ci, mark_missing
from harness.report.derived import delta_vs_teacher
from harness.report.lookup import (
    REFERENCE, measured_accuracy, model_sizes, num, parity, summary_accuracy, task_names,
)
from harness.results import Results

DEFAULT_SINGLE_SEED_MAX_DROP_PTS = 20.0


class SizeRatio(Rule):
    """ONNX file size of a student relative to the teacher's; deterministic."""

    name = "size_ratio"
    threshold_key, default_threshold = "max_growth", 0.05
    higher_is_better = False

    @staticmethod
    def ratio(res: Results, task: str, role: str) -> float | None:
        if task not in task_names(res):
            return None
        s, t = model_sizes(res, task, role).onnx_bytes, model_sizes(res, task, REFERENCE).onnx_bytes
        return s / t if s is not None and t else None

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        rows = []
        for task, role in self.pairs(baseline, current):
            r = self.row(task, role, baseline=self.ratio(baseline, task, role),
                         current=self.ratio(current, task, role))
            rows.append(self.judge(r, f"ONNX size of {role} or teacher", "onnx_bytes student/teacher; deterministic",
                                   zero_note="baseline ratio is zero"))
        return rows

    @classmethod
    def format_value(cls, v: float) -> str:
        return f"{v:.3g}x"


def _accuracy_delta(res: Results, task: str, role: str, pref: str) -> tuple[float | None, str]:
    if task not in task_names(res):
        return None, ""
    if pref != "summary":
        a, t = measured_accuracy(res, task, role, pref), measured_accuracy(res, task, REFERENCE, pref)
        if a is not None and t is not None:
            return a - t, pref
    sa, st = summary_accuracy(res, task, role), summary_accuracy(res, task, REFERENCE)
    if sa and st:
        return sa["mean"] - st["mean"], "summary"
    return None, ""


def _seed_delta(res: Results, task: str, role: str) -> dict[str, Any]:
    """The training seeds' view of student - teacher accuracy (diff, ci, per_seed); {} with one seed or none."""
    if task not in task_names(res):
        return {}
    d = delta_vs_teacher(res, task, role)
    ci = d.get("ci")
    if ci is None or (ci[0] == ci[1] and len(d.get("per_seed") or []) < 2):  # one seed: no spread to judge by
        return {}
    return d


class AccuracyDelta(Rule):
    """Student minus teacher accuracy in points (measured backend, else the training summary); seed
    CIs decide, one seed per side fails only past `single_seed_max_drop_pts`."""

    name = "accuracy_delta"
    threshold_key, default_threshold = "max_drop_pts", 1.0
    higher_is_better = True
    unit = "pts"
    options = {
        "backend": Option("onnxruntime", string),  # which measured backend to prefer ("summary" = seeds only)
        # with one seed on a side: only a drop past this many points fails (cross-machine rounding)
        "single_seed_max_drop_pts": Option(DEFAULT_SINGLE_SEED_MAX_DROP_PTS, non_negative),
    }

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        from scipy import stats

        threshold = self.spec.threshold
        results = []
        for task, role in self.pairs(baseline, current):
            b, bsrc = _accuracy_delta(baseline, task, role, self.option("backend"))
            c, csrc = _accuracy_delta(current, task, role, self.option("backend"))
            if b is not None and c is not None and bsrc != csrc:  # compare like with like
                b, bsrc = _accuracy_delta(baseline, task, role, "summary")
                c, csrc = _accuracy_delta(current, task, role, "summary")
            src = csrc or bsrc or "-"
            r = self.row(task, role, src, None, b, c)
            if b is None or c is None:
                if b is None:
                    r.note = f"no accuracy of {role} and teacher in baseline"
                else:
                    mark_missing(r, f"accuracy of {role} and teacher")
                results.append(r)
                continue
            r.change = c - b
            crossed = r.change < -threshold
            bd, cd = _seed_delta(baseline, task, role), _seed_delta(current, task, role)
            if bd.get("ci") and cd.get("ci"):
                r.ci = f"base {fmt_ci(bd['ci'], ' pts')} cur {fmt_ci(cd['ci'], ' pts')}"
                # the current CI must lie below the baseline CI moved down by the threshold
                significant = cd["ci"][1] < bd["ci"][0] - threshold
                disjoint = cd["ci"][1] < bd["ci"][0]
                how = ("seed CIs apart by more than the threshold" if significant else
                       "seed CIs disjoint, not apart by the threshold" if disjoint else "seed CIs overlap")
                bs, cs = bd.get("per_seed") or [], cd.get("per_seed") or []
                if len(bs) >= 2 and len(cs) >= 2 and (np.std(bs) > 0 or np.std(cs) > 0):
                    shifted = list(np.asarray(bs) - threshold)
                    r.p_value = float(stats.ttest_ind(cs, shifted, equal_var=False, alternative="less").pvalue)
                r.verdict = "pass" if not crossed else ("fail" if significant else "not significant")
            else:
                # One training run per side. Training is deterministic on one machine but not across CPU
                # types (AVX2 and AVX-512 kernels round differently, and epochs amplify it), so a single
                # run's difference cannot separate a regression from rounding: only a drop too large to
                # be rounding fails.
                one = "baseline and current" if not bd and not cd else "baseline" if not bd else "current"
                limit = max(self.option("single_seed_max_drop_pts"), threshold)
                if not crossed:
                    r.verdict, how = "pass", f"one seed in {one}"
                elif r.change < -limit:
                    r.verdict = "fail"
                    how = (f"one seed in {one}, but the drop is past single_seed_max_drop_pts -{limit:g} pts: "
                           "too large to be cross-machine rounding")
                else:
                    r.verdict = "not significant"
                    how = (f"one seed in {one} cannot separate a regression from cross-machine rounding; "
                           f"train with --seeds 0,1,2 for seed CIs (one seed fails only past -{limit:g} pts)")
            r.note = f"{src} accuracy; {how}"
            results.append(r)
        return results

    @classmethod
    def format_value(cls, v: float) -> str:
        return f"{v:+.2f} pts"


class Parity(Rule):
    """The current run's ONNX Runtime vs PyTorch parity check of every model; pass/fail, no threshold."""

    name = "parity"
    unit = ""
    students_only = False
    compares_baseline = False  # checks the current file alone

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        results = []
        for task, role in self.pairs(baseline, current):
            bp = parity(baseline, task, role) if task in task_names(baseline) else None
            cp = parity(current, task, role) if task in task_names(current) else None
            bv = None if bp is None or "passed" not in bp else float(bool(bp["passed"]))
            cv = None if cp is None or "passed" not in cp else float(bool(cp["passed"]))
            r = self.row(task, role, "onnxruntime", None, bv, cv)
            if cv is None and bv is not None:
                mark_missing(r, "parity check")
            elif cv is None:
                r.note = "no parity check in current"
            elif cv:
                r.verdict, r.note = "pass", "ONNX Runtime matches PyTorch"
            else:
                bits = [f"{k}={cp[k]:.3g}" for k in ("max_abs_err", "max_rel_err", "top1_agreement")
                        if num(cp.get(k)) is not None]
                r.verdict, r.note = "fail", "parity failed: " + ", ".join(bits)
            results.append(r)
        return results

    @classmethod
    def format_value(cls, v: float) -> str:
        return "pass" if v else "FAIL"

    @classmethod
    def format_threshold(cls, r: RuleResult) -> str:
        return "must pass"
