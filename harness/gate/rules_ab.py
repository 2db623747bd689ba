"""`ab_latency`: the current build of a role timed beside its baseline build (harness/compare.py).

Two builds of one architecture are slowed alike by any machine state, so their latency ratio, timed in
the same worker processes in alternating blocks, holds still where the ratio of two teacher/student
speedups from different processes drifts (issue 24). The rule reads the `ab` measurements that
`harness gate` adds to the current results when it could time the baseline's models
(`with_ab_measurements`); without them it has no rows and the `speedup` rule judges speed.
"""
from __future__ import annotations

from typing import ClassVar

from harness.gate.config import string
from harness.gate.rules import Option, Rule, RuleResult, allowed, fmt_ci
from harness.results import Results

AB_SUITE = "ab"


def _statistic(value, label):
    value = string(value, label)
    if value not in ("p50", "p10"):
        from harness.errors import OptionError

        raise OptionError(f"{label} must be p50 or p10, got {value!r}")
    return value


class ABLatency(Rule):
    """Fails when the current build is slower than the baseline build by more than the threshold, and the
    whole 95% CI of the current/baseline latency ratio lies beyond it (established beyond noise)."""

    name = "ab_latency"
    threshold_key, default_threshold = "max_slowdown", 0.05
    higher_is_better = False
    students_only = False  # every role with a model on both sides: a slower teacher build is a regression too
    timed = True
    # p10 by default: the fast state, as the speedup rule judges (a VM worker can sit in a slow state for a
    # whole process set; the p50 ratio of one unchanged model read 1.43 where its p10 ratio read 0.998)
    options: ClassVar[dict[str, Option]] = {"statistic": Option("p10", _statistic)}

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        out = []
        p10 = self.option("statistic") == "p10"
        for m in current.measurements:
            if m.suite != AB_SUITE or not allowed(m.task, self.spec.tasks) or not allowed(m.model, self.spec.roles):
                continue
            if not allowed(m.backend, self.spec.backends):
                continue
            if self.spec.batch_sizes != "common" and m.batch_size not in self.spec.batch_sizes:
                continue
            x = m.metrics
            ratio = x.latency_ratio_p10 if p10 else x.latency_ratio
            ci = x.latency_ratio_p10_ci95 if p10 else x.latency_ratio_ci95
            r = self.row(m.task, m.model, m.backend, m.batch_size, baseline=x.baseline_p50_ms,
                         current=x.current_p50_ms, threads=m.threads, ci=fmt_ci(ci))
            if ratio is None:
                r.note = "no A/B ratio"
                out.append(r)
                continue
            r.change = ratio - 1
            t = self.threshold
            crossed = r.change > t
            significant = ci is not None and ci[0] > 1 + t
            r.verdict = "fail" if crossed and significant else "not significant" if crossed else "pass"
            r.note = (f"{'p10' if p10 else 'p50'} current/baseline {ratio:.3f}, A/B in the same processes"
                      + ("" if ci is None else ("; CI beyond the threshold" if significant else "; CI reaches it")
                         if crossed else ""))
            if x.control_valid is False:
                r.note += "; the A/A control failed: interference in this run"
            out.append(r)
        return out

    @classmethod
    def format_value(cls, v: float) -> str:
        return f"{v:.4g} ms"


def with_ab_measurements(current: Results, ab: Results) -> Results:
    """A copy of `current` with the `ab` measurements of `harness compare` added, for the gate."""
    from dataclasses import replace

    return replace(current, measurements=list(current.measurements) + [m for m in ab.measurements if m.suite == AB_SUITE],
                   warnings=list(current.warnings))
