"""Realistic synthetic Results for report / gate / history tests (no training, no timing).

`make_results()` builds what a full bench writes: training summaries (one teacher, students over
3 seeds, as harness.train.trio does), model
entries with sizes and parity, and every suite for 3 roles x 2 backends x batch sizes 1 and 8.
Latency samples come from a lognormal around a per-model median with a seeded rng; `drift`
moves each run's medians a little (a machine is never the same twice), `slowdown` makes the
students genuinely heavier.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from harness.results import Measurement, Results

ROLES = ("teacher", "student_scratch", "student_kd")

# per-sample median latency (ms) at batch 1, per backend
BASE_MS = {
    "teacher": {"torch": 2.40, "onnxruntime": 1.50},
    "student_scratch": {"torch": 0.80, "onnxruntime": 0.45},
    "student_kd": {"torch": 0.80, "onnxruntime": 0.45},
}
PARAMS = {"teacher": 1_204_000, "student_scratch": 151_000, "student_kd": 151_000}
MACS = {"teacher": 61_000_000, "student_scratch": 7_300_000, "student_kd": 7_300_000}
ACC = {"teacher": 0.920, "student_scratch": 0.881, "student_kd": 0.902}


def latency_metrics(samples_ns: Sequence[int], macs: int | None = None, batch: int = 1) -> dict[str, Any]:
    ms = np.asarray(samples_ns, dtype=float) / 1e6
    q = np.percentile(ms, [25, 50, 75, 90, 95, 99, 99.9])
    s = np.sort(ms)
    n = len(s)
    half = 1.96 * math.sqrt(n) / 2
    lo, hi = max(int(n / 2 - half), 0), min(int(math.ceil(n / 2 + half)), n - 1)
    out = {"p10_ms": float(np.percentile(ms, 10)), "p50_ms": float(q[1]), "p90_ms": float(q[3]), "p95_ms": float(q[4]), "p99_ms": float(q[5]),
           "p999_ms": float(q[6]), "mean_ms": float(ms.mean()), "std_ms": float(ms.std(ddof=1)),
           "iqr_ms": float(q[2] - q[0]), "min_ms": float(s[0]), "max_ms": float(s[-1]),
           "cv": float(ms.std(ddof=1) / ms.mean()), "n": int(n), "median_ci95_ms": [float(s[lo]), float(s[hi])]}
    if macs:
        out["gflops"] = 2 * macs * batch / (out["p50_ms"] / 1e3) / 1e9
    return out


def _mean_ci(values: Sequence[float]) -> dict[str, Any]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return {"mean": m, "ci95": [m, m]}
    hw = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return {"mean": m, "ci95": [m - hw, m + hw]}


def _paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    d = a - b
    out = _mean_ci(d)
    p = None if len(d) < 2 else (float(stats.ttest_rel(a, b).pvalue) if d.std() > 0 else float(d[0] == 0))
    return {"diff_pts": out["mean"], "ci95": out["ci95"], "p_value": p, "test": "paired t-test", "n": int(len(d)),
            "per_pair": [float(x) for x in d]}


def _samples(rng, median_ms: float, n: int, sigma: float) -> list[int]:
    x = rng.lognormal(mean=math.log(median_ms * 1e6), sigma=sigma, size=n)
    return [int(v) for v in x]


def paired_metrics(rng, teacher_ns: list[int], student_ns: list[int], calls_per_block: int = 10,
                   n_boot: int = 300) -> dict[str, Any]:
    """What the paired suite reports: ratio of medians, CI by bootstrapping rounds (clusters of calls)."""
    from scipy import stats

    k = calls_per_block
    t, s = np.asarray(teacher_ns, float), np.asarray(student_ns, float)
    rounds = len(t) // k
    tr, sr = t[: rounds * k].reshape(rounds, k), s[: rounds * k].reshape(rounds, k)
    idx = rng.integers(0, rounds, size=(n_boot, rounds))
    boot = np.median(tr[idx].reshape(n_boot, -1), axis=1) / np.median(sr[idx].reshape(n_boot, -1), axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    speedup = float(np.median(t) / np.median(s))
    return {"speedup": speedup, "speedup_ci95": [float(min(lo, speedup)), float(max(hi, speedup))],
            "significant": bool(lo > 1 or hi < 1),
            "teacher_p50_ms": float(np.median(t) / 1e6), "student_p50_ms": float(np.median(s) / 1e6),
            "p50_ms": float(np.median(s) / 1e6),
            "p_value": float(stats.mannwhitneyu(t, s).pvalue), "rounds": int(rounds), "calls_per_block": k,
            "reference": "teacher", "reference_samples_ns": [int(x) for x in teacher_ns]}


def make_results(
    tasks: Sequence[str] = ("osuleaf", "ucf101_small"),
    roles: Sequence[str] = ROLES,
    backends: Sequence[str] = ("torch", "onnxruntime"),
    batch_sizes: Sequence[int] = (1, 8),
    seed: int = 0,
    n_samples: int = 300,
    sigma: float = 0.08,
    drift: float = 0.02,
    slowdown: float = 1.0,
    kd_acc_shift: float = 0.0,
    size_growth: float = 1.0,
    parity_fail: Sequence[str] = (),
    seeds: Sequence[int] = (0, 1, 2),
    single_teacher: bool = True,
    with_summary: bool = True,
    with_paired: bool = True,
    commit: str | None = "3f2a9c1d0b7e",
    source: str | None = None,
    unstable: bool = False,
    roofline: dict[str, Any] | None = None,
    paired_disturbance: dict[str, float] | None = None,
) -> Results:
    """One bench's Results. `slowdown` multiplies the students' latency (1.25 = 25% slower).

    `unstable`: the teacher's batch-1 latency is bimodal, with the warnings the latency suite
    writes for it (harness.measure.stats.stability_warnings). `roofline`: extra or replacement
    metrics for the machine-wide roofline measurement (task ""), which a bench adds once per file.
    `paired_disturbance`: {role: factor} multiplies that role's times in the paired suite only, as
    another session's spinning threads would.
    """
    from harness.measure.stats import stability_warnings

    rng = np.random.default_rng(seed)
    multi = len(tasks) > 1
    res = Results(
        # the keys harness.measure.environment.collect() writes
        environment={"git_commit": commit, "git_dirty": False, "hostname": f"bench-{seed}",
                     "cpu_model": "Synthetic CPU @ 3.0GHz", "cpu_isa": ["avx", "avx2", "avx512f", "fma", "sse4_2"],
                     "cpu_vector_bits": 512, "cpu_mhz": 3000.0, "threads": 1, "python": "3.11.9"} if commit else
        {"hostname": f"bench-{seed}"},
        config={"suites": ["accuracy", "latency", "paired", "throughput", "memory", "storage", "cold_start"],
                "batch_sizes": list(batch_sizes), "threads": 1},
        source=source,
    )
    res.created = f"2026-11-{20 + seed % 9:02d}T12:{seed % 60:02d}:00+00:00"
    for ti, task in enumerate(tasks):
        tscale = 1.0 + 0.6 * ti  # the second task is a bigger input
        # run-level drift per backend and model: the machine is a little different today, and not
        # the same for a big and a small model (caches, frequency), so even ratios move a bit
        run_drift = {(b, r): float(np.exp(rng.normal(0, drift))) for b in backends for r in roles}
        summary_models = {}
        acc_per_seed = {}
        for role in roles:
            base = ACC.get(role, 0.85) - 0.03 * ti + (kd_acc_shift if role == "student_kd" else 0.0)
            n_seeds = 1 if role == "teacher" and single_teacher else len(seeds)
            acc_per_seed[role] = [float(np.clip(base + rng.normal(0, 0.004), 0, 1)) for _ in range(n_seeds)]
            secs = 40.0 * (3 if role == "teacher" else 1) * tscale
            summary_models[role] = {
                "params": PARAMS.get(role, 100_000), "macs": int(MACS.get(role, 5_000_000) * tscale),
                "accuracy": {**_mean_ci(acc_per_seed[role]), "per_seed": acc_per_seed[role]},
                "train_seconds": {"mean": secs, "per_seed": [secs] * n_seeds},
                "seeds": list(seeds[:n_seeds]),
            }
        if with_summary:
            summary = {"schema": "kd-harness/summary/1", "task": task, "seeds": list(seeds), "models": summary_models}
            if "student_kd" in roles and "student_scratch" in roles and "teacher" in roles:
                kd = np.asarray(acc_per_seed["student_kd"]) * 100
                sc = np.asarray(acc_per_seed["student_scratch"]) * 100
                t = summary_models["teacher"]["accuracy"]["mean"] * 100
                # the shape harness.train.trio.compare_students writes
                summary["comparison"] = {"kd_vs_scratch": _paired_difference(kd, sc),
                                         "student_kd_vs_teacher": _paired_difference(kd, np.full_like(kd, t)),
                                         "student_scratch_vs_teacher": _paired_difference(sc, np.full_like(sc, t))}
            res.tasks[task] = summary
        for role in roles:
            params = PARAMS.get(role, 100_000)
            grow = size_growth if role != "teacher" else 1.0
            onnx_bytes = int((params * 4 + 48_000) * grow)
            entry = {
                "params": params, "macs": int(MACS.get(role, 5_000_000) * tscale),
                "checkpoint": f"runs/{task}/{role}.pt", "checkpoint_sha256": "0" * 64,
                "checkpoint_bytes": params * 4 + 9_000, "onnx": f"runs/{task}/{role}.onnx",
                "onnx_sha256": "1" * 64, "onnx_bytes": onnx_bytes, "onnx_gzip_bytes": int(onnx_bytes * 0.92),
                "parity": {"max_abs_err": 2e-6 if role not in parity_fail else 0.3, "max_rel_err": 1e-5,
                           "top1_agreement": 1.0 if role not in parity_fail else 0.93,
                           "passed": role not in parity_fail},
                "train_seconds": summary_models[role]["train_seconds"],
            }
            res.add_model(task, role, entry, multi_task=multi)
            res.measurements.append(Measurement(
                task=task, model=role, backend="any", suite="storage", batch_size=1, threads=1,
                metrics={"checkpoint_bytes": entry["checkpoint_bytes"], "onnx_bytes": onnx_bytes,
                         "onnx_gzip_bytes": entry["onnx_gzip_bytes"], "params": params, "macs": entry["macs"]}))

        for backend in backends:
            for role in roles:
                n_test = 200
                acc = ACC.get(role, 0.85) - 0.03 * ti + (kd_acc_shift if role == "student_kd" else 0.0)
                correct = int(round(acc * n_test))
                res.measurements.append(Measurement(
                    task=task, model=role, backend=backend, suite="accuracy", batch_size=64, threads=1,
                    metrics={"accuracy": correct / n_test, "correct": correct, "n": n_test}))
            samples: dict[tuple[str, int], list[int]] = {}
            best = {}
            for role in roles:
                for bs in batch_sizes:
                    med = BASE_MS.get(role, BASE_MS["student_kd"])[backend] * tscale * run_drift[(backend, role)]
                    med *= (1 + 0.55 * (bs - 1))  # batching amortises overhead
                    if role != "teacher":
                        med *= slowdown
                    s = _samples(rng, med, n_samples, sigma)
                    if unstable and role == "teacher" and bs == 1:
                        # bimodal: a third of the calls 1.8x slower (another process took the core)
                        slow = rng.random(n_samples) < 0.35
                        s = [int(x * 1.8) if f else x for x, f in zip(s, slow)]
                    samples[(role, bs)] = s
                    macs = int(MACS.get(role, 5_000_000) * tscale)
                    metrics = latency_metrics(s, macs, bs)
                    m = Measurement(task=task, model=role, backend=backend, suite="latency", batch_size=bs,
                                    threads=1, metrics=metrics, samples_ns=s,
                                    warnings=stability_warnings(metrics))  # what the latency suite writes
                    res.measurements.append(m)
                    sps = bs / (np.median(s) / 1e9)
                    best.setdefault(role, []).append((bs, float(sps)))
                    res.measurements.append(Measurement(
                        task=task, model=role, backend=backend, suite="memory", batch_size=bs, threads=1,
                        metrics={"peak_rss_increase_mb": (40.0 if role == "teacher" else 9.0) * (1 + 0.1 * bs)
                                 * tscale, "peak_rss_mb": 310.0, "rss_baseline_mb": 290.0,
                                 "load_increase_mb": 6.0 if role == "teacher" else 1.5,
                                 "arena": backend == "onnxruntime"}))
                res.measurements.append(Measurement(
                    task=task, model=role, backend=backend, suite="cold_start", batch_size=1, threads=1,
                    metrics={"load_s": 0.12 if role == "teacher" else 0.05,
                             "first_inference_ms": 9.0 if role == "teacher" else 4.0}))
            for role, pts in best.items():
                top = max(pts, key=lambda p: p[1])
                for bs, sps in pts:
                    res.measurements.append(Measurement(
                        task=task, model=role, backend=backend, suite="throughput", batch_size=bs, threads=1,
                        metrics={"samples_per_s": sps, "best_batch": top[0], "is_best": bs == top[0]}))
            if with_paired and "teacher" in roles:
                for role in roles:
                    if role == "teacher":
                        continue
                    for bs in batch_sizes:
                        tm = BASE_MS["teacher"][backend] * tscale * run_drift[(backend, "teacher")] \
                            * (1 + 0.55 * (bs - 1))
                        sm = BASE_MS.get(role, BASE_MS["student_kd"])[backend] * tscale * run_drift[(backend, role)] \
                            * (1 + 0.55 * (bs - 1)) * slowdown
                        # interleaved rounds share the machine's state: a common per-round factor
                        k = 10
                        common = np.repeat(rng.lognormal(0, sigma, n_samples // k + 1), k)[:n_samples]
                        dist = paired_disturbance or {}
                        tm *= dist.get("teacher", 1.0)
                        sm *= dist.get(role, 1.0)
                        t = [int(x) for x in tm * 1e6 * common * rng.lognormal(0, sigma / 2, n_samples)]
                        s = [int(x) for x in sm * 1e6 * common * rng.lognormal(0, sigma / 2, n_samples)]
                        res.measurements.append(Measurement(
                            task=task, model=role, backend=backend, suite="paired", batch_size=bs, threads=1,
                            metrics=paired_metrics(rng, t, s, k), samples_ns=s))
    if roofline is not None:
        # what harness.bench adds once per results file: machine-wide, so task "" and model ""
        metrics = {"threads": 1, "n": 2048, "peak_gflops": 150.0, "peak_source": "numpy",
                   "peak_by_source": {"numpy": 150.0, "torch": 120.0, "onnxruntime": 140.0},
                   "numpy_gflops": 150.0, "torch_gflops": 120.0, "onnxruntime_gflops": 140.0,
                   "theoretical_peak_gflops": 192.0, "fma_units_assumed": 2,
                   "theoretical_peak_method": "1 core(s) x 16 float32 lanes (512-bit vectors) x 2 flops per FMA x "
                                              "2 FMA units per core (assumed) x 3 GHz", **roofline}
        res.measurements.append(Measurement(task="", model="", backend="torch", suite="roofline", batch_size=0,
                                            threads=1, metrics=metrics))
    if parity_fail:
        res.warnings.append("parity failed for: " + ", ".join(parity_fail))
    return res


def write_pytest_benchmark(path, *, with_data: bool = True) -> dict:
    """A small, realistic pytest-benchmark 5.x JSON file (as `--benchmark-json` writes it)."""
    import json

    rng = np.random.default_rng(7)

    def stats(median_s: float, rounds: int) -> dict:
        data = sorted(rng.lognormal(math.log(median_s), 0.05, rounds).tolist())
        arr = np.asarray(data)
        q1, q3 = np.percentile(arr, [25, 75])
        iqr = q3 - q1
        st = {"min": float(arr.min()), "max": float(arr.max()), "mean": float(arr.mean()),
              "stddev": float(arr.std(ddof=1)), "rounds": rounds, "median": float(np.median(arr)),
              "iqr": float(iqr), "q1": float(q1), "q3": float(q3), "iqr_outliers": 1, "stddev_outliers": 3,
              "outliers": "3;1", "ld15iqr": float(arr[arr >= q1 - 1.5 * iqr].min()),
              "hd15iqr": float(arr[arr <= q3 + 1.5 * iqr].max()), "ops": float(1 / arr.mean()),
              "total": float(arr.sum()), "iterations": 1}
        if with_data:
            st["data"] = data
        return st

    benches = []
    for role, backend, med, params, onnx_bytes, acc in (
        ("teacher", "onnxruntime", 1.5e-3, 1_204_000, 4_864_000, 0.92),
        ("student_kd", "onnxruntime", 0.45e-3, 151_000, 652_000, 0.90),
        ("student_scratch", "onnxruntime", 0.46e-3, 151_000, 652_000, 0.88),
        ("teacher", "torch", 2.4e-3, 1_204_000, 4_864_000, 0.92),
        ("student_kd", "torch", 0.8e-3, 151_000, 652_000, 0.90),
    ):
        name = f"test_latency[{role}-{backend}-1]"
        benches.append({
            "group": "latency-osuleaf", "name": name, "fullname": f"tests/bench/test_bench.py::{name}",
            "params": {"role": role, "backend": backend, "batch_size": 1}, "param": f"{role}-{backend}-1",
            "extra_info": {"task": "osuleaf", "role": role, "backend": backend, "batch_size": 1, "threads": 1,
                           "accuracy": acc, "params": params, "onnx_bytes": onnx_bytes,
                           "checkpoint_bytes": params * 4 + 9000},
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5, "max_time": 1.0,
                        "min_time": 5e-06, "warmup": False},
            "stats": stats(med, 50),
        })
    doc = {
        "machine_info": {"node": "ci-runner-3", "processor": "x86_64", "machine": "x86_64",
                         "python_compiler": "GCC 12.2.0", "python_implementation": "CPython",
                         "python_implementation_version": "3.11.9", "python_version": "3.11.9",
                         "python_build": ["main", "Apr  2 2024 08:00:00"], "release": "6.1.0-18-amd64",
                         "system": "Linux", "cpu": {"arch": "X86_64", "bits": 64, "count": 2,
                                                   "brand_raw": "Intel(R) Xeon(R) CPU @ 2.20GHz",
                                                   "flags": ["avx", "avx2", "fma", "sse4_2", "avx512f"]}},
        "commit_info": {"id": "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d", "time": "2026-11-27T18:00:00+00:00",
                        "author_time": "2026-11-27T18:00:00+00:00", "dirty": False, "project": "kd-harness",
                        "branch": "main"},
        "benchmarks": benches,
        "datetime": "2026-11-27T19:12:03.123456+00:00",
        "version": "5.1.0",
    }
    from pathlib import Path

    Path(path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return doc


def add_variants(res: Results, variants: dict[str, dict[str, float]], failed: dict[str, str] | None = None,
                 seed: int = 0, n_samples: int = 300, sigma: float = 0.05) -> Results:
    """Add quantized variants to a `make_results` bench, in the layout `harness bench` writes for them.

    `variants`: {"student_kd@int8": {"accuracy": 0.895, "time": 0.6, "size": 0.3, "agreement": 0.98}}:
    its test accuracy (fraction), its latency as a multiple of its fp32 model's (0.6 = faster, 1.3 =
    slower), its ONNX size as a multiple of the fp32 model's and its top-1 agreement with it. A variant
    runs on onnxruntime only: accuracy (with `base_accuracy` and `agreement`), latency, paired (vs the
    fp32 teacher), throughput, memory and storage. `failed`: {role: reason}: entries with
    `available: false` and no measurements, counted in `config["variant_failures"]`.
    """
    from harness.report.lookup import find, model_entry, task_names

    rng = np.random.default_rng(1000 + seed)
    tasks = [t for t in task_names(res) if t]
    multi = len(tasks) > 1
    backend = "onnxruntime"
    batches = list(res.config.get("batch_sizes") or [1])
    for task in tasks:
        for role, spec in variants.items():
            base_role, variant = role.split("@", 1)
            base = model_entry(res, task, base_role) or {}
            onnx_bytes = int(base.get("onnx_bytes", 100_000) * spec.get("size", 0.3))
            res.add_model(task, role, {
                "base_role": base_role, "variant": variant,
                "calibration": {"method": "minmax", "samples": 128, "split": "train", "per_channel": True,
                                "format": "QDQ", "seed": 0},
                "onnx": f"runs/{task}/{role}.onnx", "onnx_sha256": "2" * 64, "onnx_bytes": onnx_bytes,
                "params": base.get("params"), "macs": base.get("macs")}, multi_task=multi)
            res.measurements.append(Measurement(
                task=task, model=role, backend="any", suite="storage", batch_size=1, threads=1,
                metrics={"onnx_bytes": onnx_bytes, "params": base.get("params"), "macs": base.get("macs")}))
            base_acc = find(res, task, "accuracy", base_role, backend).metrics
            n_test = base_acc.n or 200
            correct = int(round(spec["accuracy"] * n_test))
            res.measurements.append(Measurement(
                task=task, model=role, backend=backend, suite="accuracy", batch_size=64, threads=1,
                metrics={"accuracy": correct / n_test, "correct": correct, "n": n_test,
                         "base_accuracy": base_acc.accuracy, "agreement": spec.get("agreement", 0.98)}))
            for bs in batches:
                base_p50 = find(res, task, "latency", base_role, backend, bs).metrics.p50_ms
                teacher_p50 = find(res, task, "latency", "teacher", backend, bs).metrics.p50_ms
                med = base_p50 * spec.get("time", 0.6)
                s = _samples(rng, med, n_samples, sigma)
                res.measurements.append(Measurement(
                    task=task, model=role, backend=backend, suite="latency", batch_size=bs, threads=1,
                    metrics=latency_metrics(s), samples_ns=s))
                res.measurements.append(Measurement(
                    task=task, model=role, backend=backend, suite="throughput", batch_size=bs, threads=1,
                    metrics={"samples_per_s": bs / (np.median(s) / 1e9)}))
                base_mem = find(res, task, "memory", base_role, backend, bs).metrics
                res.measurements.append(Measurement(
                    task=task, model=role, backend=backend, suite="memory", batch_size=bs, threads=1,
                    metrics={"peak_rss_increase_mb": base_mem.peak_rss_increase_mb * 0.8, "peak_rss_mb": 300.0,
                             "rss_baseline_mb": 290.0, "arena": True}))
                k = 10
                common = np.repeat(rng.lognormal(0, sigma, n_samples // k + 1), k)[:n_samples]
                t = [int(x) for x in teacher_p50 * 1e6 * common * rng.lognormal(0, sigma / 2, n_samples)]
                c = [int(x) for x in med * 1e6 * common * rng.lognormal(0, sigma / 2, n_samples)]
                res.measurements.append(Measurement(
                    task=task, model=role, backend=backend, suite="paired", batch_size=bs, threads=1,
                    metrics=paired_metrics(rng, t, c, k), samples_ns=c))
        for role, reason in (failed or {}).items():
            base_role, variant = role.split("@", 1)
            res.add_model(task, role, {"base_role": base_role, "variant": variant, "available": False,
                                       "reason": reason}, multi_task=multi)
    if failed:
        res.config["variant_failures"] = len(failed) * len(tasks)
    return res
