"""Pool the runs of one measurement key made in several worker processes into one Measurement.

`harness bench --processes N` times every suite in N fresh sets of worker processes; each process
gives its own Measurement per key. Here they become one per key, whose CIs resample processes as
well as the samples within them (see harness/measure/hierarchical.py). Suites that are not timed per process
pass through unchanged.
"""
from __future__ import annotations

from typing import Sequence

from harness.measure import throughput
from harness.measure.registry import merge_runs
from harness.measure.stats import StabilityThresholds
from harness.results import Measurement


def merge_processes(measurements: Sequence[Measurement], thresholds: StabilityThresholds | None = None
                    ) -> list[Measurement]:
    """Measurements of several processes (any order) -> one per key, in first-seen key order."""
    groups: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.key(), []).append(m)
    out: list[Measurement] = []
    for runs in groups.values():
        out.append(merge_runs(runs, thresholds))  # each timed suite's own merge (harness.measure.registry)
    mark_best_throughput(out)
    return out


def mark_best_throughput(measurements: Sequence[Measurement]) -> None:
    """Mark the best batch of every throughput sweep (model, backend, threads, options) afresh."""
    sweeps: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        if m.suite == "throughput":
            sweeps.setdefault((m.task, m.model, m.backend, m.threads, str(sorted(m.options.items()))), []).append(m)
    for sweep in sweeps.values():
        throughput.mark_best(sweep)
