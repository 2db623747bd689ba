"""Timed rules: `speedup` (teacher/student ratio within a run, higher is better) and `latency_p50`
(absolute p50, lower is better, off by default). Both compare per (model, backend, threads, options,
batch) and judge significance against the baseline moved by the threshold (docs/gate-rules.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from harness.gate.rules import Rule, RuleResult, allowed, fmt_ci, mark_missing
from harness.measure.stats import mannwhitney
from harness.report.derived import has_fast_speedup, speedups
from harness.report.lookup import REFERENCE, opts_key, task_measurements, task_names
from harness.results import Results

ObsKey = tuple  # (role, backend, batch, threads, options key)


@dataclass
class Obs:
    """One timed observation of one side: the value, its CI, and the raw data a test can use."""
    value: float
    ci: tuple[float, float] | None = None
    ratios: np.ndarray | None = None  # per-round teacher/student ratios
    samples: list[int] | None = None
    basis: str = ""


class TimedRule(Rule):
    """Shared logic of the timed rules: subclasses give `observations(res, task)`."""

    timed: ClassVar[bool] = True

    def observations(self, res: Results, task: str) -> dict[ObsKey, Obs]:
        raise NotImplementedError

    def _obs(self, res: Results, task: str) -> dict[ObsKey, Obs]:
        return self.observations(res, task) if task in task_names(res) else {}

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        spec, results = self.spec, []
        for task in self.tasks(baseline, current):
            base, cur = self._obs(baseline, task), self._obs(current, task)
            groups = list(dict.fromkeys((k[0], k[1], k[3], k[4]) for k in list(base) + list(cur)))
            roles = self.roles(baseline, current, task)
            for role in roles:
                if not any(g[0] == role for g in groups):
                    results.append(self.row(task, role, "-", note="no measurement in either run"))
            for role, backend, threads, opts in groups:
                if role not in roles or not allowed(backend, spec.backends):
                    continue
                bb = [k[2] for k in base if (k[0], k[1], k[3], k[4]) == (role, backend, threads, opts)]
                batches = self.batches(bb)
                if not batches:  # measured only in the current run: new, nothing to compare it with
                    results.append(self.row(task, role, backend, threads=threads,
                                            note="no measurement in baseline (new in current)"))
                    continue
                for batch in batches:
                    b = base.get((role, backend, batch, threads, opts))
                    c = cur.get((role, backend, batch, threads, opts))
                    r = self.row(task, role, backend, batch, b.value if b else None, c.value if c else None,
                                 threads=threads)
                    if opts:
                        r.note = f"options {opts}; "
                    if b is None:
                        r.note += f"no measurement in baseline at batch {batch}"
                    elif c is None:
                        mark_missing(r, f"measurement at batch {batch}, {threads} thread(s)")
                    else:
                        self.judge_timed(r, b, c)
                    results.append(r)
        return results

    def judge_timed(self, r: RuleResult, b: Obs, c: Obs) -> None:
        """Fail only when the change is past the threshold and it is significant that it is past it.

        The evidence is held against the baseline moved by the threshold (x0.9 for a 10% drop, x1.1 for
        10% growth): the current CI must clear the baseline CI by the threshold, or a one-sided
        Mann-Whitney test of current vs threshold-shifted baseline must give p < alpha. Two runs of
        the same models differ a little even when their CIs are tight (the machine is never the
        same twice); only a change beyond the threshold, established beyond noise, fails.
        """
        higher_is_better, alpha = self.higher_is_better, self.spec.alpha
        if b.value == 0:
            r.note += "baseline value is zero"
            return
        r.change = c.value / b.value - 1
        crossed = r.change < r.threshold if higher_is_better else r.change > r.threshold
        f = 1 + r.threshold  # the baseline moved to the threshold
        alt = "less" if higher_is_better else "greater"
        if b.ci and c.ci:
            r.ci = f"base {fmt_ci(b.ci)} cur {fmt_ci(c.ci)}"
        if b.ratios is not None and c.ratios is not None:
            r.p_value = mannwhitney(list(c.ratios), list(np.asarray(b.ratios) * f), alternative=alt, cap=5000)
        elif b.samples and c.samples:
            r.p_value = mannwhitney(c.samples, list(np.asarray(b.samples, dtype=float) * f), alternative=alt,
                                    cap=5000)
        if b.ci and c.ci:
            if higher_is_better:
                disjoint, significant = c.ci[1] < b.ci[0], c.ci[1] < b.ci[0] * f
            else:
                disjoint, significant = c.ci[0] > b.ci[1], c.ci[0] > b.ci[1] * f
            how = ("CIs apart by more than the threshold" if significant else
                   "CIs disjoint, not apart by the threshold" if disjoint else "CIs overlap")
        elif r.p_value is not None:
            significant = r.p_value < alpha
            how = f"Mann-Whitney vs threshold-shifted baseline p {'<' if significant else '>='} {alpha:g}"
        else:
            significant = True
            how = "no CI or samples: threshold only"
        basis = c.basis if c.basis == b.basis else f"{b.basis} vs {c.basis}"
        r.note += f"{basis}; {how}" if basis else how
        if not crossed:
            r.verdict = "pass"
        else:
            r.verdict = "fail" if significant else "not significant"


class Speedup(TimedRule):
    """Teacher/student speedup (paired suite, else ratio of p50s); the fast-state `speedup_p10` when
    both files carry it (harness.report.derived.speedups)."""

    name = "speedup"
    threshold_key, default_threshold = "max_drop", 0.10
    higher_is_better = True

    fast: bool = False

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        self.fast = has_fast_speedup(baseline) and has_fast_speedup(current)
        return super().evaluate(baseline, current)

    def observations(self, res: Results, task: str) -> dict[ObsKey, Obs]:
        return {k: Obs(sp.value, sp.ci, sp.round_ratios(), basis=sp.basis)
                for k, sp in speedups(res, task, self.fast).items()}

    @classmethod
    def format_value(cls, v: float) -> str:
        return f"{v:.3g}x"


class LatencyP50(TimedRule):
    """Absolute p50 latency of every model (teacher included); only meaningful on one machine."""

    name = "latency_p50"
    threshold_key, default_threshold = "max_growth", 0.10
    higher_is_better = False
    enabled_by_default = False
    students_only = False

    def observations(self, res: Results, task: str) -> dict[ObsKey, Obs]:
        out = {}
        for m in task_measurements(res, task, "latency"):
            p50 = m.metrics.p50_ms
            if p50 is not None:
                out[(m.model, m.backend, m.batch_size, m.threads, opts_key(m))] = Obs(
                    p50, m.metrics.median_ci95_ms, samples=m.samples_ns, basis="latency")
        return out

    @classmethod
    def format_value(cls, v: float) -> str:
        return f"{v:.3g} ms"


class ServingQps(TimedRule):
    """The Server scenario's max-QPS ratio, student over the fp32 teacher under the same p99 bound, backend
    and batching (the serving suite, harness/measure/serving.py), judged like the speedup: a drop past
    the threshold fails only when the search brackets say so too. The CI is the bisection's bracket:
    each max QPS lies between its highest VALID and lowest INVALID target, so the ratio lies in
    [student_lo / teacher_hi, student_hi / teacher_lo]. Files without serving runs get no rows."""

    name = "serving_qps_ratio"
    threshold_key, default_threshold = "max_drop", 0.10
    higher_is_better = True

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        if not any(self._obs(res, t) for res in (baseline, current) for t in self.tasks(baseline, current)):
            return []
        return super().evaluate(baseline, current)

    def observations(self, res: Results, task: str) -> dict[ObsKey, Obs]:
        ms = [m for m in task_measurements(res, task) if m.suite == "serving" and m.metrics.max_qps]
        teachers = {(m.backend, m.batch_size, m.threads, opts_key(m)): m for m in ms if m.model == REFERENCE}
        out: dict[ObsKey, Obs] = {}
        for m in ms:
            t = teachers.get((m.backend, m.batch_size, m.threads, opts_key(m)))
            if m.model == REFERENCE or t is None:
                continue
            s_lo, s_hi = self._range(m)
            t_lo, t_hi = self._range(t)
            out[(m.model, m.backend, m.batch_size, m.threads, opts_key(m))] = Obs(
                m.metrics.max_qps / t.metrics.max_qps, (s_lo / t_hi, s_hi / t_lo), basis="LoadGen Server max QPS")
        return out

    @classmethod
    def format_value(cls, v: float) -> str:
        return f"{v:.3g}x"

    @staticmethod
    def _range(m) -> tuple[float, float]:
        """Where the max QPS lies: its repeats' range (when searched more than once), widened by the
        bisection's last bracket above."""
        x = m.metrics
        reps = x.max_qps_repeats or [x.max_qps]
        return min(reps), max(reps) * (1 + (x.search_resolution or 0))
