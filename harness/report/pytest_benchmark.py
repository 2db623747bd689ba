"""Read pytest-benchmark JSON (``--benchmark-json`` / ``--benchmark-save``) as harness Results.

Each benchmark becomes one "latency" measurement; its ``extra_info`` says what was measured::

    extra_info = {"task": "osuleaf", "role": "student_kd", "backend": "onnxruntime", "batch_size": 1,
                  "threads": 1, "accuracy": 0.91, "params": 151234, "macs": 7012345,
                  "onnx_bytes": 612345, "checkpoint_bytes": 620000, "onnx_gzip_bytes": 560000}

Missing keys fall back to the benchmark's ``params`` (parametrised tests), then to defaults
(role = the benchmark's name, backend "torch", batch 1). pytest-benchmark times are seconds per
call (already divided by iterations); the harness keeps milliseconds and raw nanoseconds.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.errors import SchemaError
from harness.metrics import AccuracyMetrics, LatencyMetrics, ThroughputMetrics
from harness.results import Measurement, Results

STORAGE_KEYS = ("onnx_bytes", "checkpoint_bytes", "onnx_gzip_bytes")
MODEL_KEYS = ("params", "macs") + STORAGE_KEYS
MEMORY_KEYS = ("rss_baseline_mb", "rss_after_load_mb", "load_increase_mb", "peak_rss_mb", "peak_rss_increase_mb",
               "rss_steady_mb")
COLD_START_KEYS = ("load_s", "first_inference_ms")


def is_pytest_benchmark(doc: Any) -> bool:
    """True for a pytest-benchmark JSON document (it has "benchmarks" and "machine_info")."""
    return isinstance(doc, dict) and "benchmarks" in doc and "machine_info" in doc


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _lookup(bench: dict, key: str) -> Any:
    for holder in (bench.get("extra_info"), bench.get("params")):
        if isinstance(holder, dict) and holder.get(key) is not None:
            return holder[key]
    return None


def _int(value: Any, default: int, what: str, name: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SchemaError(f"pytest-benchmark entry {name!r}: {what} {value!r} is not an integer") from None


def _ms(seconds: Any) -> float | None:
    v = _num(seconds)
    return None if v is None else v * 1e3


def _latency_metrics(stats: dict, data_s: list[float] | None, name: str, suite: str) -> LatencyMetrics:
    """The latency (or throughput) metrics of one benchmark's stats, in milliseconds."""
    median = _num(stats.get("median"))
    if median is None:
        raise SchemaError(f"pytest-benchmark entry {name!r} has no numeric stats.median")
    m = (ThroughputMetrics if suite == "throughput" else LatencyMetrics)(p50_ms=median * 1e3)
    m.mean_ms, m.std_ms, m.min_ms, m.max_ms = (_ms(stats.get(k)) for k in ("mean", "stddev", "min", "max"))
    m.iqr_ms, m.q1_ms, m.q3_ms = (_ms(stats.get(k)) for k in ("iqr", "q1", "q3"))
    rounds = _num(stats.get("rounds"))
    if rounds is not None:
        m.n = m.rounds = int(rounds)
    iterations = _num(stats.get("iterations"))
    if iterations is not None:
        m.iterations = int(iterations)
    mean, std = _num(stats.get("mean")), _num(stats.get("stddev"))
    if mean and std is not None:
        m.cv = std / mean
    if data_s:
        arr = np.asarray(data_s, dtype=float) * 1e3
        m.p90_ms, m.p95_ms, m.p99_ms, m.p999_ms = (float(np.percentile(arr, q)) for q in (90, 95, 99, 99.9))
        # distribution-free 95% CI of the median from order statistics
        s = np.sort(arr)
        n = len(s)
        if n >= 6:
            half = 1.96 * math.sqrt(n) / 2
            lo = max(int(math.floor(n / 2 - half)), 0)
            hi = min(int(math.ceil(n / 2 + half)), n - 1)
            m.median_ci95_ms = (float(s[lo]), float(s[hi]))
    return m


def from_pytest_benchmark(doc: dict, source: str | None = None) -> Results:
    """Convert a parsed pytest-benchmark document to Results (latency measurements + model entries)."""
    where = f" ({source})" if source else ""
    if not is_pytest_benchmark(doc):
        raise SchemaError(f"not a pytest-benchmark file{where}: needs 'benchmarks' and 'machine_info'")
    benches = doc.get("benchmarks")
    if not isinstance(benches, list):
        raise SchemaError(f"malformed pytest-benchmark file{where}: 'benchmarks' must be a list")
    machine = doc.get("machine_info") or {}
    commit = doc.get("commit_info") or {}
    env: dict[str, Any] = {"source_format": "pytest-benchmark"}
    if isinstance(machine, dict):
        env["machine_info"] = machine
        if machine.get("node"):
            env["hostname"] = machine["node"]
        cpu = machine.get("cpu")
        if isinstance(cpu, dict) and cpu.get("brand_raw"):
            env["cpu"] = env["cpu_model"] = cpu["brand_raw"]
        if isinstance(cpu, dict) and isinstance(cpu.get("flags"), list):  # py-cpuinfo's flags
            from harness.measure.environment import isa_from_flags, vector_bits

            env["cpu_isa"] = isa_from_flags(cpu["flags"])
            env["cpu_vector_bits"] = vector_bits(env["cpu_isa"])
        if machine.get("python_version"):
            env["python"] = machine["python_version"]
    if isinstance(commit, dict):
        if commit.get("id"):
            env["git_commit"] = str(commit["id"])
        if "dirty" in commit:
            env["git_dirty"] = bool(commit["dirty"])
        if commit.get("branch"):
            env["git_branch"] = commit["branch"]

    res = Results(environment=env, config={"source_format": "pytest-benchmark", "version": doc.get("version")},
                  source=source)
    if doc.get("datetime"):
        res.created = str(doc["datetime"])

    parsed = []
    for i, bench in enumerate(benches):
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise SchemaError(f"malformed pytest-benchmark file{where}: benchmark #{i} has no 'stats' object")
        name = str(bench.get("name") or bench.get("fullname") or f"benchmark{i}")
        role = _lookup(bench, "role")
        if role is None:
            role = name
            res.warnings.append(f"pytest-benchmark entry {name!r} has no extra_info.role; using its name")
        task = _lookup(bench, "task")
        parsed.append((bench, name, str(role), "" if task is None else str(task)))

    tasks = {t for _, _, _, t in parsed}
    multi = len(tasks) > 1
    # extra_info["suite"] (suites/): latency | throughput -> timed measurements; memory | storage | accuracy ->
    # the figures in extra_info (their time is the measuring itself). No "suite": latency, as before.
    measured_acc = {(t, r, str(_lookup(b, "backend") or "torch")) for b, _, r, t in parsed
                    if _lookup(b, "suite") == "accuracy" and _num(_lookup(b, "measured_accuracy")) is not None}
    for bench, name, role, task in parsed:
        stats = bench["stats"]
        suite = str(_lookup(bench, "suite") or "latency")
        backend = str(_lookup(bench, "backend") or "torch")
        batch = _int(_lookup(bench, "batch_size"), 1, "batch_size", name)
        threads = _int(_lookup(bench, "threads"), 0, "threads", name)
        options = {"benchmark": name}
        if bench.get("group"):
            options["group"] = bench["group"]
        if suite in ("latency", "throughput"):
            data = stats.get("data")
            data_s = [float(x) for x in data if _num(x) is not None] if isinstance(data, list) else None
            metrics = _latency_metrics(stats, data_s, name, suite)
            if suite == "throughput":
                metrics.samples_per_s = batch / (metrics.p50_ms / 1e3) if metrics.p50_ms > 0 else None
            res.measurements.append(Measurement(
                task=task, model=role, backend=backend, suite=suite, batch_size=batch, threads=threads,
                metrics=metrics, options=options,
                samples_ns=[int(round(x * 1e9)) for x in data_s] if data_s else None,
            ))
        elif suite == "memory":
            for sub, keys in (("memory", MEMORY_KEYS), ("cold_start", COLD_START_KEYS)):
                figures = {k: _num(_lookup(bench, k)) for k in keys if _num(_lookup(bench, k)) is not None}
                if figures:
                    res.measurements.append(Measurement(
                        task=task, model=role, backend=backend, suite=sub, batch_size=batch, threads=threads,
                        metrics=figures, options=options))
        elif suite == "accuracy":
            measured = _num(_lookup(bench, "measured_accuracy"))
            if measured is not None:
                correct, n = (_num(_lookup(bench, k)) for k in ("correct", "n"))
                res.measurements.append(Measurement(
                    task=task, model=role, backend=backend, suite="accuracy", batch_size=batch, threads=threads,
                    metrics=AccuracyMetrics(accuracy=measured, correct=None if correct is None else int(correct),
                                            n=None if n is None else int(n)),
                    options=options))
        elif suite != "storage":
            res.warnings.append(f"pytest-benchmark entry {name!r}: unknown extra_info.suite {suite!r}; skipped")
        acc = _num(_lookup(bench, "accuracy"))
        if suite == "latency" and acc is not None and (task, role, backend) not in measured_acc:
            res.measurements.append(Measurement(
                task=task, model=role, backend=backend, suite="accuracy", batch_size=batch, threads=threads,
                metrics=AccuracyMetrics(accuracy=acc), options={"benchmark": name},
            ))
        entry = res.model_entry(task, role) if not multi else next(
            (e for e in res.models.values() if e.get("task") == task and e.get("role") == role), None)
        if entry is None:
            res.add_model(task, role, {}, multi_task=multi)
            entry = res.models[f"{task}:{role}" if multi else role]
        for key in MODEL_KEYS:
            v = _num(_lookup(bench, key))
            if v is not None:
                entry[key] = int(v)
        storage = {k: int(_num(_lookup(bench, k))) for k in STORAGE_KEYS if _num(_lookup(bench, k)) is not None}
        if storage and not any(m.suite == "storage" and m.task == task and m.model == role for m in res.measurements):
            res.measurements.append(Measurement(
                task=task, model=role, backend="any", suite="storage", batch_size=0, threads=threads,
                metrics=storage, options={"benchmark": name},
            ))
    return res
