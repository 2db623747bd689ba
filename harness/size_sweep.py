"""`harness sweep --student-scale ... | --student-widths ...`: students of several sizes, with and without
KD, as a Pareto table of validation accuracy against parameters, MACs and measured latency.

Selection happens on a validation split only. The split is carved (stratified) from the training data
exactly as the recipe sweep carves it (`harness.sweep.validation_view`). The teacher is trained once on
the fit part; every accuracy in the output, the teacher's included, is measured on the validation part,
and the test split is never read.

Work is split into independent units, one per (size, seed, role), each an executor job
(`harness.train.jobs.role_job`): `--executor local|pool|ray` runs them, finished ones are kept in
OUT/.jobs and a rerun resumes.

Latency: each size's architecture (and the teacher's) is exported to ONNX (`harness.export.export_onnx`)
and timed at batch 1 with ONNX Runtime on one thread by the measuring engine's own timer
(`LocalTimer` -> `time_callable`, the quick timing windows of `harness bench --quick`). Models are
timed one at a time in this process after all training is done. The timed model is a fresh build of the
size's config: the time a dense CNN takes does not depend on its weight values.

Pareto flag (KD student): a size is on the front when no other size's KD student is at least as good
on all three counts (mean validation accuracy up, parameters down, batch-1 p50 latency down) and
strictly better on one. Only students compete; the teacher is the reference.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from harness.fileio import atomic_write_json, atomic_write_text, ensure_writable_dir
from harness.size_sweep_report import format_table, render_html
from harness.size_sweep_sizes import (ROLES, StudentSize, StudentUnit, parse_scales, parse_widths, parse_within,
                                      plan_units, scaled_widths, student_sizes)
from harness.tasks.base import Dataset
from harness.train.trainer import TrainConfig

if TYPE_CHECKING:
    from harness.executor import Executor

log = logging.getLogger(__name__)

SIZE_SWEEP_SCHEMA = "kd-harness/size-sweep/1"
PARETO_DEFINITION = (
    "KD student of a size is Pareto-optimal when no other size's KD student has mean validation accuracy "
    ">= it, parameters <= it and batch-1 p50 latency <= it, with at least one strictly better; the "
    "teacher is not a competitor")
# The recipe sweep's grid options, as cli.py defaults them: a size sweep trains one recipe, so a
# changed grid option is a mistake the user should hear about.
GRID_DEFAULTS = {"temperatures": "1,2,4,8", "alphas": "0.1,0.5,0.9", "kd_losses": ["hinton"]}


# --------------------------------------------------------------------------- latency

def quick_timing():
    """`harness bench --quick`'s timing windows."""
    from harness.bench import BenchConfig

    return BenchConfig(quick=True, backends=["onnxruntime"], suites=["latency"], threads=1).timing()


def measure_latency(model_config: dict, input_shape: Sequence[int], onnx_path: str | Path, sample: np.ndarray,
                    timing=None) -> dict[str, Any]:
    """Batch-1 latency of one architecture under ONNX Runtime (1 thread): export, open, time, close."""
    import kd_models
    import torch

    from harness.backends.base import Artifact, BackendOptions, get_backend
    from harness.export import export_onnx
    from harness.measure.stats import summarize_ns
    from harness.measure.timers import LocalTimer

    torch.manual_seed(0)
    model = kd_models.build_model(model_config).eval()
    path = export_onnx(model, tuple(input_shape), onnx_path)
    options = BackendOptions(threads=1)
    timing = timing or quick_timing()
    session = get_backend("onnxruntime").open(Artifact(role=Path(onnx_path).stem, onnx=str(path)), options)
    try:
        batch = np.ascontiguousarray(sample[:1], dtype=np.float32)
        res = LocalTimer(session).time(batch, timing)
    finally:
        session.close()
    s = summarize_ns(res.samples_ns)
    return {"p50_ms": s["p50_ms"], "median_ci95_ms": s["median_ci95_ms"], "p10_ms": s["p10_ms"],
            "p90_ms": s["p90_ms"], "n": s["n"], "onnx": str(path)}


# --------------------------------------------------------------------------- selection

def pareto_flags(rows: Sequence[dict[str, Any]], role: str = "kd") -> list[bool]:
    """Per row: not dominated by another row in (mean val accuracy up, params down, p50 down)."""
    pts = [(r["val_accuracy"][role]["mean"], r["params"], r["latency"]["p50_ms"]) for r in rows]
    flags = []
    for i, (a, p, t) in enumerate(pts):
        dominated = any(
            a2 >= a and p2 <= p and t2 <= t and (a2 > a or p2 < p or t2 < t)
            for j, (a2, p2, t2) in enumerate(pts) if j != i)
        flags.append(not dominated)
    return flags


def smallest_within(rows: Sequence[dict[str, Any]], teacher_acc: float, within_pts: float,
                    role: str = "kd") -> dict[str, Any] | None:
    """The row with the fewest parameters (then the lowest p50) whose mean validation accuracy for
    `role` is at most `within_pts` points below the teacher's validation accuracy; None if no row is."""
    ok = [r for r in rows
          if 100 * (teacher_acc - r["val_accuracy"][role]["mean"]) <= within_pts + 1e-9]
    if not ok:
        return None
    return min(ok, key=lambda r: (r["params"], r["latency"]["p50_ms"]))


def _describe(r: dict[str, Any], role: str, teacher: dict[str, Any]) -> str:
    acc = r["val_accuracy"][role]["mean"]
    loss = 100 * (teacher["val_accuracy"] - acc)
    return (f"{r['label']} (widths {'-'.join(map(str, r['widths']))}, {r['params']:,} params, "
            f"{r['params_ratio']:.1f}x fewer than the teacher, {r['speedup']:.2f}x its batch-1 speed) "
            f"{'with KD' if role == 'kd' else 'from scratch'}: {100 * acc:.2f}% vs the teacher's "
            f"{100 * teacher['val_accuracy']:.2f}% on validation ({0.0 - loss:+.2f} pts)")


def selection_line(rows: Sequence[dict[str, Any]], teacher: dict[str, Any], within_pts: float) -> dict[str, Any]:
    """'the smallest student that loses <= X pt is ...', judged on mean validation accuracy."""
    kd = smallest_within(rows, teacher["val_accuracy"], within_pts, "kd")
    sc = smallest_within(rows, teacher["val_accuracy"], within_pts, "scratch")
    picks = [(r, role) for r, role in ((kd, "kd"), (sc, "scratch")) if r is not None]
    if not picks:
        best_r, best_role = max(((r, role) for r in rows for role in ("kd", "scratch")),
                                key=lambda x: (x[0]["val_accuracy"][x[1]]["mean"], -x[0]["params"]))
        line = (f"no student loses <= {within_pts:g} pt against the teacher: the closest is "
                + _describe(best_r, best_role, teacher))
    else:
        # the smaller of the KD and scratch picks; on a tie KD's (the same size, KD is the subject)
        r, role = min(picks, key=lambda x: (x[0]["params"], x[0]["latency"]["p50_ms"], x[1] != "kd"))
        line = f"the smallest student that loses <= {within_pts:g} pt is " + _describe(r, role, teacher)
        if role == "kd":
            line += ("; without KD no size does" if sc is None else
                     f"; without KD the smallest is {sc['label']}" if sc["label"] != r["label"] else
                     "; that size does it without KD too")
    check = teacher.get("fit_check") or {}
    if check and not check["fits"]:
        # A teacher that learned nothing makes every student "within X pts" of it: say so, in the line itself.
        line += (f". WARNING: the teacher fits only {100 * check['fitted']:.1f}% of its own training data (floor "
                 f"{100 * check['floor']:.1f}%), so this comparison says nothing about the sizes")
    return {"within_pts": within_pts, "judged_on": "mean validation accuracy vs the teacher's validation accuracy",
            "kd": kd["label"] if kd else None, "scratch": sc["label"] if sc else None, "line": line}


# --------------------------------------------------------------------------- the sweep

def _kd_vs_scratch(kd: Sequence[float], scratch: Sequence[float]) -> dict[str, Any]:
    """Paired KD - scratch difference in points (`trio.paired_gain`: gaps rounded to 1e-9 pts)."""
    from harness.train.trio import paired_gain

    return paired_gain(kd, scratch)


def run_size_sweep(data: Dataset, base: TrainConfig, seeds: list[int], out_dir: str | Path, *,
                   scales: list[float] | None = None, widths: list[list[int]] | None = None,
                   val_fraction: float = 0.2, within_pts: float = 1.0, timing=None,
                   executor: "Executor | None" = None) -> dict[str, Any]:
    """Train the teacher once and every (size, seed, role) unit as executor jobs (finished ones kept in
    OUT/.jobs, so a rerun resumes); then, with training over, time each size; write OUT/size_sweep.json
    and OUT/size_sweep.html. Returns the JSON document."""
    from tqdm.auto import tqdm

    from harness.measure.stats import mean_ci
    from harness.sweep import validation_view
    from harness.train.trainer import predict_logits
    from harness.executor import ExecutorConfig, LocalExecutor, ResultStore
    from harness.train.jobs import role_job
    from harness.train.trio import normalized_configs, train_checked_teacher

    within_pts = parse_within(within_pts)
    t0 = time.perf_counter()
    view = validation_view(data, val_fraction, seed=0)  # train -> (fit, validation); test untouched
    t_cfg, s_cfg, norm = normalized_configs(view, base.normalize)
    sizes = student_sizes(s_cfg, data.classes, scales=scales, widths=widths)  # bad sizes fail before any write
    out_dir = ensure_writable_dir(out_dir)
    units = plan_units(sizes, seeds)
    bar = tqdm(total=1 + len(units), desc=f"size sweep {data.name}", unit="model",
               disable=not log.isEnabledFor(logging.INFO), file=sys.stderr,
               mininterval=0.1 if sys.stderr.isatty() else 15.0)
    executor = executor or LocalExecutor(ExecutorConfig())
    cpus = executor.config.cpus()
    store = ResultStore(out_dir / ".jobs")
    shared = {"data": view}
    asked = base
    t_result, t_model, base, fit_check = train_checked_teacher(
        executor, view, base, lambda cfg: role_job(f"{data.name} size-sweep teacher", view, "teacher", t_cfg, cfg,
                                                   seeds[0], cpus=cpus), store=store)
    teacher = t_result["value"]
    bar.update(1)
    log.info(f"teacher: val acc {100 * teacher['accuracy']:.2f}%, {teacher['meta']['params']:,} params")
    kd_inputs = ({"teacher_state": teacher["state"], "teacher_config": t_cfg} if base.kd_logits == "live"
                 else {"teacher_logits": predict_logits(t_model, view.X_train)})
    jobs = {u: role_job(f"{data.name} size {u.size} {u.role} seed {u.seed}", view, u.role, u.model_config, base,
                        u.seed, cpus=cpus, **(kd_inputs if u.role == "student_kd" else {}))
            for u in units}
    done = executor.map(jobs.values(), shared=shared, store=store, on_result=lambda job, result: bar.update(1))
    results: list[dict] = []
    for u, job in jobs.items():
        value = done.results[job.key]["value"]
        results.append({"size": u.size, "role": u.role, "seed": u.seed, "val_accuracy": float(value["accuracy"]),
                        "params": int(value["meta"]["params"]), "macs": int(value["meta"]["macs"]),
                        "train_seconds": float(value["seconds"])})
    bar.close()
    executor.close()  # timing below never shares the machine with training workers (pool, local Ray)
    train_s = time.perf_counter() - t0

    onnx_dir = out_dir / "onnx"
    sample = view.X_train[:1]
    timing = timing or quick_timing()
    t_lat = measure_latency(t_cfg, view.input_shape, onnx_dir / "teacher.onnx", sample, timing)
    teacher_doc = {"model_config": t_cfg, "params": teacher["meta"]["params"], "macs": teacher["meta"]["macs"],
                   "val_accuracy": float(teacher["accuracy"]), "seed": seeds[0], "latency": t_lat}

    rows = []
    for size in sizes:
        mine = [r for r in results if r["size"] == size.label]
        by_role = {role: sorted((r for r in mine if r["role"] == role), key=lambda r: seeds.index(r["seed"]))
                   for role in ROLES}
        lat = measure_latency(size.config, view.input_shape, onnx_dir / f"student-{size.label}.onnx", sample, timing)
        params, macs = mine[0]["params"], mine[0]["macs"]
        acc = {}
        for role, key in (("student_scratch", "scratch"), ("student_kd", "kd")):
            per = [r["val_accuracy"] for r in by_role[role]]
            m, lo, hi = mean_ci(per)
            acc[key] = {"mean": m, "ci95": [max(0.0, lo), min(1.0, hi)], "per_seed": per}
        rows.append({
            "label": size.label, "scales": list(size.scales), "widths": list(size.widths),
            "model_config": size.config, "params": params, "macs": macs,
            "params_ratio": teacher_doc["params"] / params, "macs_ratio": teacher_doc["macs"] / max(1, macs),
            "latency": lat, "speedup": t_lat["p50_ms"] / lat["p50_ms"],
            "val_accuracy": acc,
            "kd_vs_scratch": _kd_vs_scratch(acc["kd"]["per_seed"], acc["scratch"]["per_seed"]),
            "loss_vs_teacher_pts": {k: 100 * (teacher_doc["val_accuracy"] - acc[k]["mean"]) for k in acc},
            "train_seconds": {k: [r["train_seconds"] for r in by_role[role]]
                              for role, k in (("student_scratch", "scratch"), ("student_kd", "kd"))},
            **({"note": size.note} if size.note else {}),
        })
    rows.sort(key=lambda r: (r["params"], r["latency"]["p50_ms"]))
    for r, flag in zip(rows, pareto_flags(rows, "kd")):
        r["pareto"] = flag
    teacher_doc["fit_check"] = fit_check
    selection = selection_line(rows, teacher_doc, within_pts)
    doc = {
        "schema": SIZE_SWEEP_SCHEMA,
        "task": data.name,
        "kind": data.kind,
        "classes": data.classes,
        "seeds": seeds,
        "sizes_from": ({"student_scale": scales} if scales else {"student_widths": widths}),
        "validation": {"fraction": val_fraction, "n_fit": int(len(view.y_train)), "n_val": int(len(view.y_test)),
                       "stratified": True,
                       "selected_on": "validation split of train (test split never used)"},
        "normalize": norm,
        "train_config": asked.to_dict(),
        **({"effective_train_config": base.to_dict()} if base != asked else {}),
        "teacher": teacher_doc,
        "rows": rows,
        "pareto_definition": PARETO_DEFINITION,
        "smallest_within": selection,
        "latency_setup": {"backend": "onnxruntime", "threads": 1, "batch_size": 1, "timing": timing.to_dict(),
                          "model": "a fresh build of each config, timed one at a time in one process"},
        "seconds": {"train": train_s, "total": time.perf_counter() - t0},
    }
    atomic_write_json(out_dir / "size_sweep.json", doc)
    atomic_write_text(out_dir / "size_sweep.html", render_html(doc))
    return doc


# Option parsing, sizes and units (`harness.size_sweep_sizes`) and the table and page
# (`harness.size_sweep_report`) live in modules of their own; callers import them from here.
__all__ = ["GRID_DEFAULTS", "PARETO_DEFINITION", "ROLES", "SIZE_SWEEP_SCHEMA", "StudentSize", "StudentUnit",
           "format_table", "measure_latency", "pareto_flags", "parse_scales", "parse_widths", "parse_within",
           "plan_units", "quick_timing", "render_html", "run_size_sweep", "scaled_widths", "selection_line",
           "smallest_within", "student_sizes"]
