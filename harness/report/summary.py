"""The report's first screen, per task: what to deploy, what distillation bought, one compact table and a
few caveats grouped by cause. Everything else stays in the detail (`--details`, md, csv, json, html).

    summarize(res, label, task, target) -> TaskSummary

What to deploy is chosen across every model of the task (the fp32 trio and its variants, `student_kd@int8`)
on every runtime it was timed on: of the models that keep the quality target (default >= 99% of the fp32
teacher's accuracy, MLPerf's rule), the one with the lowest p50 at the smallest timed batch. Its speedup is
the paired one against the fp32 teacher on the same runtime (the figure with a CI); runtimes are compared by
their p50s. The teacher always keeps the target, so there is always an answer; when it is the teacher, the
sentence says which student came closest. A variant slower than its own fp32 model is named as not paying.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from harness.report.derived import speedups
from harness.report.lookup import (
    REFERENCE, backend_order, find, measured_accuracy, model_sizes, opts_key, ratio, role_order, summary_accuracy,
    split_role, task_measurements, task_roles, variant_failure,
)
from harness.report.notes import fmt_p
from harness.report.serving import serving_line
from harness.report.variants import INT8_ISA_FLAGS, QUALITY_TARGET, _accuracy, _teacher_accuracy
from harness.results import Results

TIMED = ("latency", "paired")
TIE = 0.05  # p50s closer than this do not rank two models (isolated p50s move this much between processes)


@dataclass
class TaskSummary:
    source: str
    task: str
    deploy: str  # the verdict: what to deploy, its speedup, accuracy and size
    distillation: str | None  # what KD bought over the same student trained from scratch
    rows: list[dict[str, Any]]  # the compact table, one row per model on its fastest runtime
    caveats: list[str] = field(default_factory=list)  # grouped by cause, each with what to do
    batch: int | None = None  # the batch size the speedups and the choice are at
    target: float = QUALITY_TARGET
    serving: str | None = None  # the serving suite's max QPS under the bound (harness.report.serving)


def _timing_group(res: Results, task: str) -> tuple[int | None, str] | None:
    """(threads, options key) of the task's timings, the first when several; None when nothing was timed."""
    keys = sorted({(m.threads, opts_key(m)) for m in task_measurements(res, task) if m.suite in TIMED},
                  key=lambda k: (k[0] is None, k[0] or 0, k[1]))
    return keys[0] if keys else None


def _p50(res: Results, task: str, role: str, backend: str, batch: int, threads, opts) -> float | None:
    lat = find(res, task, "latency", role, backend, batch, threads, opts)
    if lat is not None and lat.metrics.p50_ms is not None:
        return lat.metrics.p50_ms
    if role == REFERENCE:
        ms = [m for m in task_measurements(res, task, "paired") if m.backend == backend and m.batch_size == batch
              and m.threads == threads and m.metrics.teacher_p50_ms is not None]
        return min(m.metrics.teacher_p50_ms for m in ms) if ms else None
    paired = find(res, task, "paired", role, backend, batch, threads, opts)
    return paired.metrics.student_p50_ms if paired is not None else None


def _largest(res: Results, task: str, suite: str, role: str, backend: str, threads) -> Any:
    ms = [m for m in task_measurements(res, task, suite) if m.model == role and m.backend == backend
          and m.threads == threads]
    return max(ms, key=lambda m: m.batch_size) if ms else None


def _smallest(res: Results, task: str, suite: str, role: str, backend: str, threads) -> Any:
    ms = [m for m in task_measurements(res, task, suite) if m.model == role and m.backend == backend
          and m.threads == threads]
    return min(ms, key=lambda m: m.batch_size) if ms else None


def model_rows(res: Results, task: str, target: float = QUALITY_TARGET) -> tuple[list[dict[str, Any]], int | None]:
    """Every model of the task on every runtime it was timed on, at the smallest timed batch size."""
    group = _timing_group(res, task)
    threads, opts = group if group else (None, "")
    timed = [m for m in task_measurements(res, task) if m.suite in TIMED and m.threads == threads]
    batch = min((m.batch_size for m in timed), default=None)
    sp = speedups(res, task)
    teacher_bytes = model_sizes(res, task, REFERENCE).onnx_bytes
    rows = []
    for role in task_roles(res, task):
        if variant_failure(res, task, role) is not None:
            continue
        acc = _accuracy(res, task, role)
        teacher = _teacher_accuracy(res, task, acc.get("seeds", False))
        a = acc.get("acc")
        of = 100 * a / teacher if a is not None and teacher else None
        backends = backend_order(m.backend for m in timed if m.model == role or (
            role == REFERENCE and m.suite == "paired"))
        ci = acc.get("ci")
        if ci and ci[0] == ci[1]:  # one seed: a CI of zero width says nothing
            ci = None
        base = {"model": role, "acc_pct": a, "acc_ci": ci, "acc_basis": acc.get("basis"),
                "vs_teacher_pts": a - teacher if a is not None and teacher is not None else None,
                "of_teacher_pct": of, "meets_target": of is not None and of >= 100 * target - 1e-9,
                "size_ratio": ratio(model_sizes(res, task, role).onnx_bytes, teacher_bytes),
                "onnx_bytes": model_sizes(res, task, role).onnx_bytes}
        for backend in backends or [None]:
            row = dict(base, runtime=backend, batch=batch, threads=threads)
            own = measured_accuracy(res, task, role, backend) if backend and split_role(role)[1] else None
            if own is not None and teacher:  # a variant's accuracy is the runtime's own: OpenVINO's int8 kernels
                # round differently from ONNX Runtime's (a variant has one build, no seeds)
                row.update(acc_pct=own, acc_ci=None, acc_basis=f"measured on {backend}",
                           vs_teacher_pts=own - teacher, of_teacher_pct=100 * own / teacher,
                           meets_target=100 * own / teacher >= 100 * target - 1e-9)
            if backend is not None and batch is not None:
                row["p50_ms"] = _p50(res, task, role, backend, batch, threads, opts)
                lat = find(res, task, "latency", role, backend, batch, threads, opts)
                row["p50_ci"] = lat.metrics.median_ci95_ms if lat is not None else None
                s = sp.get((role, backend, batch, threads, opts))
                if role == REFERENCE:
                    row["speedup"], row["speedup_ci"], row["speedup_basis"] = 1.0, None, "reference"
                elif s is not None:
                    row["speedup"], row["speedup_ci"], row["speedup_basis"] = s.value, s.ci, s.basis
                thr = _largest(res, task, "throughput", role, backend, threads)
                if thr is not None and thr.metrics.samples_per_s is not None:
                    row["throughput_sps"], row["throughput_batch"] = thr.metrics.samples_per_s, thr.batch_size
                mem = _smallest(res, task, "memory", role, backend, threads)
                if mem is not None:
                    mb = mem.metrics.peak_rss_increase_mb
                    row["peak_mem_mb"] = mb if mb is not None else mem.metrics.peak_rss_mb
            rows.append(row)
    return rows, batch


def _fastest_per_model(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: its runtime with the lowest p50 (the first runtime when none was timed)."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        cur = best.get(r["model"])
        if cur is None or (r.get("p50_ms") is not None and (cur.get("p50_ms") is None or r["p50_ms"] < cur["p50_ms"])):
            best[r["model"]] = r
    return list(best.values())


def _speed_text(r: dict[str, Any]) -> str:
    sp = r.get("speedup")
    if sp is None:
        return f"{r['p50_ms']:.3g} ms at batch {r['batch']}" if r.get("p50_ms") is not None else "not timed"
    word, val = ("faster", sp) if sp >= 1 else ("slower", 1 / sp)
    s = f"{val:.1f}x {word} than the fp32 teacher at batch {r['batch']}"
    ci = r.get("speedup_ci")
    if ci:
        s += f" [CI {ci[0]:.2f}, {ci[1]:.2f}]" if sp >= 1 else f" [CI {1 / ci[1]:.2f}, {1 / ci[0]:.2f}]"
    return s


def _acc_text(r: dict[str, Any]) -> str:
    if r.get("acc_pct") is None:
        return "accuracy not measured"
    s = f"{r['acc_pct']:.1f}% accuracy"
    if r.get("vs_teacher_pts") is not None and r["model"] != REFERENCE:
        s += f" ({r['vs_teacher_pts']:+.1f} pts, {r['of_teacher_pct']:.1f}% of the teacher's)"
    return s


def deploy_verdict(rows: list[dict[str, Any]], target: float = QUALITY_TARGET) -> str:
    """What to deploy: the fastest (model, runtime) that keeps the target; the teacher when no student does."""
    goal = f">= {100 * target:g}% of the fp32 teacher's accuracy"
    timed = [r for r in rows if r.get("p50_ms") is not None]
    keep = [r for r in timed if r.get("meets_target")]
    if not timed:
        return "Nothing was timed, so no model can be recommended."
    if not keep:
        return f"No timed model keeps {goal}."
    fastest = min(r["p50_ms"] for r in keep)
    # within TIE of the fastest p50 the timings do not separate the models: the more accurate one wins,
    # then the one with the higher paired speedup (the figure the table shows), then the lower p50
    tied = [r for r in keep if r["p50_ms"] <= fastest * (1 + TIE)]
    # (paired speedups are against the teacher on each row's own runtime: comparable only within one runtime)
    one_runtime = len({r.get("runtime") for r in tied}) == 1
    best = max(tied, key=lambda r: (round(r.get("acc_pct") or 0.0, 6),
                                    (r.get("speedup") or 0.0) if one_runtime else 0.0, -r["p50_ms"]))
    where = f"{best['model']} on {best['runtime']}"
    if best["model"] != REFERENCE:
        text = f"Deploy {where}: {_speed_text(best)}, {_acc_text(best)}"
        if best.get("size_ratio"):
            sr = best["size_ratio"]
            text += f", {1 / sr:.1f}x smaller" if sr <= 1 else f", {sr:.1f}x larger"
        return text + f"; it keeps {goal}."
    text = f"Deploy the teacher on {best['runtime']} ({best['p50_ms']:.3g} ms at batch {best['batch']}): no student keeps {goal}"
    students = [r for r in _fastest_per_model(timed) if r["model"] != REFERENCE and r.get("of_teacher_pct") is not None]
    if students:
        close = max(students, key=lambda r: (r["of_teacher_pct"], r.get("speedup") or 0))
        text += f"; the closest, {close['model']} on {close['runtime']}, has {_acc_text(close)} and is {_speed_text(close)}"
    return text + "."


def distillation_line(res: Results, task: str) -> str | None:
    """KD student minus the same student trained from scratch (training seeds), with its CI and test."""
    roles = task_roles(res, task)
    if "student_kd" not in roles or "student_scratch" not in roles:
        return None
    from harness.report.tables import kd_vs_scratch

    rows = kd_vs_scratch(res, task)
    if not rows:
        return None
    k = rows[0]
    s = f"Distillation: {k['diff_pts']:+.1f} pts over the same student trained from scratch"
    seeds = len(summary_accuracy(res, task, "student_kd").get("per_seed") or [])
    if str(k.get("basis") or "") == "training seeds" and seeds < 2:
        return s + " (one training seed: no CI or test; --seeds 0,1,2 gives both)."
    if k.get("ci_lo_pts") is not None:
        s += f" [CI {k['ci_lo_pts']:+.1f}, {k['ci_hi_pts']:+.1f}]"
    if k.get("p_value") is not None:
        s += f", {fmt_p(k['p_value'])}"
    basis = str(k.get("basis") or "")
    s += f" ({basis}{f', {seeds} seeds' if seeds > 1 else ''})" if basis else ""
    if k.get("ci_lo_pts") is not None:
        significant = k["ci_lo_pts"] > 0 or k["ci_hi_pts"] < 0
        s += ": significant" if significant else ": not significant"
    return s + "."


def int8_line(res: Results, rows: list[dict[str, Any]]) -> str | None:
    """Variants slower than their own fp32 model on the same runtime and batch: quantization does not pay.
    Judged from the two speedups over the same fp32 teacher blocks (the paired suite), so it agrees with the
    table: slower when the variant's whole speedup CI lies below its fp32 model's speedup."""
    by = {(r["model"], r.get("runtime")): r for r in rows}
    slower = []
    for r in rows:
        base, variant = split_role(r["model"])
        fp32 = by.get((base, r.get("runtime")))
        if variant is None or fp32 is None or r.get("speedup") is None or fp32.get("speedup") is None:
            continue
        hi = (r.get("speedup_ci") or (r["speedup"], r["speedup"]))[1]
        if hi < fp32["speedup"]:
            slower.append((r.get("runtime"), f"{r['model']} {fp32['speedup'] / r['speedup']:.1f}x"))
    if not slower:
        return None
    runtimes = list(dict.fromkeys(rt for rt, _ in slower))
    where = f" on {', '.join(str(rt) for rt in runtimes)}" if len({r.get("runtime") for r in rows}) > 1 else ""
    slower = [text if len(runtimes) == 1 else f"{text} on {rt}" for rt, text in slower]
    isa = (res.environment or {}).get("cpu_isa")
    why = ""
    if isinstance(isa, list):
        have = [f for f in INT8_ISA_FLAGS if f in isa]
        why = (f" (this CPU has {', '.join(have)})" if have else
               " (this CPU has no int8 dot-product instructions: no VNNI, no AMX)")
    return f"Int8 does not pay{where} here{why}: slower than the same model in fp32 ({', '.join(slower)})."


# -- caveats: warnings grouped by cause --------------------------------------------------------------

UNSTEADY = ("long tail", "wide spread", "imprecise median", "between processes", "drift", "only # samples",
            "only # of # rounds in a process")
CAUSE_ADVICE = {
    "unsteady timing": "close other programs and rerun; speedups are paired rounds, which cancel most of it",
    "too short to time": "time a larger batch (--batch-sizes) so the call is long against the timer",
    "parity": "the ONNX export changes the model's output: check unsupported or custom operators",
    "variant failed": "the variant was left out; see the detail for why",
    "validity": "something else ran beside the timing: rerun on an idle machine",
    "peak": "see the detail's performance notes",
}


def cause_of(message: str) -> str:
    """A warning's cause: its text before the first colon, numbers masked ("only # samples")."""
    head = message.split(":", 1)[0].strip()
    return re.sub(r"\d+(\.\d+)?", "#", head)


def _category(cause: str) -> str:
    if cause in UNSTEADY or cause.startswith("only #"):
        return "unsteady timing"
    if cause.startswith("harness overhead") or "timer resolution" in cause or cause.startswith("median ("):
        return "too short to time"
    return cause


def _subject(model: str, message: str, roles: list[str]) -> tuple[str, str]:
    """Whom a warning is about, and the warning without that prefix: a role the message starts with
    ("teacher: wide spread: ...", the paired suite's reference blocks) or names as "<role>'s", else the
    measured model; so a warning about the teacher's blocks counts once for the teacher, not once per
    student it was paired with."""
    for r in roles:
        if message.startswith(f"{r}: "):
            return r, message[len(r) + 2:]
    for r in roles:
        if f"{r}'s" in message:
            return r, message
    return model, message


def grouped_warnings(res: Results, task: str) -> list[dict[str, Any]]:
    """[{"category", "causes": {cause: count}, "models": [...], "backends": [...], "count"}], largest first.
    Each (model, backend, cause) counts once, however many batch sizes or suites repeat it."""
    roles = task_roles(res, task)
    seen: dict[tuple[str, str, str], str] = {}
    for m in task_measurements(res, task):
        for w in m.warnings:
            who, msg = _subject(m.model, str(w), roles)
            seen.setdefault((who, m.backend, cause_of(msg)), msg)
    groups: dict[str, dict[str, Any]] = {}
    for (model, backend, cause), msg in seen.items():
        cat = _category(cause)
        g = groups.setdefault(cat, {"category": cat, "causes": {}, "models": {}, "backends": {}, "count": 0,
                                    "example": msg})
        g["causes"][cause] = g["causes"].get(cause, 0) + 1
        g["models"][model] = None
        g["backends"][backend] = None
        g["count"] += 1
    out = sorted(groups.values(), key=lambda g: -g["count"])
    for g in out:
        g["models"], g["backends"] = role_order(g["models"]), backend_order(g["backends"])
    return out


def caveat_lines(res: Results, task: str, validity: list[dict[str, Any]] | None = None,
                 peak_notes: list[str] | None = None) -> list[str]:
    out = []
    for g in grouped_warnings(res, task):
        cat = g["category"]
        ranked = sorted(g["causes"].items(), key=lambda cn: -cn[1])  # the commonest cause first
        causes = ", ".join(f"{c} {n}" if n > 1 else c for c, n in ranked)
        advice = CAUSE_ADVICE.get(cat)
        who = ", ".join(g["models"][:3]) + (f" +{len(g['models']) - 3}" if len(g["models"]) > 3 else "")
        line = f"{cat.capitalize()} ({causes}) on {who} [{', '.join(g['backends'])}]"
        out.append(line + (f": {advice}." if advice else f": {g['example'].split(':', 1)[-1].strip()}"))
    failed = [v for v in (validity or []) if v.get("valid") is False]
    if failed:
        who = sorted({f"{v['model']}/{v['backend']}" for v in failed})
        out.append(f"Validity check failed on {len(failed)} paired run(s) ({', '.join(who[:3])}): "
                   f"{CAUSE_ADVICE['validity']}.")
    if peak_notes:
        out.append(f"{len(peak_notes)} timing(s) above 100% of the measured peak: {CAUSE_ADVICE['peak']}.")
    for role in task_roles(res, task):
        why = variant_failure(res, task, role)
        if why is not None:
            out.append(f"{role} failed to build or load: {why}")
    return out


def best_runtime_line(rows: list[dict[str, Any]]) -> str:
    """With several runtimes timed: the KD student (else the first student) on its fastest runtime against
    the fp32 teacher on the teacher's own fastest runtime, beside the same-runtime (paired) speedup. The
    cross-runtime figure is a ratio of two latency-suite medians from different processes, not paired; its
    interval is the conservative one from the two medians' CIs."""
    timed = [r for r in rows if r.get("p50_ms") is not None and r.get("runtime")]
    if len({r["runtime"] for r in timed}) < 2:
        return ""
    best = {r["model"]: r for r in _fastest_per_model(timed)}
    teacher = best.get(REFERENCE)
    students = [m for m in best if m != REFERENCE and "@" not in m]
    if teacher is None or not students:
        return ""
    st = best["student_kd"] if "student_kd" in best else best[students[0]]
    if st["runtime"] == teacher["runtime"]:  # both fastest on one runtime: the paired speedup says it all
        return ""
    ratio = teacher["p50_ms"] / st["p50_ms"]
    tci, sci = teacher.get("p50_ci"), st.get("p50_ci")
    ci = f" [CI {tci[0] / sci[1]:.2f}, {tci[1] / sci[0]:.2f}]" if tci and sci else ""
    same = next((r for r in timed if r["model"] == st["model"] and r["runtime"] == st["runtime"]), st)
    same_text = f"; on {same['runtime']} alone {same['speedup']:.1f}x (paired)" if same.get("speedup") else ""
    return (f"Each on its fastest runtime: {st['model']} on {st['runtime']} ({st['p50_ms']:.3g} ms) vs the "
            f"teacher on {teacher['runtime']} ({teacher['p50_ms']:.3g} ms): {ratio:.1f}x{ci} at batch "
            f"{st['batch']} (latency medians, not paired){same_text}.")


def summarize(res: Results, label: str, task: str, target: float = QUALITY_TARGET,
              validity: list[dict[str, Any]] | None = None, peak_notes: list[str] | None = None) -> TaskSummary:
    rows, batch = model_rows(res, task, target)
    deploy = deploy_verdict(rows, target)
    extra = " ".join(x for x in (best_runtime_line(rows), int8_line(res, [r for r in rows if r.get("batch") == batch]))
                     if x)
    return TaskSummary(source=label, task=task, deploy=deploy + (f" {extra}" if extra else ""),
                       distillation=distillation_line(res, task), rows=_fastest_per_model(rows),
                       caveats=caveat_lines(res, task, validity, peak_notes) + why_lines(res, task), batch=batch,
                       target=target, serving=serving_line(res, task))


def why_lines(res: Results, task: str, limit: int = 2) -> list[str]:
    """From a `bench --profile` pass: why an int8 variant or a runtime is slower, one line each."""
    if not any(m.suite == "profile" for m in res.measurements):
        return []
    from harness.profile_cli import explanations, profiles_from_results

    # the largest gaps first: they are the ones a reader acts on
    lines = explanations(profiles_from_results(res, task))
    lines.sort(key=lambda ln: -float(re.search(r" is ([0-9.]+)x slower", ln).group(1)) if re.search(
        r" is ([0-9.]+)x slower", ln) else 0.0)
    return [f"Why: {line}" for line in lines[:limit]]
