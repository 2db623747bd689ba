"""The "Under load" table: the serving suite's LoadGen figures per model, backend and batching setting
(harness/measure/serving.py), with the max-QPS ratio to the fp32 teacher under the same bound, backend
and batching; a verdict per model on whether dynamic batching wins; the knee data (p99 against offered
QPS, one curve per model) for the HTML report's plot.

Shown only for a task with serving measurements; other files report exactly as before.
"""
from __future__ import annotations

from typing import Any

from harness.report.lookup import REFERENCE, find, ratio, task_measurements
from harness.results import Measurement, Results

SERVING_COLS = ["source", "task", "model", "backend", "threads", "batching", "max_batch", "max_wait_ms", "latency_bound_ms",
                "max_qps", "qps_ratio", "max_qps_p99_ms", "ss_p90_ms", "ss_vs_latency_p90", "offline_sps", "max_qps_spread_pct", "runs_valid", "ss_valid",
                "offline_valid", "search_resolution_pct", "serving_reason"]
SERVING_KEEP = ("source", "task", "model", "backend", "batching")


def serving_measurements(res: Results, task: str) -> list[Measurement]:
    return [m for m in task_measurements(res, task) if m.suite == "serving"]


def _teacher(ms: list[Measurement], m: Measurement) -> Measurement | None:
    return next((t for t in ms if t.model == REFERENCE and t.backend == m.backend and t.threads == m.threads
                 and t.metrics.batching == m.metrics.batching), None)


def serving_rows(res: Results, label: str, task: str) -> list[dict[str, Any]]:
    ms = serving_measurements(res, task)
    rows = []
    for m in ms:
        x = m.metrics
        t = _teacher(ms, m)
        runs = x.server_runs or []
        rows.append({
            "source": label, "task": task, "model": m.model, "backend": m.backend, "threads": m.threads,
            "batching": "on" if x.batching else "off", "max_batch": x.max_batch, "max_wait_ms": x.max_wait_ms,
            "latency_bound_ms": x.latency_bound_ms, "max_qps": x.max_qps,
            "qps_ratio": (1.0 if x.max_qps else None) if m.model == REFERENCE else ratio(x.max_qps, t.metrics.max_qps if t else None),
            "max_qps_p99_ms": x.max_qps_p99_ms, "ss_p90_ms": x.singlestream_p90_ms,
            "ss_vs_latency_p90": _ss_vs_latency(res, task, m), "offline_sps": x.offline_sps,
            "max_qps_spread_pct": None if x.max_qps_spread is None else 100 * x.max_qps_spread,
            "max_qps_repeats": x.max_qps_repeats,
            "runs_valid": f"{sum(bool(r.get('valid')) for r in runs)}/{len(runs)}",
            "ss_valid": x.singlestream_valid, "offline_valid": x.offline_valid,
            "latency_p90_ms": _latency_p90(res, task, m), "ss_call_p90_ms": x.singlestream_call_p90_ms,
            "ss_path_ms": (x.singlestream_p50_ms - x.singlestream_call_p50_ms)
            if x.singlestream_p50_ms is not None and x.singlestream_call_p50_ms is not None else None,
            "ss_loop_p90_ms": x.singlestream_loop_p90_ms,
            "search_resolution_pct": None if x.search_resolution is None else 100 * x.search_resolution,
            "serving_reason": x.reason,
        })
    return rows


def _latency_p90(res: Results, task: str, m: Measurement) -> float | None:
    lat = find(res, task, "latency", m.model, m.backend, 1, m.threads)
    return lat.metrics.p90_ms if lat else None


def _ss_vs_latency(res: Results, task: str, m: Measurement) -> float | None:
    """LoadGen's SingleStream p90 over the latency suite's p90, same model, backend, threads, batch 1:
    the same call measured two ways (a validity check; 1.0 when they agree)."""
    return ratio(m.metrics.singlestream_p90_ms, _latency_p90(res, task, m))


AGREEMENT = 0.10  # LoadGen's SingleStream p90 within 10% of the latency suite's


def batching_verdict(rows: list[dict[str, Any]]) -> str | None:
    """Per model and backend: which batching setting served more QPS under the bound."""
    if not rows:
        return None
    bits = []
    pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        pairs.setdefault((r["model"], r["backend"]), {})[r["batching"]] = r
    for (model, backend), by in pairs.items():
        on, off = by.get("on"), by.get("off")
        if not on or not off:
            continue
        a, b = on.get("max_qps"), off.get("max_qps")
        if a is None and b is None:
            bits.append(f"{model} ({backend}): neither met the bound")
        elif b is None or (a is not None and a > b):
            bits.append(f"{model} ({backend}): batching on, {a:.0f} vs {b or 0:.0f} QPS")
        else:
            bits.append(f"{model} ({backend}): batching off, {b:.0f} vs {a or 0:.0f} QPS")
    bound = next((r["latency_bound_ms"] for r in rows if r.get("latency_bound_ms")), None)
    head = "Max QPS with p99 under the bound" + (f" ({bound:.3g} ms)" if bound else "") + ", by batching: "
    return head + "; ".join(bits) + "." if bits else None


def serving_notes(rows: list[dict[str, Any]], cores: int | None = None) -> list[str]:
    """One line per (model, backend, batching) that met the bound at no QPS tried, with LoadGen's reason;
    one per model whose LoadGen SingleStream p90 disagrees with the latency suite's by more than 10%."""
    out = [f"{r['model']} on {r['backend']}, batching {r['batching']}: {r['serving_reason']}"
           for r in rows if r.get("max_qps") is None and r.get("serving_reason")]
    for r in rows:
        spread = r.get("max_qps_spread_pct")
        if spread is not None and spread > 100 * AGREEMENT:
            reps = ", ".join(f"{q:.0f}" for q in r.get("max_qps_repeats") or [])
            out.append(f"{r['model']} on {r['backend']}, batching {r['batching']}: max QPS varied {spread:.0f}% across "
                       f"{len(r.get('max_qps_repeats') or [])} searches ({reps}): the machine's noise moves the p99 "
                       f"of short runs; the median is reported (longer --serving-min-duration-ms narrows it)")
    single = [r for r in rows if r.get("max_qps") is not None and not r.get("max_qps_repeats")]
    if single:  # one search per row: how far a rerun would move it was not measured in this run
        out.append(f"max QPS comes from one search per model and batching setting ({len(single)} rows): its "
                   f"run-to-run spread was not measured; --serving-repeats 3 measures it and reports the median")
    seen = set()
    for r in rows:
        x = r.get("ss_vs_latency_p90")
        key = (r["model"], r["backend"])
        if x is None or abs(x - 1) <= AGREEMENT or key in seen:
            continue
        seen.add(key)
        out.append(_disagreement(r, x, cores))
    return out


def _disagreement(r: dict[str, Any], x: float, cores: int | None) -> str:
    """Why LoadGen's SingleStream p90 and the latency suite's differ, from what the same run measured:
    LoadGen's own path around each call (its p50 less the p50 of the calls timed inside the SUT), the
    calls' own p90 under LoadGen, and a plain loop's p90 just before and after (the machine's drift)."""
    lat, ss, call, path, loop = (r.get(k) for k in ("latency_p90_ms", "ss_p90_ms", "ss_call_p90_ms", "ss_path_ms",
                                                      "ss_loop_p90_ms"))
    line = f"{r['model']} on {r['backend']}: LoadGen's SingleStream p90 is {x:.2f}x the latency suite's"
    if lat and ss:
        line += f" ({ss:.3g} vs {lat:.3g} ms)"
    parts = []
    if path is not None and lat:
        parts.append(f"LoadGen's own path per query (issue, the SUT's callback, completion) is "
                     f"{1000 * path:.1f} us, {path / lat:.0%} of it")
    if call is not None and lat:
        parts.append(f"the model calls timed inside the SUT read p90 {call:.3g} ms ({call / lat:.2f}x)")
    if loop:
        lo, hi = min(loop), max(loop)
        parts.append("a plain loop over the same calls in the same process just before and after read p90 "
                     + " and ".join(f"{v:.3g}" for v in loop) + " ms"
                     + (f" (they differ by {(hi - lo) / lo:.0%}: the machine's noise at this p90)"
                        if lo and (hi - lo) / lo > AGREEMENT else ""))
    if parts:
        line += ": " + "; ".join(parts)
    threads = r.get("threads")
    if x > 1 and threads and cores and threads >= cores:
        line += (f". {threads} model threads on {cores} cores: LoadGen's own threads share them; "
                 f"--threads {max(1, cores - 1)} leaves them one")
    elif call is not None and lat and abs(call / lat - 1) <= AGREEMENT and path is not None:
        line += ". The calls agree; the rest is LoadGen's fixed path, which matters most for the fastest models"
    elif call is not None and lat and loop and min(loop) <= call <= max(loop) * (1 + AGREEMENT):
        line += (". The calls under LoadGen match this process's plain loop at that time: the latency suite "
                 "ran at another time, and the machine moved")
    elif call is not None and lat and loop and call > max(loop) * (1 + AGREEMENT):
        line += (". The calls themselves ran slower under LoadGen than in the plain loops just before and after: "
                 "the work between queries cools the caches for the next call, or the machine's noise peaked "
                 "during the run; rerun to tell them apart")
    return line


def knee_curves(res: Results, task: str) -> list[dict[str, Any]]:
    """One curve per (model, backend, batching): (offered QPS, p99 ms, VALID) points sorted by QPS."""
    out = []
    for m in serving_measurements(res, task):
        pts = sorted((r["target_qps"], r["p99_ms"], bool(r.get("valid"))) for r in m.metrics.server_runs or []
                     if r.get("target_qps") is not None and r.get("p99_ms") is not None)
        if pts:
            out.append({"model": m.model, "backend": m.backend, "batching": bool(m.metrics.batching),
                        "bound_ms": m.metrics.latency_bound_ms, "points": pts,
                        "searches": len(m.metrics.max_qps_repeats or []) or 1})
    return out


__all__ = ["SERVING_COLS", "SERVING_KEEP", "batching_verdict", "knee_curves", "serving_measurements", "serving_notes",
           "serving_rows"]


def serving_line(res: Results, task: str) -> str | None:
    """The first screen's line: per backend, each model's max QPS under the bound (its better batching
    setting) and the ratio to the teacher's; None without serving measurements."""
    ms = [m for m in serving_measurements(res, task) if m.metrics.max_qps]
    if not ms:
        return None
    parts = []
    for backend in dict.fromkeys(m.backend for m in ms):
        best: dict[str, Measurement] = {}
        for m in (m for m in ms if m.backend == backend):
            if m.model not in best or m.metrics.max_qps > best[m.model].metrics.max_qps:
                best[m.model] = m
        t = best.get(REFERENCE)
        bound = next(iter(best.values())).metrics.latency_bound_ms
        bits = []
        for role, m in best.items():
            how = "batching on" if m.metrics.batching else "no batching"
            r = ratio(m.metrics.max_qps, t.metrics.max_qps) if t and role != REFERENCE else None
            bits.append(f"{role} {m.metrics.max_qps:.0f} QPS ({how}" + (f", {r:.1f}x the teacher's)" if r else ")"))
        parts.append(f"on {backend}, p99 <= {bound:.3g} ms: " + ", ".join(bits))
    return "Under load (LoadGen Server, max QPS) " + "; ".join(parts) + "."
