"""The hot path: time a callable, one sample per call, with as little harness in the way as possible.

    result = time_callable(lambda: session.run_prepared(prepared), TimingConfig())
    result.samples_ns      # int64 array, one wall-clock duration per call
    result.calibration     # how the run was sized, and what the harness itself costs per call

Phases:
1. Warm-up: call until both `warmup_min_calls` calls and `warmup_min_s` seconds are done (or
   `warmup_max_s` has passed with at least one call). First calls pay for lazy initialisation,
   allocator growth, cache and branch-predictor warm-up; they are discarded.
2. Calibration: the median of the second half of the warm-up timings estimates one call; the run
   length n is the smallest count with n >= min_samples and n * estimate >= min_time_s, then
   capped by max_samples and by max_time_s (a cap that leaves fewer than min_samples is reported).
3. The loop: a preallocated list, two `perf_counter_ns` reads around each call and one store.
   No logging, no allocation beyond the int the subtraction makes, no dict building. The only
   extra work is one integer comparison against a deadline, so a run whose calls get slower than
   calibrated still stops near max_time_s instead of running away.

The cyclic garbage collector is disabled during the loop (config.disable_gc, on by default):
a backend call allocates Python objects (tensors, output lists), and every few hundred
allocations CPython may run a GC pass whose pause lands inside whatever call happened to trigger
it. That pause is harness/interpreter noise, not model latency, and it shows up as tail outliers
unrelated to the model. With GC off, the pass is deferred to after the loop (a `gc.collect()`
runs there); the cost is that cyclic garbage made during the loop lives until then, which is
bounded by max_samples calls. GC is re-enabled only if it was enabled before.

Per-call harness overhead (`measure_overhead_ns`) is the same loop around the same call shape the
suites use (`bind(session, prepared)`) with a no-op `run_prepared`: timer reads plus the calls. It is reported next to every measurement, never subtracted from
the samples, so a reader can tell when a model's time is close to the harness's own.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from harness.errors import OptionError
from harness.options import check_int, check_number


@dataclass(frozen=True)
class TimingConfig:
    warmup_min_s: float = 0.2
    warmup_min_calls: int = 5
    warmup_max_s: float = 5.0  # stop warming up after this long (with at least one call done)
    min_time_s: float = 1.0
    min_samples: int = 30
    max_time_s: float = 10.0
    max_samples: int = 100_000
    disable_gc: bool = True

    def __post_init__(self) -> None:
        for name in ("warmup_min_s", "min_time_s"):
            check_number(getattr(self, name), f"timing option {name}", minimum=0)
        for name in ("warmup_max_s", "max_time_s"):
            check_number(getattr(self, name), f"timing option {name}", minimum=0, exclusive=True)
        check_int(self.warmup_min_calls, "timing option warmup_min_calls", minimum=0)
        for name in ("min_samples", "max_samples"):
            check_int(getattr(self, name), f"timing option {name}")
        if self.max_samples < self.min_samples:
            raise OptionError(
                f"timing option max_samples ({self.max_samples}) is below min_samples ({self.min_samples})"
            )
        if self.max_time_s < self.min_time_s:
            raise OptionError(
                f"timing option max_time_s ({self.max_time_s}) is below min_time_s ({self.min_time_s})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# A short configuration for measuring the harness's own per-call cost.
OVERHEAD_CONFIG = TimingConfig(
    warmup_min_s=0.01, warmup_min_calls=100, min_time_s=0.05, min_samples=1000, max_time_s=0.5, max_samples=20_000
)


@dataclass
class TimingResult:
    samples_ns: np.ndarray  # int64, one per timed call
    calibration: dict[str, Any] = field(default_factory=dict)


def timer_info() -> dict[str, Any]:
    info = time.get_clock_info("perf_counter")
    return {
        "timer": "time.perf_counter_ns",
        "timer_implementation": info.implementation,
        "timer_resolution_s": float(info.resolution),
        "timer_monotonic": bool(info.monotonic),
    }


class _NoopSession:
    """Stands in for a backend session: the overhead loop calls it exactly as the suites do."""

    def run_prepared(self, prepared: Any) -> None:
        return None


def bind(session: Any, prepared: Any) -> Callable[[], Any]:
    """The zero-argument callable the suites time: `session.run_prepared(prepared)`.

    functools.partial is a C-level call wrapper, cheaper than a lambda.
    """
    return functools.partial(session.run_prepared, prepared)


@contextlib.contextmanager
def gc_paused(pause: bool = True) -> Iterator[None]:
    """The garbage collector off inside (when `pause`), back to its previous state after: a
    collection inside a timed loop would land in one sample as a multi-millisecond outlier."""
    was_enabled = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause and was_enabled:
            gc.enable()


def warm_up(fn: Callable[[], Any], cfg: TimingConfig, *, clock: Callable[[], int] = time.perf_counter_ns) -> list[int]:
    """Call `fn` until warmup_min_calls and warmup_min_s are both done, or warmup_max_s passes.

    Returns the warm-up call durations (ns); at least one call is always made.
    """
    warm: list[int] = []
    w_min_ns = int(cfg.warmup_min_s * 1e9)
    w_max_ns = int(cfg.warmup_max_s * 1e9)
    w_start = clock()
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        warm.append(t1 - t0)
        elapsed = t1 - w_start
        if len(warm) >= cfg.warmup_min_calls and elapsed >= w_min_ns:
            return warm
        if elapsed >= w_max_ns:
            return warm


def estimate_call_ns(warm: list[int]) -> float:
    """One call's duration from warm-up timings: median of the second half (the settled part)."""
    tail = warm[len(warm) // 2 :] or warm
    return max(1.0, float(np.median(tail)))


def time_callable(
    fn: Callable[[], Any],
    config: TimingConfig | None = None,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> TimingResult:
    """Warm up, size the run from the warm-up, then time each call of `fn` (see the module doc).

    `clock` exists for tests (a fake ns clock); real runs use time.perf_counter_ns.
    """
    cfg = config or TimingConfig()

    # -- 1. warm-up -------------------------------------------------------------------------
    w_start = clock()
    warm = warm_up(fn, cfg, clock=clock)
    warmup_s = (clock() - w_start) / 1e9

    # -- 2. calibration ---------------------------------------------------------------------
    est_ns = estimate_call_ns(warm)
    n = max(cfg.min_samples, math.ceil(cfg.min_time_s * 1e9 / est_ns))
    capped_by = None
    if n > cfg.max_samples:
        n, capped_by = cfg.max_samples, "max_samples"
    n_time_cap = max(1, int(cfg.max_time_s * 1e9 / est_ns))
    if n > n_time_cap:
        n, capped_by = n_time_cap, "max_time_s"

    # -- 3. the timed loop ------------------------------------------------------------------
    buf = [0] * n
    if cfg.disable_gc:
        gc.collect()  # start with nothing to collect, so a paused collector has no backlog to hide
    count = n
    with gc_paused(cfg.disable_gc):
        start = clock()
        deadline = start + int(cfg.max_time_s * 1e9)
        for i in range(n):
            t0 = clock()
            fn()
            t1 = clock()
            buf[i] = t1 - t0
            if t1 > deadline:
                count = i + 1
                break
        end = clock()
    if cfg.disable_gc:
        gc.collect()

    samples = np.asarray(buf[:count], dtype=np.int64)
    stopped_early = count < n
    calibration = {
        "warmup_calls": len(warm),
        "warmup_s": warmup_s,
        "estimated_call_ns": est_ns,
        "planned_samples": n,
        "n_samples": int(count),
        "capped_by": "max_time_s (deadline)" if stopped_early else capped_by,
        "min_samples_met": bool(count >= cfg.min_samples),
        "total_s": (end - start) / 1e9,
        "timed_s": float(samples.sum()) / 1e9,
        "gc_disabled": bool(cfg.disable_gc),
        **timer_info(),
    }
    return TimingResult(samples_ns=samples, calibration=calibration)


def time_block(fn: Callable[[], Any], k: int, warmup_calls: int = 0, *, disable_gc: bool = True,
               clock: Callable[[], int] = time.perf_counter_ns) -> np.ndarray:
    """`warmup_calls` untimed calls, then k timed calls of `fn` (the paired suite's block).

    The same loop as `time_callable` without calibration: the caller fixes k. The untimed calls
    re-warm caches that the model timed just before (round robin) has evicted.
    """
    for _ in range(warmup_calls):
        fn()
    buf = [0] * k
    with gc_paused(disable_gc):
        for i in range(k):
            t0 = clock()
            fn()
            t1 = clock()
            buf[i] = t1 - t0
    return np.asarray(buf, dtype=np.int64)


_OVERHEAD_CACHE: dict[TimingConfig, dict[str, Any]] = {}


def measure_overhead_ns(config: TimingConfig | None = None, *, cached: bool = True) -> dict[str, Any]:
    """The harness's own cost per timed call: the same loop around a no-op (two timer reads + a call).

    Returns {"p50_ns", "p10_ns", "p90_ns", "min_ns", "n", "method"}. Cached per config within the
    process (the number is a property of the interpreter and machine, not the model).
    """
    cfg = config or OVERHEAD_CONFIG
    if cached and cfg in _OVERHEAD_CACHE:
        return dict(_OVERHEAD_CACHE[cfg])
    res = time_callable(bind(_NoopSession(), None), cfg)
    s = res.samples_ns
    p10, p50, p90 = np.percentile(s, [10, 50, 90])
    out = {
        "p50_ns": float(p50),
        "p10_ns": float(p10),
        "p90_ns": float(p90),
        "min_ns": int(s.min()),
        "n": int(s.size),
        "method": "time_callable loop around bind(session, prepared) with a no-op run_prepared "
        "(2 perf_counter_ns reads + partial + method call + store)",
    }
    _OVERHEAD_CACHE[cfg] = out
    return dict(out)
