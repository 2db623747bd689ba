"""Machine peak: what a large single-precision matrix multiply achieves on this CPU.

`measure_peak_gflops(threads)` times an n x n float32 GEMM (2 * n^3 flops) with torch (at
`threads` intra-op threads) and with numpy's BLAS (limited to `threads` through threadpoolctl
when available), best of a few runs each, and reports the better of the two as the practical
peak. Achieved GFLOP/s in the latency suite (2 * MACs * batch / p50) divided by this peak is
how close a model gets to what the machine can do. Bounded by `budget_s` (about 2 s).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from harness.errors import OptionError


def _best_gflops(fn: Callable[[], Any], flops: float, max_runs: int, deadline: float) -> tuple[float | None, int]:
    fn()  # warm-up: thread pool start, page faults on the output
    best = None
    runs = 0
    while runs < max_runs and (runs == 0 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        runs += 1
        if dt > 0:
            g = flops / dt / 1e9
            best = g if best is None else max(best, g)
    return best, runs


def measure_peak_gflops(threads: int = 1, n: int = 2048, max_runs: int = 5, budget_s: float = 2.0) -> dict[str, Any]:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise OptionError(f"threads must be a positive integer, got {threads!r}")
    if not isinstance(n, int) or n < 16:
        raise OptionError(f"GEMM size must be an integer >= 16, got {n!r}")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n**3
    start = time.perf_counter()
    half = start + budget_s / 2
    out: dict[str, Any] = {
        "threads": threads,
        "n": n,
        "flops_per_run": flops,
        "method": f"best of up to {max_runs} timed {n}x{n} float32 GEMMs (2*n^3 flops) after one warm-up, "
        "torch.matmul at torch.set_num_threads(threads) and numpy.matmul under threadpoolctl limits",
    }

    # torch
    try:
        import torch

        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            tc = torch.empty((n, n), dtype=torch.float32)
            g, runs = _best_gflops(lambda: torch.matmul(ta, tb, out=tc), flops, max_runs, half)
        finally:
            torch.set_num_threads(prev)
        out["torch_gflops"], out["torch_runs"] = g, runs
    except Exception as exc:  # noqa: BLE001 - a peak estimate must not sink a bench
        out["torch_gflops"], out["torch_error"] = None, f"{type(exc).__name__}: {exc}"

    # numpy
    try:
        c = np.empty((n, n), dtype=np.float32)
        deadline = max(time.perf_counter(), start + budget_s)
        try:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=threads, user_api="blas"):
                g, runs = _best_gflops(lambda: np.matmul(a, b, out=c), flops, max_runs, deadline)
            out["numpy_threads_limited"] = True
        except ImportError:
            g, runs = _best_gflops(lambda: np.matmul(a, b, out=c), flops, max_runs, deadline)
            out["numpy_threads_limited"] = False
        out["numpy_gflops"], out["numpy_runs"] = g, runs
    except Exception as exc:  # noqa: BLE001
        out["numpy_gflops"], out["numpy_error"] = None, f"{type(exc).__name__}: {exc}"

    candidates = {k: out.get(f"{k}_gflops") for k in ("torch", "numpy")}
    candidates = {k: v for k, v in candidates.items() if v is not None}
    if candidates:
        lib = max(candidates, key=candidates.get)
        out["peak_gflops"], out["peak_source"] = candidates[lib], lib
    else:
        out["peak_gflops"], out["peak_source"] = None, None
    out["elapsed_s"] = time.perf_counter() - start
    return out
