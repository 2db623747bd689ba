"""Typed metrics: one dataclass per suite, read by attribute everywhere outside the suites.

A suite builds its metrics object; `Measurement.metrics` holds it; the results file stores it under
the same JSON field names as before (`to_dict` / `from_dict` round-trip them). Keys a class does not
declare (written by a newer harness, or by a user's own suite) survive a load/save in `extra`.

Reading is strict about *names* (an unknown attribute is an AttributeError, not a silent None) and
lenient about *values*: a field that is missing, null, NaN or of the wrong type reads as None, so a
partial or older file still reports. Why: the old dict reads (`metrics.get("p50_ms")`) hid two typos
for months; an attribute typo now fails in the first test that touches it.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Mapping


# -- value coercers (lenient: a bad value is None, never an exception) ---------------------------
def as_float(v: Any) -> float | None:
    """A finite float, or None (bools, strings, NaN and inf are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):  # numpy scalars are Real too
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def as_int(v: Any) -> int | None:
    f = as_float(v)
    return int(f) if f is not None and f == int(f) else None


def _listlike(v: Any) -> Any:
    return v.tolist() if hasattr(v, "tolist") and not isinstance(v, (int, float)) else v  # numpy arrays


def as_pair(v: Any) -> tuple[float, float] | None:
    """A (lo, hi) interval of finite floats, or None."""
    v = _listlike(v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        lo, hi = as_float(v[0]), as_float(v[1])
        if lo is not None and hi is not None:
            return (lo, hi)
    return None


def as_bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def as_floats(v: Any) -> list[float] | None:
    v = _listlike(v)
    if not isinstance(v, (list, tuple)):
        return None
    out = [as_float(x) for x in v]
    return None if any(x is None for x in out) else out


def as_ints(v: Any) -> list[int] | None:
    v = _listlike(v)
    if not isinstance(v, (list, tuple)):
        return None
    out = [as_int(x) for x in v]
    return None if any(x is None for x in out) else out


def as_any(v: Any) -> Any:
    return v


def _finite_everywhere(v: Any) -> bool:
    """No NaN or inf anywhere inside (what strict JSON can write)."""
    v = _listlike(v)
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (list, tuple)):
        return all(_finite_everywhere(x) for x in v)
    if isinstance(v, dict):
        return all(_finite_everywhere(x) for x in v.values())
    return True


def metric_field(coerce: Callable[[Any], Any] = as_float) -> Any:
    """A metric: None until measured; `coerce` turns a stored JSON value into it (None when unfit)."""
    return field(default=None, metadata={"coerce": coerce})


_f = metric_field


# -- base -----------------------------------------------------------------------------------------
@dataclass
class Metrics:
    """Base of every suite's metrics. `extra` keeps undeclared keys for a lossless round trip."""

    suite: ClassVar[str] = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name != "extra")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], strict: bool = False) -> "Metrics":
        """Parse a JSON object. `strict` (what suites use when they build one): an undeclared key
        is a programming error, not an extra."""
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in d.items():
            f = known.get(k)
            if f is None:
                if strict:
                    raise TypeError(f"{cls.__name__} has no field {k!r}")
                extra[k] = v
                continue
            kwargs[k] = f.metadata.get("coerce", as_any)(v)
            if kwargs[k] is None and v is not None and _finite_everywhere(v):
                # a value of the wrong type: a bug in a suite (strict), or kept as written so that
                # loading and saving a file never loses it (NaN and inf are dropped: no strict JSON for them)
                if strict:
                    raise TypeError(f"{cls.__name__}.{k} cannot hold {v!r}")
                extra[k] = v
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: declared fields that are set (tuples as lists), then `extra`."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            v = getattr(self, name)
            if v is None:
                continue
            out[name] = list(v) if isinstance(v, tuple) else v
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def numbers(self) -> dict[str, float]:
        """Every scalar numeric figure (declared or extra), for history tables and flat frames."""
        return {k: float(v) for k, v in self.to_dict().items()
                if not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)}

    def intervals(self) -> dict[str, tuple[float, float]]:
        """Every (lo, hi) interval, for flat frames (`<name>_lo`, `<name>_hi`)."""
        out = {}
        for k, v in self.to_dict().items():
            p = as_pair(v)
            if p is not None:
                out[k] = p
        return out


# -- timing ---------------------------------------------------------------------------------------
@dataclass
class TimingMetrics(Metrics):
    """A per-call timing distribution (stats.summarize_ns), merged over worker processes."""

    n: int | None = _f(as_int)
    p10_ms: float | None = _f()
    p50_ms: float | None = _f()
    p90_ms: float | None = _f()
    p95_ms: float | None = _f()
    p99_ms: float | None = _f()
    p999_ms: float | None = _f()
    q1_ms: float | None = _f()  # pytest-benchmark input only
    q3_ms: float | None = _f()
    mean_ms: float | None = _f()
    std_ms: float | None = _f()
    iqr_ms: float | None = _f()
    min_ms: float | None = _f()
    max_ms: float | None = _f()
    cv: float | None = _f()
    mad_ms: float | None = _f()
    median_ci95_ms: tuple[float, float] | None = _f(as_pair)
    median_ci_method: str | None = _f(as_str)
    unstable: bool | None = _f(as_bool)
    rounds: int | None = _f(as_int)
    iterations: int | None = _f(as_int)  # pytest-benchmark input only
    # worker processes (harness.measure.merge)
    processes: int | None = _f(as_int)
    process_p50_ms: list[float] | None = _f(as_floats)
    between_process_cv: float | None = _f()
    workers: list | None = _f(as_any)
    worker: dict | None = _f(as_any)  # a raw per-process run's worker, before the merge
    calibration: dict | None = _f(as_any)
    harness_overhead: dict | None = _f(as_any)
    harness_overhead_p50_ns: float | None = _f()


@dataclass
class LatencyMetrics(TimingMetrics):
    suite: ClassVar[str] = "latency"
    samples_per_s: float | None = _f()
    macs_per_sample: int | None = _f(as_int)
    gflops: float | None = _f()


@dataclass
class ThroughputMetrics(LatencyMetrics):
    suite: ClassVar[str] = "throughput"
    best_batch: int | None = _f(as_int)
    best_samples_per_s: float | None = _f()
    is_best: bool | None = _f(as_bool)


@dataclass
class PairedMetrics(TimingMetrics):
    """The candidate's timing (TimingMetrics fields) plus the reference's and their ratio."""

    suite: ClassVar[str] = "paired"
    reference: str | None = _f(as_str)
    speedup: float | None = _f()
    speedup_ci95: tuple[float, float] | None = _f(as_pair)
    speedup_ci_method: str | None = _f(as_str)
    speedup_rounds_ci95: tuple[float, float] | None = _f(as_pair)
    speedup_p10: float | None = _f()
    speedup_p10_ci95: tuple[float, float] | None = _f(as_pair)
    speedup_between_process_cv: float | None = _f()
    speedup_p10_between_process_cv: float | None = _f()
    process_speedups: list[float] | None = _f(as_floats)
    process_speedups_p10: list[float] | None = _f(as_floats)
    p_value: float | None = _f()
    p_value_rounds: float | None = _f()
    significant: bool | None = _f(as_bool)
    teacher_p50_ms: float | None = _f()
    student_p50_ms: float | None = _f()
    teacher_median_ci95_ms: tuple[float, float] | None = _f(as_pair)
    student_median_ci95_ms: tuple[float, float] | None = _f(as_pair)
    reference_summary: dict | None = _f(as_any)
    reference_samples_ns: list | None = _f(as_any)
    calls_per_block: int | None = _f(as_int)
    reference_calls_per_block: int | None = _f(as_int)
    process_rounds: list[int] | None = _f(as_ints)
    process_calls_per_block: list | None = _f(as_any)
    # the A/A control (harness.measure.paired.control_check): the reference against a second session of
    # itself in the same rounds; its samples laid out like the reference's
    control_ratio: float | None = _f()
    control_ci95: tuple[float, float] | None = _f(as_pair)
    control_valid: bool | None = _f(as_bool)
    control_samples_ns: list | None = _f(as_any)

    @property
    def reference_p10_ms(self) -> float | None:
        return as_float((self.reference_summary or {}).get("p10_ms"))


# -- footprint and quality ------------------------------------------------------------------------
@dataclass
class AccuracyMetrics(Metrics):
    suite: ClassVar[str] = "accuracy"
    accuracy: float | None = _f()
    correct: int | None = _f(as_int)
    n: int | None = _f(as_int)
    # a variant (role "<base>@<variant>"): its fp32 base's accuracy and the fraction of test samples whose
    # top-1 class equals the base's, on the same test set and backend
    base_accuracy: float | None = _f()
    agreement: float | None = _f()


@dataclass
class MemoryMetrics(Metrics):
    suite: ClassVar[str] = "memory"
    rss_baseline_mb: float | None = _f()
    rss_after_load_mb: float | None = _f()
    load_increase_mb: float | None = _f()
    peak_rss_mb: float | None = _f()
    peak_rss_increase_mb: float | None = _f()
    rss_steady_mb: float | None = _f()
    repeats: int | None = _f(as_int)
    runs: int | None = _f(as_int)
    arena: bool | None = _f(as_bool)

    @property
    def peak_mb(self) -> float | None:
        """The peak attributable to the model (increase over the bare process), else the raw peak."""
        return self.peak_rss_increase_mb if self.peak_rss_increase_mb is not None else self.peak_rss_mb


@dataclass
class ColdStartMetrics(Metrics):
    suite: ClassVar[str] = "cold_start"
    load_s: float | None = _f()
    load_s_min: float | None = _f()
    load_s_max: float | None = _f()
    first_inference_ms: float | None = _f()
    first_inference_ms_min: float | None = _f()
    first_inference_ms_max: float | None = _f()
    repeats: int | None = _f(as_int)
    compile_s: float | None = _f()  # torch-compile only: compiling for the batch's shape (median)


@dataclass
class StorageMetrics(Metrics):
    suite: ClassVar[str] = "storage"
    params: int | None = _f(as_int)
    macs: int | None = _f(as_int)
    checkpoint_bytes: int | None = _f(as_int)
    checkpoint_gzip_bytes: int | None = _f(as_int)
    onnx_bytes: int | None = _f(as_int)
    onnx_graph_bytes: int | None = _f(as_int)
    onnx_external_bytes: int | None = _f(as_int)
    onnx_gzip_bytes: int | None = _f(as_int)


@dataclass
class RooflineMetrics(Metrics):
    suite: ClassVar[str] = "roofline"
    peak_gflops: float | None = _f()
    peak_source: str | None = _f(as_str)
    peak_by_source: dict | None = _f(as_any)
    theoretical_peak_gflops: float | None = _f()
    theoretical_peak_method: str | None = _f(as_str)
    theoretical_cores: int | None = _f(as_int)
    fma_units_assumed: int | None = _f(as_int)
    vector_bits: int | None = _f(as_int)
    clock_mhz: float | None = _f()
    numpy_gflops: float | None = _f()
    numpy_runs: int | None = _f(as_int)
    numpy_threads_limited: bool | None = _f(as_bool)
    torch_gflops: float | None = _f()
    torch_runs: int | None = _f(as_int)
    onnxruntime_gflops: float | None = _f()
    onnxruntime_runs: int | None = _f(as_int)
    flops_per_run: float | None = _f()
    # the int8 peak (harness.measure.roofline.measure_int8_peak): what int8 variants are judged against
    int8_peak_gops: float | None = _f()
    int8_peak_source: str | None = _f(as_str)
    int8_runs: int | None = _f(as_int)
    int8_error: str | None = _f(as_str)
    elapsed_s: float | None = _f()
    method: str | None = _f(as_str)
    threads: int | None = _f(as_int)
    n: int | None = _f(as_int)


@dataclass
class ABMetrics(Metrics):
    """`harness compare`: one role's current build timed beside its baseline build (harness/compare.py)."""

    suite: ClassVar[str] = "ab"
    latency_ratio: float | None = _f()  # current p50 / baseline p50: 1.10 = 10% slower
    latency_ratio_ci95: tuple[float, float] | None = _f(as_pair)
    latency_ratio_p10: float | None = _f()
    latency_ratio_p10_ci95: tuple[float, float] | None = _f(as_pair)
    baseline_p50_ms: float | None = _f()
    current_p50_ms: float | None = _f()
    baseline_accuracy: float | None = _f()  # from the results files (test split, onnxruntime), not re-measured
    current_accuracy: float | None = _f()
    processes: int | None = _f(as_int)
    process_ratios: list[float] | None = _f(as_floats)
    control_ratio: float | None = _f()
    control_ci95: tuple[float, float] | None = _f(as_pair)
    control_valid: bool | None = _f(as_bool)
    baseline_onnx: str | None = _f(as_str)
    baseline_sha256: str | None = _f(as_str)
    current_onnx: str | None = _f(as_str)
    current_sha256: str | None = _f(as_str)


@dataclass
class ServingMetrics(Metrics):
    """The `serving` suite: MLPerf LoadGen's scenarios on one model, backend and batching setting
    (harness/measure/serving.py). Latencies in ms, rates in samples (queries) per second."""

    suite: ClassVar[str] = "serving"
    batching: bool | None = _f(as_bool)  # dynamic batching in the system under test
    max_batch: int | None = _f(as_int)
    max_wait_ms: float | None = _f()
    latency_bound_ms: float | None = _f()  # the Server scenario's p99 bound
    latency_bound_from: str | None = _f(as_str)
    singlestream_p90_ms: float | None = _f()
    singlestream_p99_ms: float | None = _f()
    singlestream_valid: bool | None = _f(as_bool)
    # the same SingleStream run's model calls timed inside the SUT: LoadGen's latency less its own path
    # (issue, callback, completion) around the call
    singlestream_call_p50_ms: float | None = _f()
    singlestream_call_p90_ms: float | None = _f()
    singlestream_p50_ms: float | None = _f()
    # p90 of a plain loop over the same calls in the same process just before and just after the run
    singlestream_loop_p90_ms: list[float] | None = _f(as_floats)
    offline_sps: float | None = _f()
    offline_valid: bool | None = _f(as_bool)
    max_qps: float | None = _f()  # the highest target QPS whose Server run was VALID (None: none was)
    max_qps_p99_ms: float | None = _f()
    server_runs: list | None = _f(as_any)  # [{target_qps, valid, p99_ms, completed_qps, reason}], in search order
    search_resolution: float | None = _f()  # (lowest INVALID - highest VALID) / highest VALID when the search ended
    max_qps_repeats: list[float] | None = _f(as_floats)  # each search's max (--serving-repeats); max_qps: their median
    max_qps_spread: float | None = _f()  # (largest - smallest) / median of the repeats: the machine's noise
    reason: str | None = _f(as_str)  # why no Server run was VALID
    log_dir: str | None = _f(as_str)  # LoadGen's summary and detail logs, relative to the results file
    loadgen_version: str | None = _f(as_str)
    min_duration_ms: int | None = _f(as_int)
    min_query_count: int | None = _f(as_int)


@dataclass
class GenericMetrics(Metrics):
    """A suite this harness does not know (a user's own): every key lives in `extra`."""


# -- registry -------------------------------------------------------------------------------------
METRICS_BY_SUITE: dict[str, type[Metrics]] = {}


def register_metrics(cls: type[Metrics]) -> type[Metrics]:
    """Register a metrics class under its `suite` (a user's suite calls this for its own class)."""
    if not cls.suite:
        raise ValueError(f"{cls.__name__} has no suite name")
    METRICS_BY_SUITE[cls.suite] = cls
    return cls


for _cls in (LatencyMetrics, ThroughputMetrics, PairedMetrics, AccuracyMetrics, MemoryMetrics,
             ColdStartMetrics, StorageMetrics, RooflineMetrics, ABMetrics, ServingMetrics):
    register_metrics(_cls)


def metrics_for(suite: str, values: Metrics | Mapping[str, Any] | None) -> Metrics:
    """`values` as the typed metrics of `suite` (a dict is parsed; a typed object passes through)."""
    if isinstance(values, Metrics):
        return values
    return METRICS_BY_SUITE.get(suite, GenericMetrics).from_dict(values or {})


__all__ = [
    "ABMetrics", "AccuracyMetrics", "ColdStartMetrics", "GenericMetrics", "LatencyMetrics", "MemoryMetrics", "Metrics",
    "METRICS_BY_SUITE", "PairedMetrics", "RooflineMetrics", "ServingMetrics", "StorageMetrics", "ThroughputMetrics",
    "TimingMetrics", "as_bool", "as_float", "as_int", "as_pair", "metric_field", "metrics_for", "register_metrics",
]
