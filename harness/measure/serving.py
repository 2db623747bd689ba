"""The serving suite: each model under MLPerf LoadGen's SingleStream, Offline and Server scenarios,
with the system under test's dynamic batching off and on (harness/measure/loadgen_run.py).

Per (model, backend, batching) one `ServingMetrics`: SingleStream p90/p99, Offline samples/s, and the
Server scenario's maximum QPS whose p99 stays under the latency bound, found the way MLPerf
submitters find it: LoadGen runs at a sequence of target QPS, bisecting between the highest VALID and
the lowest INVALID one, starting at the Offline rate (no arrival rate above what the model completes
with everything queued can hold a bound).

The bound (`latency_bound_ms`) is one per backend, the same for the teacher and its students, so
their max-QPS ratio is a like-for-like figure. Default: BOUND_MULTIPLE x the fp32 teacher's LoadGen
SingleStream p99 on that backend. Why 10: Poisson arrivals to one server with a fixed service time
(M/D/1) have a p99 time in system of 7.4 service times at 70% load and 11.3 at 80% (simulated,
docs/method.md), so 10x a p99 service time lets a steady teacher run near 75-80% load, where serving
teams plan capacity; MLPerf's own Server bounds are of that order against single-stream latencies.

Runs happen in this process one model at a time, after the timed suites, with nothing else running.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harness.measure.loadgen_run import Batching, RunResult, loadgen_version, run_scenario
from harness.metrics import ServingMetrics
from harness.results import Measurement
from harness.roles import REFERENCE

log = logging.getLogger(__name__)

BOUND_MULTIPLE = 10.0


@dataclass(frozen=True)
class ServingConfig:
    log_root: Path  # LoadGen's logs: <log_root>/<task>/<role>/<backend>/<batching>/<scenario>[-<qps>]
    latency_bound_ms: float | None = None  # None: BOUND_MULTIPLE x the teacher's SingleStream p99
    max_batch: int = 8
    max_wait_ms: float | None = None  # None: the model's own SingleStream p50 (waiting never costs a call)
    min_duration_ms: int = 1000
    min_query_count: int = 1024
    search_steps: int = 7
    repeats: int = 1  # Server searches per model and batching setting; max QPS is their median
    tolerance: float = 0.05  # stop bisecting when (lowest INVALID - highest VALID) / highest VALID <= this
    batching: tuple[bool, ...] = (False, True)


@dataclass
class Search:
    max_qps: float | None
    runs: list[dict[str, Any]]
    resolution: float | None
    reason: str | None
    repeats: list[float] | None = None


def search_max_qps(run_at: Callable[[float], RunResult], upper: float, steps: int, tolerance: float) -> Search:
    """Bisection on the Server scenario's target QPS: the first run at `upper`; VALID there ends it,
    otherwise halve until a VALID run, then bisect between the highest VALID and the lowest INVALID."""
    runs: list[dict[str, Any]] = []
    lo = hi = None
    q = upper
    for _ in range(max(1, steps)):
        r = run_at(q)
        runs.append({"target_qps": q, "valid": r.valid, "p99_ms": r.latency_ms(99), "completed_qps": r.rate(),
                     "reason": r.reason})
        if r.valid:
            lo = q if lo is None else max(lo, q)
        else:
            hi = q if hi is None else min(hi, q)
        if lo is None:
            q = hi / 2
        elif hi is None:
            break  # VALID at the Offline rate itself
        elif (hi - lo) / lo <= tolerance:
            break
        else:
            q = (lo + hi) / 2
    resolution = None if lo is None or hi is None else (hi - lo) / lo
    reason = None
    if lo is None:
        last = runs[-1]
        reason = (f"no Server run met the bound down to {last['target_qps']:.4g} QPS "
                  f"(LoadGen: {last['reason'] or 'INVALID'})")
    return Search(lo, runs, resolution, reason)


def combine(searches: list[Search]) -> Search | None:
    """Repeated searches as one: the median max QPS (None when any search found none), every run, and
    the repeats themselves for the spread."""
    if not searches:
        return None
    if len(searches) == 1:
        return searches[0]
    found = [s.max_qps for s in searches]
    if any(q is None for q in found):
        first = next(s for s in searches if s.max_qps is None)
        return Search(None, [r for s in searches for r in s.runs], None, first.reason)
    med = float(np.median(found))
    res = [s.resolution for s in searches if s.resolution is not None]
    return Search(med, [r for s in searches for r in s.runs], max(res) if res else None, None, found)


def _slug(x: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in x)


Bound = tuple[float, str]  # (p99 bound in ms, where it came from)


SS_LOOP_CALLS = 1024


def _loop_ms(run_one: Callable[[int], None], n: int, calls: int) -> tuple[float, float]:
    """(p90, p50) in ms of `calls` back-to-back calls over the samples, timed one by one."""
    clock, times = time.perf_counter, np.empty(calls)
    for k in range(calls):
        t0 = clock()
        run_one(k % n)
        times[k] = clock() - t0
    return float(np.percentile(times, 90)) * 1e3, float(np.percentile(times, 50)) * 1e3


def serve_model(session: Any, samples: np.ndarray, cfg: ServingConfig, where: Path,
                bound_of: Callable[[RunResult], Bound | None], fixed_batch: int | None = None,
                ) -> tuple[RunResult, Bound | None, list[tuple[Batching, RunResult, Search | None]]]:
    """SingleStream once, then per batching setting Offline and the Server search under the bound that
    `bound_of(singlestream_result)` gives (None: no Server search)."""
    n = len(samples)

    def run_batch(idx: np.ndarray) -> None:
        session.run(samples[idx])

    for b in range(1, (1 if fixed_batch else cfg.max_batch) + 1):  # compile/warm every batch shape first
        session.run(samples[np.arange(b) % n])
    # SingleStream feeds each sample prepared ahead (as the latency suite feeds its batch), so LoadGen's
    # p90 and the latency suite's measure the same call; its expected latency, from a short loop, sizes
    # the queries LoadGen pre-generates (too few and the run ends before min_duration: INVALID)
    prepared = [session.prepare(samples[i:i + 1]) for i in range(n)]

    def run_one(i: int) -> None:
        session.run_prepared(prepared[i])

    common = {"min_duration_ms": cfg.min_duration_ms, "min_query_count": cfg.min_query_count}
    # a plain loop over the same calls just before and just after the run: the latency the model has in
    # this process at this time, and (before vs after) how far the machine's noise moves a p90
    before = _loop_ms(run_one, n, SS_LOOP_CALLS)
    ss = run_scenario("SingleStream", run_batch, n, where / "singlestream", run_one=run_one, call_times=[],
                      expected_latency_ms=before[1], **common)
    ss.loop_p90_ms = [before[0], _loop_ms(run_one, n, SS_LOOP_CALLS)[0]]
    prepared.clear()  # the per-sample buffers are for SingleStream only
    p50 = ss.latency_ms(50) or 1.0
    bound = bound_of(ss)
    bound_ms = bound[0] if bound else None
    out = []
    for on in cfg.batching:
        wait_ms = (cfg.max_wait_ms if cfg.max_wait_ms is not None else p50) if on else 0.0
        bat = Batching(cfg.max_batch if on else 1, wait_ms / 1000.0)
        sub = where / ("batching" if on else "no-batching")
        off = run_scenario("Offline", run_batch, n, sub / "offline", bat, target_qps=1000.0 / p50 * bat.max_batch,
                           **common)
        searches = []
        if bound_ms is not None and off.rate():
            for k in range(cfg.repeats):
                tag = f"-r{k + 1}" if cfg.repeats > 1 else ""
                searches.append(search_max_qps(
                    lambda q, tag=tag: run_scenario("Server", run_batch, n, sub / f"server{tag}-{q:.0f}", bat,
                                                    target_qps=q, latency_bound_ms=bound_ms, **common),
                    off.rate(), cfg.search_steps, cfg.tolerance))
        out.append((bat, off, combine(searches)))
    return ss, bound, out


def measure(handles: Sequence[Any], samples: np.ndarray, cfg: ServingConfig, fixed_batch: int | None = None,
            bounds: dict[str, Bound] | None = None) -> list[Measurement]:
    """`handles`: SessionHandles of one task. `bounds` (backend -> bound) carries the teacher's bound
    to later calls for its students; the teacher must come first on each backend."""
    out: list[Measurement] = []
    bounds = {} if bounds is None else bounds
    if cfg.latency_bound_ms is not None:
        for h in handles:
            bounds[h.backend] = (cfg.latency_bound_ms, "--latency-bound-ms")
    ordered = sorted(handles, key=lambda h: (h.backend, h.role != REFERENCE))
    for h in ordered:
        where = cfg.log_root / _slug(h.task or "task") / _slug(h.role) / _slug(h.backend)
        log.info(f"{h.task}: serving {h.role} on {h.backend} under LoadGen")

        def bound_of(ss: RunResult, h: Any = h) -> Bound | None:
            if h.backend not in bounds and h.role == REFERENCE and ss.latency_ms(99):
                bounds[h.backend] = (BOUND_MULTIPLE * ss.latency_ms(99),
                                     f"{BOUND_MULTIPLE:g} x the teacher's SingleStream p99")
            return bounds.get(h.backend)

        ss, bound, per = serve_model(h.session, samples, cfg, where, bound_of, fixed_batch)
        for bat, off, search in per:
            reason = search.reason if search else ("no latency bound: the teacher's SingleStream run gave no p99"
                                                   if bound is None else f"Offline run gave no rate ({off.reason})")
            m = ServingMetrics(
                batching=bat.on, max_batch=bat.max_batch, max_wait_ms=bat.max_wait_s * 1000.0,
                latency_bound_ms=bound[0] if bound else None, latency_bound_from=bound[1] if bound else None,
                singlestream_p90_ms=ss.latency_ms(90), singlestream_p99_ms=ss.latency_ms(99),
                singlestream_p50_ms=ss.latency_ms(50), singlestream_valid=ss.valid,
                singlestream_call_p50_ms=ss.call_ms.get("p50"), singlestream_call_p90_ms=ss.call_ms.get("p90"),
                singlestream_loop_p90_ms=ss.loop_p90_ms, offline_sps=off.rate(), offline_valid=off.valid,
                max_qps=search.max_qps if search else None,
                max_qps_p99_ms=next((r["p99_ms"] for r in (search.runs if search else [])
                                     if search.max_qps is not None and r["target_qps"] == search.max_qps), None)
                if not (search and search.repeats) else None,
                server_runs=search.runs if search else [], search_resolution=search.resolution if search else None,
                max_qps_repeats=search.repeats if search else None,
                max_qps_spread=(max(search.repeats) - min(search.repeats)) / search.max_qps
                if search and search.repeats else None,
                reason=reason, log_dir=str(where), loadgen_version=loadgen_version(),
                min_duration_ms=cfg.min_duration_ms, min_query_count=cfg.min_query_count)
            out.append(Measurement(task=h.task, model=h.role, backend=h.backend, suite="serving",
                                   batch_size=bat.max_batch, threads=int(h.options.threads), metrics=m,
                                   options=h.options.key()))
    return out


__all__ = ["BOUND_MULTIPLE", "Search", "ServingConfig", "measure", "search_max_qps", "serve_model"]
