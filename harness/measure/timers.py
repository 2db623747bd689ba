"""Where a timed call runs: in this process (`LocalTimer`) or in a worker process (`worker.WorkerTimer`).

Suites ask a timer for three things and never touch a session's threads themselves:

    timer.time(batch, timing_config)  -> TimingResult   # warm-up + calibrated run (latency, throughput)
    timer.warm_up(batch, timing_config) -> list[int]    # warm-up call durations (paired calibration)
    timer.block(batch, k, warmup_calls) -> int64 array  # k timed calls after `warmup_calls` untimed ones
    timer.overhead()                  -> dict           # the harness's per-call cost where the timing runs

`LocalTimer` is what tests and the pytest-benchmark suites use. `harness bench` times every model in
its own worker process instead (harness/measure/worker.py), so that no session's idle thread pool
shares the process, or the cores, with the session being timed.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from harness.measure.timing import TimingConfig, TimingResult, bind, measure_overhead_ns, time_block, time_callable, warm_up


class CallableTimer:
    """Times a zero-argument callable in this process (the batch is ignored): tests, custom callables."""

    def __init__(self, fn: Callable[[], Any] | None = None, *, clock: Callable[[], int] = time.perf_counter_ns):
        self.fn = fn
        self.clock = clock

    def _fn(self, batch: np.ndarray) -> Callable[[], Any]:
        return self.fn

    def time(self, batch: np.ndarray, cfg: TimingConfig) -> TimingResult:
        return time_callable(self._fn(batch), cfg, clock=self.clock)

    def warm_up(self, batch: np.ndarray, cfg: TimingConfig) -> list[int]:
        return warm_up(self._fn(batch), cfg, clock=self.clock)

    def block(self, batch: np.ndarray, k: int, warmup_calls: int = 0) -> np.ndarray:
        return time_block(self._fn(batch), k, warmup_calls, clock=self.clock)

    def overhead(self) -> dict[str, Any]:
        return measure_overhead_ns()

    def where(self) -> dict[str, Any]:
        return {"process": "in-process"}


class LocalTimer(CallableTimer):
    """Times `session.run_prepared` in this process; inputs are prepared once per batch, outside timing."""

    def __init__(self, session: Any, *, clock: Callable[[], int] = time.perf_counter_ns):
        super().__init__(None, clock=clock)
        self.session = session
        self._prepared: dict[int, tuple[np.ndarray, Any]] = {}

    def _fn(self, batch: np.ndarray) -> Callable[[], Any]:
        key = id(batch)
        hit = self._prepared.get(key)
        if hit is None or hit[0] is not batch:
            hit = (batch, bind(self.session, self.session.prepare(batch)))
            self._prepared[key] = hit
        return hit[1]
