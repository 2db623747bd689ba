"""The trio's teacher: trained and checked against its own training data, or taken from a user's checkpoint.

A teacher that learned nothing makes every student comparison meaningless, so trio, KD sweep and size
sweep all settle their teacher here; a user's trained teacher (`--teacher-checkpoint`) is measured and
checked the same way, and never retrained.
"""
from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.tasks.base import Dataset
from harness.train.trainer import TrainConfig, accuracy

if TYPE_CHECKING:
    from harness.executor import Executor

log = logging.getLogger(__name__)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, val) with val ~ fraction of each class; classes too small to split stay in fit."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    counts = np.bincount(y)
    splittable = np.isin(y, np.flatnonzero(counts >= 2))
    fit_idx, val_idx = train_test_split(
        idx[splittable], test_size=fraction, random_state=seed, stratify=y[splittable]
    )
    fit_idx = np.sort(np.concatenate([fit_idx, idx[~splittable]]))
    return fit_idx, np.sort(val_idx)


def teacher_split(data: Dataset, cfg: TrainConfig, seeds: list[int]):
    """(fit, validation) indices of the training split when the teacher is calibrated, else (None, None)."""
    if cfg.calibrate_teacher:
        return stratified_split(data.y_train, 0.2, seeds[0])
    return None, None


def fit_floor(classes: int) -> float:
    """Halfway from chance to a perfect fit: a teacher below it on its own (clean) training data has not
    learned the task. Healthy teachers of the panel's sets sit at 0.97-1.0; a failed one at chance."""
    chance = 1.0 / max(2, classes)
    return chance + 0.5 * (1.0 - chance)


def teacher_fit_check(model, data: Dataset, fit_idx, cfg: TrainConfig) -> dict[str, Any]:
    """The teacher's accuracy on the clean data it was fitted on (training data only, never the test split)."""
    from harness.tasks.streamed import take_rows

    X, y = (data.X_train, data.y_train) if fit_idx is None else (take_rows(data.X_train, fit_idx), data.y_train[fit_idx])
    acc = accuracy(model, X, y)
    floor = fit_floor(data.classes)
    out: dict[str, Any] = {"train_accuracy": acc, "floor": floor, "passed": acc >= floor}
    if not out["passed"] and cfg.augment:
        out["retrain_without_augment"] = True
        out["why"] = (f"the teacher fits only {100 * acc:.1f}% of its own training data with augmentation (floor "
                      f"{100 * floor:.1f}%, halfway from chance to perfect): training it and its students without augmentation")
    elif not out["passed"]:
        out["why"] = f"the teacher fits only {100 * acc:.1f}% of its own training data (floor {100 * floor:.1f}%)"
    return out


def teacher_job(data: Dataset, cfg: TrainConfig, seeds: list[int], t_cfg: dict, *, cpus: int,
                show_progress: bool = False):
    """The trio's teacher as an executor job; the same key wherever it is built (a panel trains every
    task's teacher up front, and train_trio then finds it finished)."""
    from harness.train.jobs import role_job

    fit_idx, _ = teacher_split(data, cfg, seeds)
    return role_job(f"{data.name} teacher", data, "teacher", t_cfg, cfg, seeds[0], cpus=cpus,
                    show_progress=show_progress, fit_idx=fit_idx)


def train_checked_teacher(executor: "Executor", data: Dataset, cfg: TrainConfig, make_job, *, store,
                          fit_idx=None) -> tuple[dict, Any, TrainConfig, dict[str, Any]]:
    """Train (or resume) the teacher job `make_job(cfg)` and check that it fits its own training data.

    A teacher below `fit_floor` with augmentation on is trained again without it (seen on ACSF1, whose
    1-sample pulse trains do not survive the shift) and kept if it fits better; the returned config is
    then the one every student of the run must use. Trio, KD sweep and size sweep all go through here,
    so none of them compares students against a teacher that learned nothing.
    Returns (job result, rebuilt model, config to train the students with, fit-check record)."""
    from harness.train.jobs import trained_model

    shared = {"data": data}
    t_job = make_job(cfg)
    t_result = executor.map([t_job], shared=shared, store=store).results[t_job.key]
    model = trained_model(t_result)
    fit_check = teacher_fit_check(model, data, fit_idx, cfg)
    if fit_check.get("retrain_without_augment"):
        log.warning(f"{fit_check['why']} [{data.name}]")
        plain = cfg.with_overrides(augment=False)
        retry_job = make_job(plain)
        retry = executor.map([retry_job], shared=shared, store=store).results[retry_job.key]
        retry_model = trained_model(retry)
        fit_check["without_augment"] = teacher_fit_check(retry_model, data, fit_idx, plain)["train_accuracy"]
        if fit_check["without_augment"] >= fit_check["train_accuracy"]:
            return retry, retry_model, plain, _kept(fit_check, fit_check["without_augment"])
        fit_check["kept_augment"] = True  # no better without: keep the recipe as asked
    return t_result, model, cfg, _kept(fit_check, fit_check["train_accuracy"])


def _kept(fit_check: dict[str, Any], fitted: float) -> dict[str, Any]:
    """The fit of the teacher that was kept, and whether it clears the floor: what every reader needs."""
    return {**fit_check, "fitted": fitted, "fits": fitted >= fit_check["floor"]}


def teacher_from_checkpoint(data: Dataset, t_cfg: dict, path: str | Path, seed: int) -> tuple[dict, Any]:
    """A user's trained teacher (`--teacher-checkpoint`): its weights (a state_dict, weights only) in the
    teacher's architecture, its accuracy measured on the test split. Returns (a teacher job's result, the
    model), so the rest of the trio cannot tell it from a teacher trained here, except that it says so."""
    from harness.artifacts import fit_state_dict, read_state_dict
    from harness.executor import state_bytes, state_digest
    from harness.fileio import sha256_file
    from harness.train.model_info import check_fits_data, describe_model

    import kd_models

    path = Path(path)
    model = kd_models.build_model(t_cfg, what="the teacher")
    fit_state_dict(model, read_state_dict(path), f"teacher checkpoint {path}")
    model.eval()
    check_fits_data(model, data.X_train, data.classes, f"the teacher of checkpoint {path}")
    acc = accuracy(model, data.X_test, data.y_test)
    meta = {"role": "teacher", "seed": seed, "epochs": 0, "optimizer_steps": 0,
            **describe_model(model, t_cfg, data.input_shape), "input_shape": list(data.input_shape),
            "accuracy": acc, "train_seconds": 0.0,
            "teacher_checkpoint": {"path": str(path.resolve()), "sha256": sha256_file(path)}}
    log.info(f"teacher from {path}: not trained here; accuracy {acc:.4f} on the test split [{data.name}]")
    value = {"accuracy": acc, "seconds": 0.0, "meta": meta, "state": state_bytes(model),
             "weights_sha256": state_digest(model)}
    return {"value": value, "host": socket.gethostname()}, model
