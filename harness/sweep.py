"""`harness sweep`: find a KD recipe that works for a teacher/student pair, on a validation split.

The validation split is carved (stratified) from the training data; the test split is never looked
at, so the chosen recipe can be measured honestly on it afterwards by `harness train --recipe`.
"""
from __future__ import annotations

import itertools
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from harness.errors import OptionError
from harness.options import parse_list
from harness.fileio import atomic_write_json, ensure_writable_dir
from harness.tasks.base import Dataset
from harness.tasks.streamed import take_rows
from harness.train.losses import check_alpha, check_temperature
from harness.train.recipes import save_recipe
from harness.train.trainer import TrainConfig, predict_logits
from harness.train.trio import normalized_configs, stratified_split, train_checked_teacher

if TYPE_CHECKING:
    from harness.executor import Executor

log = logging.getLogger(__name__)

SWEEP_SCHEMA = "kd-harness/sweep/1"


def parse_float_list(text: str, name: str) -> list[float]:
    return parse_list(text, name, float, "numbers")


@dataclass(frozen=True)
class SweepGrid:
    """The KD cells a sweep trains (loss x temperature x alpha); validated on construction."""

    temperatures: list[float]
    alphas: list[float]
    kd_losses: list[str]

    def __post_init__(self) -> None:
        if not self.temperatures or not self.alphas or not self.kd_losses:
            raise OptionError("sweep grid lists must not be empty")
        for T in self.temperatures:
            check_temperature(T)
        for a in self.alphas:
            check_alpha(a)
        for loss in self.kd_losses:
            if loss not in ("hinton", "dkd", "at"):
                raise OptionError(f"unknown KD loss {loss!r} in sweep; choose hinton, dkd or at")

    def cells(self) -> list[dict[str, Any]]:
        return [{"kd_loss": k, "temperature": T, "alpha": a}
                for k, T, a in itertools.product(self.kd_losses, self.temperatures, self.alphas)]


def validation_view(data: Dataset, fraction: float, seed: int) -> Dataset:
    """The training data split into fit (returned as train) and validation (returned as test)."""
    if not (0.0 < fraction < 1.0):
        raise OptionError(f"validation fraction must be in (0, 1), got {fraction!r}")
    fit_idx, val_idx = stratified_split(data.y_train, fraction, seed)
    if len(val_idx) == 0:
        raise OptionError("training set too small to carve a validation split")
    return Dataset(name=data.name, kind=data.kind, X_train=take_rows(data.X_train, fit_idx), y_train=data.y_train[fit_idx],
                   X_test=take_rows(data.X_train, val_idx), y_test=data.y_train[val_idx], classes=data.classes,
                   class_names=data.class_names, source=f"{data.source} (validation split of train)")


def _accuracy_ci(accs: list[float]) -> tuple[float, float, float]:
    """Mean and t-interval of accuracies, clipped to [0, 1]: with two seeds a t-interval overshoots."""
    from harness.measure.stats import mean_ci

    mean, lo, hi = mean_ci(accs)
    return mean, max(0.0, lo), min(1.0, hi)


def run_sweep(data: Dataset, base: TrainConfig, grid: SweepGrid, seeds: list[int], out_dir: str | Path, *,
              val_fraction: float = 0.2, executor: "Executor | None" = None,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Teacher once, then every seed's scratch student and every (cell, seed) KD student as independent
    jobs on the executor. Finished jobs are kept in OUT/.jobs by content key: a rerun resumes."""
    from tqdm.auto import tqdm

    from harness.executor import ExecutorConfig, LocalExecutor, ResultStore
    from harness.measure.stats import paired_difference
    from harness.train.jobs import role_job

    out_dir = ensure_writable_dir(out_dir)
    executor = executor or LocalExecutor(ExecutorConfig())
    cpus = executor.config.cpus()
    store = ResultStore(out_dir / ".jobs")
    view = validation_view(data, val_fraction, seed=0)
    t_cfg, s_cfg, _norm = normalized_configs(view, base.normalize)
    cells = grid.cells()
    for cell in cells:  # a cell the base cannot train (at on cached logits) fails before the teacher trains
        base.with_overrides(**cell)
    bar = tqdm(total=1 + len(seeds) * (1 + len(cells)), desc=f"sweep {data.name}", unit="model",
               disable=not log.isEnabledFor(logging.INFO), file=sys.stderr,
               mininterval=0.1 if sys.stderr.isatty() else 15.0)
    t0 = time.perf_counter()
    shared = {"data": view}
    asked = base
    t_result, t_model, base, fit_check = train_checked_teacher(
        executor, view, base, lambda cfg: role_job(f"{data.name} sweep teacher", view, "teacher", t_cfg, cfg,
                                                   seeds[0], cpus=cpus), store=store)
    bar.update(1)
    teacher_acc = t_result["value"]["accuracy"]
    live_inputs = {"teacher_state": t_result["value"]["state"], "teacher_config": t_cfg}
    cached_inputs = {"teacher_logits": predict_logits(t_model, view.X_train)}

    scratch_jobs = [role_job(f"{data.name} sweep scratch seed {seed}", view, "student_scratch", s_cfg, base, seed,
                             cpus=cpus) for seed in seeds]
    cell_jobs = []
    for cell in cells:
        cfg = base.with_overrides(**cell)
        inputs = live_inputs if cfg.kd_logits == "live" else cached_inputs
        label = f"{cell['kd_loss']} T={cell['temperature']:g} alpha={cell['alpha']:g}"
        cell_jobs.append([role_job(f"{data.name} sweep {label} seed {seed}", view, "student_kd", s_cfg, cfg, seed,
                                   cpus=cpus, **inputs) for seed in seeds])

    # Rows are printed as soon as all of a cell's seeds are in (any order under a parallel executor).
    accs: dict[str, float] = {}
    rows: list[dict[str, Any] | None] = [None] * len(cells)
    scratch: list[float] = []
    scratch_row: dict[str, Any] = {}

    def on_result(job, result) -> None:
        bar.update(1)
        accs[job.key] = result["value"]["accuracy"]
        if not scratch_row and all(j.key in accs for j in scratch_jobs):
            scratch[:] = [accs[j.key] for j in scratch_jobs]
            sc_mean, sc_lo, sc_hi = _accuracy_ci(scratch)
            scratch_row.update({"cell": "scratch",
                                "val_accuracy": {"mean": sc_mean, "ci95": [sc_lo, sc_hi], "per_seed": scratch}})
            if on_row:
                on_row(scratch_row)
        if not scratch_row:
            return
        for i, jobs in enumerate(cell_jobs):
            if rows[i] is None and all(j.key in accs for j in jobs):
                cell_accs = [accs[j.key] for j in jobs]
                mean, lo, hi = _accuracy_ci(cell_accs)
                rows[i] = {"cell": cells[i], "val_accuracy": {"mean": mean, "ci95": [lo, hi], "per_seed": cell_accs},
                           "vs_scratch": paired_difference(np.array(cell_accs) * 100, np.array(scratch) * 100)}
                if on_row:
                    on_row(rows[i])

    # Scratch jobs go first so the scratch row (the baseline every cell is compared with) prints early.
    outcome = executor.map([*scratch_jobs, *(j for jobs in cell_jobs for j in jobs)], shared=shared, store=store,
                           on_result=on_result)
    bar.close()
    # Highest mean validation accuracy; ties go to the smaller spread, then to the earlier cell.
    best = max(rows, key=lambda r: (round(r["val_accuracy"]["mean"], 6),
                                    -(r["val_accuracy"]["ci95"][1] - r["val_accuracy"]["ci95"][0])))
    chosen = base.with_overrides(**best["cell"])
    doc = {
        "schema": SWEEP_SCHEMA,
        "task": data.name,
        "seeds": seeds,
        "validation": {"fraction": val_fraction, "n_fit": int(len(view.y_train)), "n_val": int(len(view.y_test)),
                       "stratified": True, "selected_on": "validation split of train (test split never used)"},
        "teacher_val_accuracy": teacher_acc,
        "teacher_fit_check": fit_check,
        "scratch": scratch_row,
        "cells": rows,
        "chosen": {"cell": best["cell"], "val_accuracy": best["val_accuracy"], "vs_scratch": best["vs_scratch"]},
        "base_config": asked.to_dict(),
        **({"effective_base_config": base.to_dict()} if base != asked else {}),
        "seconds": time.perf_counter() - t0,
        "executor": {**executor.config.describe(), "jobs_resumed": len(outcome.resumed),
                     "jobs_ran_on": sorted({r.get("host", "?") for r in outcome.results.values()})},
        "per_cell_weights_sha256": {j.name: outcome.results[j.key]["value"]["weights_sha256"]
                                    for jobs in cell_jobs for j in jobs},
    }
    atomic_write_json(out_dir / "sweep.json", doc)
    save_recipe(out_dir / "recipe.json", chosen, task=data.name,
                evidence={"sweep": str(out_dir / "sweep.json"), **doc["chosen"], "scratch": scratch_row["val_accuracy"]})
    return doc


def format_row(row: dict[str, Any]) -> str:
    acc = row["val_accuracy"]
    lo, hi = acc["ci95"]
    if row["cell"] == "scratch":
        name = "scratch student"
        extra = ""
    else:
        c = row["cell"]
        name = f"{c['kd_loss']} T={c['temperature']:g} alpha={c['alpha']:g}"
        vs = row["vs_scratch"]
        p = vs.get("p_value")
        extra = f"  vs scratch {vs['diff_pts']:+.2f} pts" + (f" (p={p:.3g})" if p is not None else "")
    return f"{name:<32} val acc {100 * acc['mean']:6.2f}%  [{100 * lo:6.2f}, {100 * hi:6.2f}]{extra}"
