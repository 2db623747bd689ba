"""One MLPerf LoadGen run against a model: the system under test (SUT), the query sample library
(QSL), the run, and what LoadGen's summary log says of it.

The SUT is what a serving team would build on one CPU box: LoadGen's queries go into a queue; one
worker thread takes the first waiting sample and, with dynamic batching on, every further sample that
arrives within `max_wait_s` up to `max_batch`, runs them as one batch on the model's session (its own
threads as configured) and completes them. With batching off it runs one sample per call. SingleStream
(one query at a time, the next only after the last completed) runs the call inside LoadGen's issue
callback: a queue hand-off there would only add a thread wake-up to every latency.

Validity is LoadGen's own: its summary log says "Result is : VALID" or INVALID, and the INVALID lines
("Performance constraints satisfied : NO", "Min queries satisfied : NO", ...) become the reason.
"""
from __future__ import annotations

import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.errors import MissingPackageError

SCENARIOS = ("SingleStream", "Offline", "Server")


def loadgen() -> Any:
    try:
        import mlperf_loadgen
    except ImportError:
        raise MissingPackageError("the serving suite needs MLPerf LoadGen: pip install -e '.[serving]'") from None
    return mlperf_loadgen


@dataclass(frozen=True)
class Batching:
    """The SUT's dynamic batching: off is max_batch 1."""

    max_batch: int = 1
    max_wait_s: float = 0.0

    @property
    def on(self) -> bool:
        return self.max_batch > 1


@dataclass
class RunResult:
    scenario: str
    valid: bool
    reason: str | None  # the INVALID lines of the summary, joined; None when VALID
    stats: dict[str, str] = field(default_factory=dict)  # every "key : value" line of the summary
    log_dir: str = ""
    call_ms: dict[str, float] = field(default_factory=dict)  # SingleStream: the model calls timed inside the SUT
    loop_p90_ms: list[float] | None = None  # SingleStream: a plain loop's p90 just before and after the run


    def latency_ms(self, pct: float) -> float | None:
        v = self.stats.get(f"{pct:.2f} percentile latency (ns)")
        return float(v) / 1e6 if v is not None else None

    def rate(self) -> float | None:
        """Samples/s: the Offline figure, or the Server run's completed rate."""
        for k in ("Samples per second", "Completed samples per second"):
            if k in self.stats:
                return float(self.stats[k])
        return None


def parse_summary(text: str) -> tuple[bool, str | None, dict[str, str]]:
    """(valid, reason, stats) from mlperf_log_summary.txt."""
    stats: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([^:*][^:]*?)\s*:\s*(.+?)\s*$", line)
        if m:
            stats.setdefault(m.group(1), m.group(2))
    result = stats.get("Result is")
    if result is None:
        return False, "LoadGen wrote no result line", stats
    if result.upper() == "VALID":
        return True, None, stats
    failed = [k for k, v in stats.items() if k.endswith("satisfied") and v.strip().upper().startswith("NO")]
    hints = [ln.strip(" *") for ln in text.splitlines() if ln.strip().startswith("* ") and "successful" not in ln]
    reason = "; ".join([f"{k}: NO" for k in failed] + hints[:2]) or f"Result is {result}"
    return False, reason, stats


class BatchingSUT:
    """The queue and its worker thread. `run_batch(indices)` runs the model on those QSL samples."""

    def __init__(self, lg: Any, run_batch: Callable[[np.ndarray], None], batching: Batching):
        self.lg, self.run_batch, self.batching = lg, run_batch, batching
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def issue(self, samples: list) -> None:
        for s in samples:
            self.q.put(s)

    def stop(self) -> None:
        self.q.put(None)
        self.thread.join(timeout=30)

    def _work(self) -> None:
        lg, cap, wait = self.lg, self.batching.max_batch, self.batching.max_wait_s
        while True:
            first = self.q.get()
            if first is None:
                return
            batch = [first]
            deadline = time.perf_counter() + wait
            while len(batch) < cap:
                try:  # what is already queued joins at once; then wait for more until the deadline
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    try:
                        nxt = self.q.get(timeout=left)
                    except queue.Empty:
                        break
                if nxt is None:
                    self.q.put(None)
                    break
                batch.append(nxt)
            try:
                self.run_batch(np.fromiter((s.index for s in batch), dtype=np.int64, count=len(batch)))
            except BaseException as exc:  # noqa: BLE001 - kept for the caller; LoadGen still gets its answers
                self.error = self.error or exc
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in batch])


def run_scenario(scenario: str, run_batch: Callable[[np.ndarray], None], n_samples: int, out_dir: Path,
                 batching: Batching = Batching(), *, target_qps: float | None = None,
                 latency_bound_ms: float | None = None, expected_latency_ms: float | None = None,
                 min_duration_ms: int = 1000, min_query_count: int = 1024,
                 run_one: Callable[[int], None] | None = None, call_times: list[float] | None = None) -> RunResult:
    """One LoadGen run (PerformanceOnly) of `scenario`; its logs stay in `out_dir`. SingleStream calls
    `run_one(sample index)` when given (a sample prepared ahead, as a latency loop feeds it), else
    `run_batch` with one index; with `call_times` it also appends each model call's own seconds, timed
    inside the SUT, so LoadGen's latency splits into the call and the path around it."""
    lg = loadgen()
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    st = lg.TestSettings()
    st.scenario = getattr(lg.TestScenario, scenario)
    st.mode = lg.TestMode.PerformanceOnly
    st.min_duration_ms = int(min_duration_ms)
    st.min_query_count = int(min_query_count)
    if scenario == "Server":
        st.server_target_qps = float(target_qps)
        st.server_target_latency_ns = int(latency_bound_ms * 1e6)
    elif scenario == "Offline":
        st.offline_expected_qps = float(target_qps)
    elif expected_latency_ms:
        st.single_stream_expected_latency_ns = max(1, int(expected_latency_ms * 1e6))
    ls = lg.LogSettings()
    ls.log_output.outdir = str(out_dir)
    ls.enable_trace = False

    sut_obj = None
    if scenario == "SingleStream":
        one = run_one or (lambda i: run_batch(np.array([i], dtype=np.int64)))

        clock = time.perf_counter

        def issue(samples):
            for s in samples:
                if call_times is None:
                    one(s.index)
                else:
                    t0 = clock()
                    one(s.index)
                    call_times.append(clock() - t0)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])
    else:
        sut_obj = BatchingSUT(lg, run_batch, batching)
        issue = sut_obj.issue
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(n_samples, n_samples, lambda s: None, lambda s: None)
    try:
        lg.StartTestWithLogSettings(sut, qsl, st, ls)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        if sut_obj is not None:
            sut_obj.stop()
    if sut_obj is not None and sut_obj.error is not None:
        from harness.errors import first_line

        raise RuntimeError(f"the model failed under LoadGen: {first_line(sut_obj.error)}")
    summary = out_dir / "mlperf_log_summary.txt"
    for junk in ("mlperf_log_trace.json", "mlperf_log_accuracy.json"):  # empty in PerformanceOnly runs
        p = out_dir / junk
        if p.exists() and p.stat().st_size < 64:
            os.unlink(p)
    valid, reason, stats = parse_summary(summary.read_text() if summary.exists() else "")
    calls = {f"p{q}": float(np.percentile(call_times, q)) * 1e3 for q in (50, 90, 99)} if call_times else {}
    return RunResult(scenario, valid, reason, stats, str(out_dir), calls)


def loadgen_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("mlcommons-loadgen")
    except Exception:  # noqa: BLE001
        return None


__all__ = ["Batching", "BatchingSUT", "RunResult", "SCENARIOS", "loadgen", "loadgen_version", "parse_summary",
           "run_scenario"]
