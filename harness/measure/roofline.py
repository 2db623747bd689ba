"""Machine peak: what the fastest single-precision matrix multiply in this process achieves.

`measure_peak_gflops(threads)` times an n x n float32 GEMM (2 * n^3 flops) with each GEMM the
harness's models can use, at `threads` threads, best of a few runs each after a warm-up:

    numpy        numpy.matmul on its BLAS (OpenBLAS), limited through threadpoolctl
    torch        torch.matmul at torch.set_num_threads(threads)
    onnxruntime  a one-node ONNX MatMul (B a constant initializer, as a model's weights are)
                 in an InferenceSession with intra_op_num_threads = threads

The libraries do not pick the same kernels: a numpy wheel's OpenBLAS may be pinned to AVX2
(Haswell) kernels on an AVX-512 CPU while ONNX Runtime's MLAS uses AVX-512, so a peak from one
library alone can sit below what a model reaches through another (a "% of peak" above 100).
`peak_gflops` is the best of the three, `peak_source` names it, and `peak_by_source` keeps each
figure (also `<source>_gflops`, the older key names).

Beside the measured peak, `theoretical_peak_gflops` = cores used x (vector bits / 32) float32 lanes
x 2 (an FMA is two flops) x FMA units per core (assumed 2, recorded in `fma_units_assumed`) x clock
GHz, from harness.measure.environment (CPU flags and clock); None when the clock or flags are
unknown. It is an upper bound by construction, and only as good as its inputs: some CPUs run
512-bit FMAs as two 256-bit halves or at a lower clock, and a VM often reports the nominal clock,
not the turbo one. `theoretical_peak_method` says what went in.

Int8 models are judged against an int8 peak, measured the same way: `int8_peak_gops` from ONNX
Runtime's MatMulInteger (the MLAS QGEMM kernels its quantized operators use, VNNI or AMX where
present), `int8_peak_source` naming it.

Achieved GFLOP/s in the latency suite (2 * MACs * batch / p50) divided by the measured peak is how
close a model gets to what the machine can do. Timing is bounded by `budget_s` (about 3 s, split
evenly between the sources; library set-up such as importing torch comes on top).
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Callable, Iterator

import numpy as np

from harness.errors import OptionError

SOURCES = ("numpy", "torch", "onnxruntime")
FMA_UNITS_ASSUMED = 2


def _best_gflops(fn: Callable[[], Any], flops: float, max_runs: int, deadline: float) -> tuple[float | None, int]:
    fn()  # warm-up: thread pool start, page faults on the output, weight pre-packing
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


@contextlib.contextmanager
def _numpy_gemm(a: np.ndarray, b: np.ndarray, threads: int, out: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    c = np.empty((a.shape[0], b.shape[1]), dtype=np.float32)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        out["numpy_threads_limited"] = False
        yield lambda: np.matmul(a, b, out=c)
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        out["numpy_threads_limited"] = True
        yield lambda: np.matmul(a, b, out=c)


@contextlib.contextmanager
def _torch_gemm(a: np.ndarray, b: np.ndarray, threads: int, out: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tc = torch.empty((a.shape[0], b.shape[1]), dtype=torch.float32)
        yield lambda: torch.matmul(ta, tb, out=tc)
    finally:
        torch.set_num_threads(prev)


def matmul_model_bytes(b: np.ndarray, m: int | None = None) -> bytes:
    """A one-node ONNX model Y = A @ B, A a float32 input [m, k] (m None: dynamic), B a constant."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, n = b.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["Y"])], "peak_matmul",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m if m is not None else "m", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m if m is not None else "m", n])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(b, dtype=np.float32), name="B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="kd-harness")
    model.ir_version = 8  # opset 13 era: loads in every ONNX Runtime the harness supports
    onnx.checker.check_model(model)
    return model.SerializeToString()


@contextlib.contextmanager
def _ort_gemm(a: np.ndarray, b: np.ndarray, threads: int, out: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(matmul_model_bytes(b, a.shape[0]), so, providers=["CPUExecutionProvider"])
    feed = {"A": a}
    try:
        yield lambda: sess.run(None, feed)
    finally:
        sess = None  # noqa: F841 - drops the session (and its thread pool) before the next source is timed


@contextlib.contextmanager
def _ov_gemm(a: np.ndarray, b: np.ndarray, threads: int, out: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    """OpenVINO's own MatMul (constant B), compiled with the backend's settings: a model OpenVINO runs is
    judged against the kernels OpenVINO has, which can be faster than the BLAS numpy and torch use."""
    import tempfile

    from harness.backends.base import BackendOptions
    from harness.backends.openvino_backend import _openvino, compile_config

    ov = _openvino()
    with tempfile.TemporaryDirectory(prefix="kdh-peak-") as tmp:
        path = f"{tmp}/matmul.onnx"
        with open(path, "wb") as f:
            f.write(matmul_model_bytes(b, a.shape[0]))
        compiled = ov.Core().compile_model(path, "CPU", compile_config(BackendOptions(threads=threads)))
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(a))
    yield request.infer


def matmul_integer_model_bytes(b: np.ndarray) -> bytes:
    """A one-node ONNX model Y = MatMulInteger(A, B): A a uint8 input [m, k], B an int8 constant (a
    quantized model's weights), int32 out; the int8 GEMM that ONNX Runtime's quantized operators
    (QLinearConv, QLinearMatMul, the QDQ graphs of int8 variants) run on (MLAS QGEMM: VNNI or AMX
    where the CPU has them)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, n = b.shape
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "peak_matmul_integer",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, ["m", k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, ["m", n])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(b, dtype=np.int8), name="B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="kd-harness")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def measure_int8_peak(threads: int, n: int = 2048, max_runs: int = 5, budget_s: float = 1.0) -> dict[str, Any]:
    """The int8 peak: ONNX Runtime's MatMulInteger on an n x n x n problem (2*n^3 integer ops), best of a
    few runs; what an int8 variant's "% of peak" is judged against (an fp32 peak would put a model on
    VNNI or AMX far above 100%). {"int8_peak_gops", "int8_peak_source", "int8_runs"} or an error."""
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (n, n), dtype=np.uint8)
    b = rng.integers(-128, 128, (n, n), dtype=np.int8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(matmul_integer_model_bytes(b), so, providers=["CPUExecutionProvider"])
        g, runs = _best_gflops(lambda: sess.run(None, {"A": a}), 2.0 * n**3, max_runs,
                               time.perf_counter() + budget_s)
    except Exception as exc:  # noqa: BLE001 - a peak estimate must not sink a bench
        return {"int8_peak_gops": None, "int8_error": f"{type(exc).__name__}: {exc}"}
    finally:
        sess = None  # noqa: F841
    return {"int8_peak_gops": g, "int8_runs": runs,
            "int8_peak_source": f"onnxruntime MatMulInteger (uint8 x int8 -> int32), {n}x{n}, {threads} thread(s)"}


# name -> context manager that sets the library up (imports, thread limits, session) and yields
# the GEMM call; set-up time is not charged to the timing budget
GEMMS: dict[str, Callable[..., contextlib.AbstractContextManager]] = {
    "numpy": _numpy_gemm, "torch": _torch_gemm, "onnxruntime": _ort_gemm, "openvino": _ov_gemm}


def theoretical_peak(threads: int, vector_bits: int | None, mhz: float | None,
                     fma_units: int = FMA_UNITS_ASSUMED, cores_available: int | None = None,
                     mhz_source: str | None = None) -> dict[str, Any]:
    """cores x (vector_bits / 32) x 2 x fma_units x GHz, as {"theoretical_peak_gflops", "..._method", ...}."""
    cores = threads if cores_available is None else max(1, min(threads, cores_available))
    out: dict[str, Any] = {"theoretical_peak_gflops": None, "fma_units_assumed": fma_units,
                           "theoretical_cores": cores, "vector_bits": vector_bits, "clock_mhz": mhz}
    if not vector_bits or not mhz or mhz <= 0:
        missing = [name for name, v in (("vector width (CPU flags)", vector_bits), ("clock", mhz)) if not v]
        out["theoretical_peak_method"] = "unknown: no " + " and no ".join(missing)
        return out
    lanes = vector_bits // 32
    ghz = mhz / 1000.0
    out["theoretical_peak_gflops"] = cores * lanes * 2 * fma_units * ghz
    out["theoretical_peak_method"] = (
        f"{cores} core(s) x {lanes} float32 lanes ({vector_bits}-bit vectors) x 2 flops per FMA x "
        f"{fma_units} FMA units per core (assumed) x {ghz:.3g} GHz"
        + (f" ({mhz_source})" if mhz_source else "")
        + "; an upper bound: CPUs that split 512-bit FMAs or lower the clock under AVX-512 reach less, "
        "a turbo clock above the reported one reaches more"
    )
    return out


def _cpu_facts() -> tuple[int | None, float | None, str | None, int | None]:
    from harness.measure import environment

    isa = environment._safe(environment._cpu_isa)
    mhz, src = environment._safe(environment._cpu_clock) or (None, None)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    return environment.vector_bits(isa), mhz, src, cores


def measure_peak_gflops(threads: int = 1, n: int = 2048, max_runs: int = 5, budget_s: float = 3.0,
                        sources: tuple[str, ...] = SOURCES, int8: bool = True) -> dict[str, Any]:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise OptionError(f"threads must be a positive integer, got {threads!r}")
    if not isinstance(n, int) or n < 16:
        raise OptionError(f"GEMM size must be an integer >= 16, got {n!r}")
    unknown = [s for s in sources if s not in GEMMS]
    if unknown or not sources:
        raise OptionError(f"unknown GEMM source(s) {unknown}; choose from {', '.join(GEMMS)}")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n**3
    start = time.perf_counter()
    out: dict[str, Any] = {
        "threads": threads,
        "n": n,
        "flops_per_run": flops,
        "method": f"best of up to {max_runs} timed {n}x{n} float32 GEMMs (2*n^3 flops) after one warm-up, "
        f"per source ({', '.join(sources)}): numpy.matmul under threadpoolctl limits, torch.matmul at "
        "torch.set_num_threads(threads), ONNX Runtime MatMul (constant B) at intra_op_num_threads=threads"
        + ("; OpenVINO MatMul (constant B) compiled with the openvino backend's settings" if "openvino" in sources
           else "") + "; the peak is the fastest source",
    }
    by_source: dict[str, float | None] = {}
    for src in sources:
        try:
            with GEMMS[src](a, b, threads, out) as fn:
                # an equal share of the timing budget per source, at least one timed run each
                deadline = time.perf_counter() + budget_s / len(sources)
                g, out[f"{src}_runs"] = _best_gflops(fn, flops, max_runs, deadline)
        except Exception as exc:  # noqa: BLE001 - a peak estimate must not sink a bench
            g = None
            out[f"{src}_error"] = f"{type(exc).__name__}: {exc}"
        out[f"{src}_gflops"] = g
        by_source[src] = g
    out["peak_by_source"] = by_source
    found = {k: v for k, v in by_source.items() if v is not None}
    if found:
        best = max(found, key=found.get)
        out["peak_gflops"], out["peak_source"] = found[best], best
    else:
        out["peak_gflops"], out["peak_source"] = None, None
    try:
        bits, mhz, mhz_src, cores = _cpu_facts()
    except Exception:  # noqa: BLE001
        bits, mhz, mhz_src, cores = None, None, None, None
    out.update(theoretical_peak(threads, bits, mhz, cores_available=cores, mhz_source=mhz_src))
    if int8:
        out.update(measure_int8_peak(threads, n=n, max_runs=max_runs))
    out["elapsed_s"] = time.perf_counter() - start
    return out
