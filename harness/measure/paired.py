"""Paired suite: the reference model (teacher) and each other model timed INTERLEAVED in one process.

Timing models one after the other lets slow drift (thermal state, frequency scaling, other load
on a shared machine) land on one model and not the other. Here, for each round r = 1..R, a block
of k calls of the reference is timed, then a block of k calls of the candidate, with the order
alternating each round (R-C, C-R, R-C, ...) so that neither model systematically runs first.

Reported per candidate (Measurement with suite "paired", model = candidate role):
- speedup = median(all reference calls) / median(all candidate calls), i.e. teacher_p50 / student_p50;
- speedup_ci95: percentile bootstrap paired over rounds. Rounds are the independent unit (calls
  within one round share the machine's state), so the bootstrap resamples round indices and takes
  both models' calls of the drawn rounds together: a cluster bootstrap, which is the paired
  bootstrap of per-round results, recomputing exactly the point estimate's statistic (so the
  point estimate always lies in its interval);
- speedup_rounds_ci95: the simpler variant, ratio of medians of the per-round medians with pairs
  (reference round median, candidate round median) resampled jointly (`stats.ratio_ci(paired=True)`);
- p_value: two-sided Mann-Whitney U over all per-call samples (calls within a round are
  correlated, so this p-value is optimistic; the CI is the primary evidence);
  p_value_rounds: the same test over per-round medians (conservative);
- significant: whether speedup_ci95 excludes 1;
- the candidate's per-call samples in samples_ns and the reference's in
  metrics["reference_samples_ns"], both in round order, with calls_per_block = k.
"""
from __future__ import annotations

import gc
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from harness.errors import OptionError
from harness.measure.base import SessionHandle
from harness.measure.latency import _check_batch_sizes, get_batch, timing_metrics
from harness.measure.stats import (
    StabilityThresholds,
    mannwhitney,
    ratio_ci,
    ratio_ci_clustered,
    stability_warnings,
    summarize_ns,
)
from harness.measure.timing import TimingConfig, bind, estimate_call_ns, measure_overhead_ns, timer_info, warm_up
from harness.results import Measurement


@dataclass(frozen=True)
class PairedConfig:
    batch_sizes: tuple[int, ...] = (1,)
    rounds: int = 30
    calls_per_block: int | None = None  # None: from warm-up, so a block lasts about block_time_s
    block_time_s: float = 0.05
    min_calls_per_block: int = 5
    max_calls_per_block: int = 1000
    max_time_s: float = 60.0  # per pair and batch size; stops after a whole round, keeps >= 2 rounds
    warmup: TimingConfig = field(default_factory=lambda: TimingConfig(warmup_min_s=0.2, warmup_min_calls=5))
    reference_role: str = "teacher"
    thresholds: StabilityThresholds = field(default_factory=StabilityThresholds)
    disable_gc: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", _check_batch_sizes(self.batch_sizes, "paired"))
        if not _int(self.rounds) or self.rounds < 2:
            raise OptionError(f"paired rounds must be an integer >= 2, got {self.rounds!r}")
        if self.calls_per_block is not None and (not _int(self.calls_per_block) or self.calls_per_block < 1):
            raise OptionError(f"paired calls_per_block must be a positive integer, got {self.calls_per_block!r}")
        if not _int(self.min_calls_per_block) or self.min_calls_per_block < 1:
            raise OptionError(f"paired min_calls_per_block must be a positive integer, got {self.min_calls_per_block!r}")
        if not _int(self.max_calls_per_block) or self.max_calls_per_block < self.min_calls_per_block:
            raise OptionError(
                f"paired max_calls_per_block must be an integer >= min_calls_per_block, got {self.max_calls_per_block!r}"
            )
        for name in ("block_time_s", "max_time_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise OptionError(f"paired {name} must be a number > 0, got {v!r}")
        if not isinstance(self.reference_role, str) or not self.reference_role:
            raise OptionError(f"paired reference_role must be a non-empty string, got {self.reference_role!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _block(fn: Callable[[], Any], k: int, buf: list[int], clock: Callable[[], int]) -> None:
    """k timed calls into buf[0:k]: the same tight loop as timing.time_callable."""
    for i in range(k):
        t0 = clock()
        fn()
        t1 = clock()
        buf[i] = t1 - t0


def time_interleaved(
    ref_fn: Callable[[], Any],
    cand_fn: Callable[[], Any],
    config: PairedConfig,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Returns (ref samples R x k, candidate samples R x k, calibration) as int64 arrays."""
    cfg = config
    w0 = clock()
    warm_ref = warm_up(ref_fn, cfg.warmup, clock=clock)
    warm_cand = warm_up(cand_fn, cfg.warmup, clock=clock)
    warmup_s = (clock() - w0) / 1e9
    est_ref, est_cand = estimate_call_ns(warm_ref), estimate_call_ns(warm_cand)
    if cfg.calls_per_block is not None:
        k = int(cfg.calls_per_block)
    else:
        k = math.ceil(cfg.block_time_s * 1e9 / max(est_ref, est_cand))
        k = min(max(k, cfg.min_calls_per_block), cfg.max_calls_per_block)

    ref = np.zeros((cfg.rounds, k), dtype=np.int64)
    cand = np.zeros((cfg.rounds, k), dtype=np.int64)
    buf = [0] * k
    done = 0
    gc_was_enabled = gc.isenabled()
    if cfg.disable_gc:
        gc.collect()
        gc.disable()
    try:
        start = clock()
        deadline = start + int(cfg.max_time_s * 1e9)
        for r in range(cfg.rounds):
            order = ((ref_fn, ref), (cand_fn, cand)) if r % 2 == 0 else ((cand_fn, cand), (ref_fn, ref))
            for fn, dest in order:
                _block(fn, k, buf, clock)
                dest[r, :] = buf
            done = r + 1
            if done >= 2 and clock() > deadline:
                break
        end = clock()
    finally:
        if cfg.disable_gc and gc_was_enabled:
            gc.enable()
    if cfg.disable_gc:
        gc.collect()
    calibration = {
        "warmup_calls": [len(warm_ref), len(warm_cand)],
        "warmup_s": warmup_s,
        "estimated_call_ns": [est_ref, est_cand],
        "calls_per_block": k,
        "planned_rounds": cfg.rounds,
        "rounds": done,
        "stopped_by_max_time": done < cfg.rounds,
        "total_s": (end - start) / 1e9,
        "gc_disabled": bool(cfg.disable_gc),
        "order": "alternating per round, reference first in round 1",
        **timer_info(),
    }
    return ref[:done], cand[:done], calibration


def _group_key(h: SessionHandle) -> tuple:
    return (h.task, h.backend, json.dumps(h.options.key(), sort_keys=True, default=str))


def pairs(handles: Sequence[SessionHandle], reference_role: str = "teacher") -> list[tuple[SessionHandle, SessionHandle]]:
    """(reference, candidate) for every non-reference handle that shares task, backend and options
    with a reference handle."""
    refs = {_group_key(h): h for h in handles if h.role == reference_role}
    return [(refs[_group_key(h)], h) for h in handles if h.role != reference_role and _group_key(h) in refs]


def compare(ref_samples: np.ndarray, cand_samples: np.ndarray, overhead: dict[str, Any],
            calibration: dict[str, Any], thresholds: StabilityThresholds, reference_role: str
            ) -> tuple[dict[str, Any], list[str]]:
    """Metrics and warnings for one interleaved run (R x k arrays)."""
    ref_all, cand_all = ref_samples.ravel(), cand_samples.ravel()
    speedup, lo, hi = ratio_ci_clustered(list(ref_samples), list(cand_samples))
    ref_round = np.median(ref_samples, axis=1)
    cand_round = np.median(cand_samples, axis=1)
    _, rlo, rhi = ratio_ci(ref_round, cand_round, paired=True)
    cand_metrics, warnings = timing_metrics(cand_all, calibration, overhead, thresholds)
    ref_summary = summarize_ns(ref_all)
    warnings += [f"{reference_role}: {w}" for w in stability_warnings(ref_summary, thresholds)]
    metrics: dict[str, Any] = dict(cand_metrics)  # the candidate's own summary: p50_ms, p90_ms, ...
    metrics.update({
        "speedup": speedup,
        "speedup_ci95": [lo, hi],
        "speedup_rounds_ci95": [rlo, rhi],
        "significant": bool(lo > 1.0 or hi < 1.0),
        "teacher_p50_ms": ref_summary["p50_ms"],
        "student_p50_ms": cand_metrics["p50_ms"],
        "teacher_median_ci95_ms": ref_summary["median_ci95_ms"],
        "student_median_ci95_ms": cand_metrics["median_ci95_ms"],
        "p_value": mannwhitney(ref_all, cand_all),
        "p_value_rounds": mannwhitney(ref_round, cand_round),
        "rounds": int(ref_samples.shape[0]),
        "calls_per_block": int(ref_samples.shape[1]),
        "reference": reference_role,
        "reference_samples_ns": ref_all.tolist(),
        "reference_summary": ref_summary,
    })
    if calibration.get("stopped_by_max_time"):
        warnings.append(f"only {metrics['rounds']} of {calibration['planned_rounds']} rounds: max_time_s reached")
    # drift: reference round medians in the first vs the second half of the run
    half = ref_round.size // 2
    if half >= 2:
        a, b = float(np.median(ref_round[:half])), float(np.median(ref_round[half:]))
        if a > 0 and abs(b - a) / a > 0.10:
            warnings.append(
                f"drift: {reference_role}'s per-round median moved {abs(b - a) / a:.0%} between the first and second "
                "half of the run; interleaving cancels it in the ratio, but the machine was not steady"
            )
    return metrics, warnings


def measure(handles: Sequence[SessionHandle], inputs: dict[int, np.ndarray], config: PairedConfig | None = None
            ) -> list[Measurement]:
    cfg = config or PairedConfig()
    overhead = measure_overhead_ns()
    out: list[Measurement] = []
    for ref, cand in pairs(handles, cfg.reference_role):
        for bs in cfg.batch_sizes:
            batch = get_batch(inputs, bs)
            ref_fn = bind(ref.session, ref.session.prepare(batch))
            cand_fn = bind(cand.session, cand.session.prepare(batch))
            ref_s, cand_s, calibration = time_interleaved(ref_fn, cand_fn, cfg)
            metrics, warnings = compare(ref_s, cand_s, overhead, calibration, cfg.thresholds, cfg.reference_role)
            out.append(
                Measurement(
                    task=cand.task,
                    model=cand.role,
                    backend=cand.backend,
                    suite="paired",
                    batch_size=bs,
                    threads=int(cand.options.threads),
                    metrics=metrics,
                    options=cand.options.key(),
                    samples_ns=cand_s.ravel().tolist(),
                    warnings=warnings,
                )
            )
    return out
