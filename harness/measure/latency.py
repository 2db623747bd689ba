"""Latency suite: per-call wall time of each session at each batch size.

For every handle x batch size: the handle's timer (this process, or the model's own worker
process in `harness bench`) prepares the batch outside the timed region, then `time_callable`
times `session.run_prepared(prepared)` alone. Runs of the same key from several worker processes
are pooled by `merge_runs`. Metrics are
`stats.summarize_ns` plus the calibration record, the harness's per-call overhead and, when the
model's MACs are known, the achieved GFLOP/s (2 * macs * batch / p50). Raw samples are kept.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from harness.errors import OptionError
from harness.measure.base import SessionHandle, wrap_rows
from harness.measure.hierarchical import between_process_cv, hierarchical_median_ci
from harness.measure.stats import (
    StabilityThresholds,
    stability_warnings,
    summarize_ns,
)
from harness.measure.timing import TimingConfig
from harness.metrics import LatencyMetrics, ThroughputMetrics
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
    # True: one run of several that `merge.merge_processes` pools; keep samples, calibration and
    # overhead only, and leave the statistics (bootstraps) to the merge instead of computing them twice
    pooled: bool = False

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
    return wrap_rows(src, batch_size)


def achieved_gflops(macs: int | None, batch_size: int, p50_ms: float) -> float | None:
    if not macs or p50_ms <= 0:
        return None
    return 2.0 * float(macs) * batch_size / (p50_ms / 1e3) / 1e9


def summarize_processes(groups: Sequence[np.ndarray]) -> dict[str, Any]:
    """`summarize_ns` over the samples of every process pooled, with the median's CI from the
    two-stage bootstrap (processes, then chunks of consecutive calls) and the per-process medians.
    """
    arrays = [np.asarray(g, dtype=np.int64).ravel() for g in groups]
    summary = summarize_ns(np.concatenate(arrays))
    lo, hi = hierarchical_median_ci([a / 1e6 for a in arrays])
    summary["median_ci95_ms"] = [lo, hi]
    summary["median_ci_method"] = "two-stage bootstrap: processes, then chunks of consecutive calls"
    process_p50 = [float(np.median(a)) / 1e6 for a in arrays]
    summary["processes"] = len(arrays)
    summary["process_p50_ms"] = process_p50
    summary["between_process_cv"] = between_process_cv(process_p50)
    return summary


# Per-process medians further apart than this are worth a warning: the speed state differs by process.
BETWEEN_PROCESS_WARN = 0.10


def timing_metrics(samples_ns: np.ndarray | Sequence[np.ndarray], calibration: dict[str, Any] | Sequence[dict],
                   overhead: dict[str, Any], thresholds: StabilityThresholds) -> tuple[dict[str, Any], list[str]]:
    """summarize + calibration + overhead, and the stability/calibration warnings.

    `samples_ns` is one run's samples or a list with one array per process (then `calibration`
    is a list too); the CI of the median covers the processes (see `summarize_processes`).
    """
    groups = [samples_ns] if isinstance(samples_ns, np.ndarray) else list(samples_ns)
    calibrations = [calibration] if isinstance(calibration, dict) else list(calibration)
    summary = summarize_processes(groups)
    metrics: dict[str, Any] = dict(summary)
    metrics["harness_overhead_p50_ns"] = float(overhead["p50_ns"])
    metrics["harness_overhead"] = dict(overhead)
    metrics["calibration"] = dict(calibrations[0]) if len(calibrations) == 1 else {"processes": calibrations}
    warnings = stability_warnings(summary, thresholds)
    short = [c.get("n_samples") for c in calibrations if not c.get("min_samples_met", True)]
    if short:
        warnings.append(
            f"only {min(short)} samples in a process: max_time_s/max_samples stopped the run "
            "before min_samples was reached"
        )
    p50s = summary["process_p50_ms"]
    if len(p50s) > 1 and min(p50s) > 0 and max(p50s) / min(p50s) - 1 > BETWEEN_PROCESS_WARN:
        warnings.append(
            f"between processes: medians ranged {min(p50s):.4g}-{max(p50s):.4g} ms "
            f"({max(p50s) / min(p50s) - 1:.0%} apart); the speed state differs from one fresh process to the "
            "next, and the CI covers it"
        )
    p50_ns = summary["p50_ms"] * 1e6
    if p50_ns > 0 and overhead["p50_ns"] / p50_ns > OVERHEAD_WARN_FRACTION:
        warnings.append(
            f"harness overhead ({overhead['p50_ns']:.0f} ns per call) is {overhead['p50_ns'] / p50_ns:.0%} "
            "of the median: the call is too short to time individually with confidence"
        )
    res_ns = float(calibrations[0].get("timer_resolution_s", 0.0)) * 1e9
    if res_ns > 0 and p50_ns < 100 * res_ns:
        warnings.append(f"median ({p50_ns:.0f} ns) is under 100x the timer resolution ({res_ns:.0f} ns)")
    return metrics, warnings


def timed_measurement(h: SessionHandle, suite: str, bs: int, res, overhead: dict[str, Any],
                      thresholds: StabilityThresholds, keep_samples: bool) -> Measurement:
    """One timed handle x batch as a Measurement: stats, warnings, samples/s and achieved GFLOP/s."""
    metrics, warnings = _timed_metrics([res.samples_ns], [res.calibration], overhead, thresholds, bs, h.macs)
    return Measurement(task=h.task, model=h.role, backend=h.backend, suite=suite, batch_size=bs,
                       threads=int(h.options.threads), metrics=_typed(suite, metrics), options=h.options.key(),
                       samples_ns=res.samples_ns.tolist() if keep_samples else None, warnings=warnings)


def _typed(suite: str, metrics: dict[str, Any]) -> LatencyMetrics:
    return (ThroughputMetrics if suite == "throughput" else LatencyMetrics).from_dict(metrics, strict=True)


def raw_measurement(h: SessionHandle, suite: str, bs: int, res, overhead: dict[str, Any]) -> Measurement:
    """A timed run kept for pooling (`merge_runs`): samples, calibration, overhead; no statistics yet."""
    metrics: dict[str, Any] = {"calibration": dict(res.calibration), "harness_overhead": dict(overhead),
                               "harness_overhead_p50_ns": float(overhead["p50_ns"]), "worker": h.timer.where()}
    if h.macs:
        metrics["macs_per_sample"] = int(h.macs)
    return Measurement(task=h.task, model=h.role, backend=h.backend, suite=suite, batch_size=bs,
                       threads=int(h.options.threads), metrics=_typed(suite, metrics), options=h.options.key(),
                       samples_ns=res.samples_ns.tolist())


def _timed_metrics(groups, calibrations, overhead, thresholds, bs: int, macs: int | None):
    metrics, warnings = timing_metrics(groups, calibrations, overhead, thresholds)
    p50_s = metrics["p50_ms"] / 1e3
    metrics["samples_per_s"] = bs / p50_s if p50_s > 0 else None
    gflops = achieved_gflops(macs, bs, metrics["p50_ms"])
    if gflops is not None:
        metrics["gflops"] = gflops
        metrics["macs_per_sample"] = int(macs)
    return metrics, warnings


def _process_parts(run: Measurement) -> list[tuple[np.ndarray, dict[str, Any], float, Any]]:
    """(samples, calibration, harness overhead p50 ns, worker) per process of a run: one for a raw
    run; one per process for a run that is itself pooled (two benches of one host merged by
    `harness merge`), split by each process's `n_samples`, so the CI still resamples processes."""
    met = run.metrics
    samples = np.asarray(run.samples_ns, dtype=np.int64)
    overhead = float(met.harness_overhead["p50_ns"])
    cals = met.calibration.get("processes") if isinstance(met.calibration, dict) else None
    counts = [c.get("n_samples") for c in cals] if isinstance(cals, list) else []
    if len(counts) > 1 and all(isinstance(n, int) for n in counts) and sum(counts) == len(samples):
        groups = np.split(samples, np.cumsum(counts)[:-1])
        over = met.harness_overhead.get("process_p50_ns")
        overs = [float(o) for o in over] if isinstance(over, list) and len(over) == len(counts) else \
            [overhead] * len(counts)
        workers = met.workers if isinstance(met.workers, list) and len(met.workers) == len(counts) else \
            [None] * len(counts)
        return list(zip(groups, cals, overs, workers))
    return [(samples, met.calibration, overhead, met.worker)]


def merge_runs(runs: Sequence[Measurement], thresholds: StabilityThresholds | None = None) -> Measurement:
    """One latency (or throughput) Measurement from the same key measured in several worker processes.

    Samples are pooled for the percentiles; the median's CI resamples processes, then chunks within
    them; per-process medians and their CV are kept. The harness overhead is the median of the
    processes' own figures. Requires every run to have kept its samples.
    """
    first = runs[0]
    if any(r.samples_ns is None for r in runs):
        raise ValueError("merging processes needs the raw samples of every run")
    parts = [part for r in runs for part in _process_parts(r)]
    groups = [p[0] for p in parts]
    calibrations = [p[1] for p in parts]
    overhead = dict(first.metrics.harness_overhead)
    overhead["p50_ns"] = float(np.median([p[2] for p in parts]))
    overhead["process_p50_ns"] = [p[2] for p in parts]
    macs = first.metrics.macs_per_sample
    metrics, warnings = _timed_metrics(groups, calibrations, overhead, thresholds or StabilityThresholds(),
                                       first.batch_size, macs)
    metrics["workers"] = [p[3] for p in parts]
    # a raw run (no statistics yet) carries only warnings about the run itself, e.g. a stopped sweep
    warnings += list(dict.fromkeys(w for r in runs if r.metrics.p50_ms is None for w in r.warnings))
    return Measurement(task=first.task, model=first.model, backend=first.backend, suite=first.suite,
                       batch_size=first.batch_size, threads=first.threads, metrics=_typed(first.suite, metrics),
                       options=first.options,
                       samples_ns=np.concatenate(groups).tolist(), warnings=warnings)


def measure(handles: Sequence[SessionHandle], inputs: dict[int, np.ndarray], config: LatencyConfig | None = None
            ) -> list[Measurement]:
    cfg = config or LatencyConfig()
    out: list[Measurement] = []
    for h in handles:
        overhead = h.timer.overhead()  # measured where the timing runs (this process or the worker)
        for bs in cfg.batch_sizes:
            res = h.timer.time(get_batch(inputs, bs), cfg.timing)
            h.timed_runs[bs] = (cfg.timing, res)
            if cfg.pooled:
                out.append(raw_measurement(h, "latency", bs, res, overhead))
                continue
            m = timed_measurement(h, "latency", bs, res, overhead, cfg.thresholds, cfg.keep_samples)
            m.metrics.worker = h.timer.where()
            out.append(m)
    return out
