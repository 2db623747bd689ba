"""Latency suite: per-call wall time of each session at each batch size.

For every handle x batch size: the batch is prepared outside the timed region
(`session.prepare`), then `time_callable` times `session.run_prepared(prepared)` alone. Metrics are
`stats.summarize_ns` plus the calibration record, the harness's per-call overhead and, when the
model's MACs are known, the achieved GFLOP/s (2 * macs * batch / p50). Raw samples are kept.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from harness.errors import OptionError
from harness.measure.base import SessionHandle
from harness.measure.stats import StabilityThresholds, stability_warnings, summarize_ns
from harness.measure.timing import TimingConfig, bind, measure_overhead_ns, time_callable
from harness.results import Measurement

# Overhead above this fraction of the median is worth a warning: the number is partly the harness.
OVERHEAD_WARN_FRACTION = 0.05


def _check_batch_sizes(batch_sizes: Any, where: str) -> tuple[int, ...]:
    try:
        out = tuple(batch_sizes)
    except TypeError:
        raise OptionError(f"{where} batch_sizes must be a list of positive integers, got {batch_sizes!r}") from None
    if not out or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b >= 1 for b in out):
        raise OptionError(f"{where} batch_sizes must be a non-empty list of positive integers, got {batch_sizes!r}")
    return tuple(int(b) for b in out)


@dataclass(frozen=True)
class LatencyConfig:
    timing: TimingConfig = field(default_factory=TimingConfig)
    batch_sizes: tuple[int, ...] = (1,)
    thresholds: StabilityThresholds = field(default_factory=StabilityThresholds)
    keep_samples: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", _check_batch_sizes(self.batch_sizes, "latency"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_batch(inputs: dict[int, np.ndarray], batch_size: int) -> np.ndarray:
    """The input batch for `batch_size`: `inputs[batch_size]` if given, else rows of the largest
    given batch repeated (wrapping) to that many samples. Timing does not depend on the values.
    """
    if batch_size in inputs:
        return inputs[batch_size]
    if not inputs:
        raise OptionError("no input batches were given to the suite")
    src = inputs[max(inputs)]
    if src.shape[0] == 0:
        raise OptionError("the input batch is empty")
    return np.ascontiguousarray(np.take(src, np.arange(batch_size) % src.shape[0], axis=0))


def time_session(session: Any, batch: np.ndarray, timing: TimingConfig):
    """Prepare outside the timed region, then time run_prepared alone."""
    prepared = session.prepare(batch)
    return time_callable(bind(session, prepared), timing)


def achieved_gflops(macs: int | None, batch_size: int, p50_ms: float) -> float | None:
    if not macs or p50_ms <= 0:
        return None
    return 2.0 * float(macs) * batch_size / (p50_ms / 1e3) / 1e9


def timing_metrics(samples_ns: np.ndarray, calibration: dict[str, Any], overhead: dict[str, Any],
                   thresholds: StabilityThresholds) -> tuple[dict[str, Any], list[str]]:
    """summarize_ns + calibration + overhead, and the stability/calibration warnings."""
    summary = summarize_ns(samples_ns)
    metrics: dict[str, Any] = dict(summary)
    metrics["harness_overhead_p50_ns"] = float(overhead["p50_ns"])
    metrics["harness_overhead"] = dict(overhead)
    metrics["calibration"] = dict(calibration)
    warnings = stability_warnings(summary, thresholds)
    if not calibration.get("min_samples_met", True):
        warnings.append(
            f"only {calibration.get('n_samples')} samples: max_time_s/max_samples stopped the run "
            "before min_samples was reached"
        )
    p50_ns = summary["p50_ms"] * 1e6
    if p50_ns > 0 and overhead["p50_ns"] / p50_ns > OVERHEAD_WARN_FRACTION:
        warnings.append(
            f"harness overhead ({overhead['p50_ns']:.0f} ns per call) is {overhead['p50_ns'] / p50_ns:.0%} "
            "of the median: the call is too short to time individually with confidence"
        )
    res_ns = float(calibration.get("timer_resolution_s", 0.0)) * 1e9
    if res_ns > 0 and p50_ns < 100 * res_ns:
        warnings.append(f"median ({p50_ns:.0f} ns) is under 100x the timer resolution ({res_ns:.0f} ns)")
    return metrics, warnings


def timed_measurement(h: SessionHandle, suite: str, bs: int, res, overhead: dict[str, Any],
                      thresholds: StabilityThresholds, keep_samples: bool) -> Measurement:
    """One timed handle x batch as a Measurement: stats, warnings, samples/s and achieved GFLOP/s."""
    metrics, warnings = timing_metrics(res.samples_ns, res.calibration, overhead, thresholds)
    p50_s = metrics["p50_ms"] / 1e3
    metrics["samples_per_s"] = bs / p50_s if p50_s > 0 else None
    gflops = achieved_gflops(h.macs, bs, metrics["p50_ms"])
    if gflops is not None:
        metrics["gflops"] = gflops
        metrics["macs_per_sample"] = int(h.macs)
    return Measurement(task=h.task, model=h.role, backend=h.backend, suite=suite, batch_size=bs,
                       threads=int(h.options.threads), metrics=metrics, options=h.options.key(),
                       samples_ns=res.samples_ns.tolist() if keep_samples else None, warnings=warnings)


def measure(handles: Sequence[SessionHandle], inputs: dict[int, np.ndarray], config: LatencyConfig | None = None
            ) -> list[Measurement]:
    cfg = config or LatencyConfig()
    overhead = measure_overhead_ns()
    out: list[Measurement] = []
    for h in handles:
        for bs in cfg.batch_sizes:
            res = time_session(h.session, get_batch(inputs, bs), cfg.timing)
            out.append(timed_measurement(h, "latency", bs, res, overhead, cfg.thresholds, cfg.keep_samples))
    return out
