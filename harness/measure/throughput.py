"""Throughput suite: a batch-size sweep per session, samples per second from the median call.

For each handle and batch size, a short calibrated timing run (same hot loop as latency) gives
the median time per batch; samples_per_s = batch / median. A batch size the latency suite has just
timed on the same handle (batch 1, typically) is not timed again: its throughput is read from those
calls, which ran at least as long as this suite's own window. Every (handle, batch) gets its own
Measurement (suite "throughput"); each also carries the handle's best batch (`best_batch`,
`best_samples_per_s`) and whether it is that batch (`is_best`).

A batch that fails (typically out of memory at large batch sizes) stops that handle's sweep; the
failure is recorded as a warning on the handle's measurements rather than aborting the suite.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from harness.measure.base import SessionHandle
from harness.measure.latency import _check_batch_sizes, get_batch, raw_measurement, timed_measurement
from harness.measure.stats import StabilityThresholds
from harness.measure.timing import TimingConfig, TimingResult
from harness.results import Measurement

SHORT_TIMING = TimingConfig(warmup_min_s=0.1, warmup_min_calls=3, min_time_s=0.3, min_samples=10, max_time_s=3.0)


@dataclass(frozen=True)
class ThroughputConfig:
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    timing: TimingConfig = field(default_factory=lambda: SHORT_TIMING)
    thresholds: StabilityThresholds = field(default_factory=StabilityThresholds)
    keep_samples: bool = True
    pooled: bool = False  # as LatencyConfig.pooled: raw runs for merge.merge_processes

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", _check_batch_sizes(self.batch_sizes, "throughput"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(handles: Sequence[SessionHandle], inputs: dict[int, np.ndarray], config: ThroughputConfig | None = None
            ) -> list[Measurement]:
    cfg = config or ThroughputConfig()
    out: list[Measurement] = []
    for h in handles:
        overhead = h.timer.overhead()
        mine: list[Measurement] = []
        failure: str | None = None
        for bs in cfg.batch_sizes:
            try:
                res = _reuse(h, bs, cfg.timing)
                if res is None:
                    res = h.timer.time(get_batch(inputs, bs), cfg.timing)
            except Exception as exc:  # noqa: BLE001 - e.g. out of memory at a large batch: record, stop the sweep
                if not mine:
                    raise
                failure = f"batch {bs} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); sweep stopped"
                break
            mine.append(raw_measurement(h, "throughput", bs, res, overhead) if cfg.pooled else
                        timed_measurement(h, "throughput", bs, res, overhead, cfg.thresholds, cfg.keep_samples))
        for m in mine:
            m.metrics.worker = h.timer.where()
            if failure:
                m.warnings.append(failure)
        out.extend(mine if cfg.pooled else mark_best(mine))
    return out


def _reuse(h: SessionHandle, bs: int, timing: TimingConfig):
    """The latency suite's run of this handle at this batch, if its windows were at least as long as ours.
    Taken, not read: a second throughput pass on the handle times again rather than repeat one run."""
    done = h.timed_runs.pop(bs, None)
    if done is None:
        return None
    their, res = done
    if their.min_time_s >= timing.min_time_s and their.min_samples >= timing.min_samples:
        # Marked, so a reader can tell this row's calls ran in the latency suite (before the paired one).
        return TimingResult(samples_ns=res.samples_ns, calibration={**res.calibration, "reused_from": "latency"})
    return None


def mark_best(sweep: list[Measurement]) -> list[Measurement]:
    """Mark the batch with the most samples/s in one handle's sweep (again after merging processes)."""
    best = max(sweep, key=lambda m: m.metrics.samples_per_s or 0.0)
    for m in sweep:
        m.metrics.best_batch = best.batch_size
        m.metrics.best_samples_per_s = best.metrics.samples_per_s
        m.metrics.is_best = m is best
    return sweep
