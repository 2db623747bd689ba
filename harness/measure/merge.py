"""Pool the runs of one measurement key made in several worker processes into one Measurement.

`harness bench --processes N` times every suite in N fresh sets of worker processes; each process
gives its own Measurement per key. Here they become one per key, whose CIs resample processes as
well as the samples within them (see stats.hierarchical_*). Suites that are not timed per process
pass through unchanged.
"""
from __future__ import annotations

from typing import Sequence

from harness.measure import latency, paired, throughput
from harness.measure.stats import StabilityThresholds
from harness.results import Measurement

MERGERS = {"latency": latency.merge_runs, "throughput": latency.merge_runs, "paired": paired.merge_runs}


def merge_processes(measurements: Sequence[Measurement], thresholds: StabilityThresholds | None = None
                    ) -> list[Measurement]:
    """Measurements of several processes (any order) -> one per key, in first-seen key order."""
    groups: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.key(), []).append(m)
    out: list[Measurement] = []
    for runs in groups.values():
        merger = MERGERS.get(runs[0].suite)
        out.append(merger(runs, thresholds) if merger else runs[0])
    sweeps: dict[tuple, list[Measurement]] = {}
    for m in out:
        if m.suite == "throughput":
            sweeps.setdefault((m.task, m.model, m.backend, m.threads, str(sorted(m.options.items()))), []).append(m)
    for sweep in sweeps.values():
        throughput.mark_best(sweep)
    return out
