"""Train the trio for one task: teacher (once), then per seed a scratch student and a KD student.

The scratch and KD students of one seed start from the same initial weights and see the same
batches, so their accuracy difference is a paired comparison that isolates what KD adds.
"""
from __future__ import annotations

import logging
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.artifacts import save_checkpoint
from harness.train.normalize import choose_normalization
from harness.errors import OptionError
from harness.fileio import atomic_write_json, ensure_writable_dir
from harness.options import parse_list
from harness.tasks.base import Dataset
from harness.tasks.streamed import take_rows
from harness.train.losses import build_loss
from harness.train.trainer import TrainConfig, accuracy, epoch_passes, fit, fit_temperature, predict_logits
from harness.train.comparison import compare_students, paired_gain  # noqa: F401 - re-exported
from harness.train.teacher import (  # noqa: F401 - re-exported: sweeps and tests import them from here
    fit_floor, stratified_split, teacher_fit_check, teacher_from_checkpoint, teacher_job, teacher_split,
    train_checked_teacher)

if TYPE_CHECKING:
    from harness.executor import Executor

log = logging.getLogger(__name__)

SUMMARY_SCHEMA = "kd-harness/summary/1"


def parse_seeds(text: str | list[int] | None) -> list[int]:
    if text is None:
        return [0]
    if isinstance(text, list):
        items = text
    else:
        items = parse_list(text, "--seeds", int, "non-negative integers")
    if not items or any(s < 0 for s in items):
        raise OptionError(f"--seeds must be non-negative integers, got {text!r}")
    if len(set(items)) != len(items):
        raise OptionError(f"--seeds has duplicates: {text!r}")
    return items


def library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("torch", "numpy", "onnx", "onnxruntime", "sktime", "scikit-learn", "kd-harness"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


@dataclass
class TrainedModel:
    role: str
    seed: int
    model: Any
    accuracy: float
    seconds: float
    meta: dict[str, Any]


def _progress_bar(desc: str, total: int, enabled: bool):
    """A tqdm bar on stderr, drawn only when asked for and this module's logger is enabled for INFO."""
    from tqdm.auto import tqdm

    # Off a terminal (CI logs) redraw rarely, so a log gets a few lines per model, not thousands.
    tty = sys.stderr.isatty()
    show = enabled and log.isEnabledFor(logging.INFO)
    bar = tqdm(total=total, desc=desc, unit="ep", leave=False, disable=not show, file=sys.stderr,
               mininterval=0.1 if tty else 15.0)

    def update(epoch: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    return bar, update


def model_configs(data: Dataset, teacher_config=None, student_config=None) -> tuple[dict, dict]:
    import kd_models

    shape = data.input_shape
    t = teacher_config or kd_models.default_config(data.kind, "teacher", data.in_channels, data.classes, shape)
    s = student_config or kd_models.default_config(data.kind, "student", data.in_channels, data.classes, shape)
    return dict(t), dict(s)


def normalized_configs(data: Dataset, normalize: str, teacher_config=None, student_config=None
                       ) -> tuple[dict, dict, dict]:
    """The trio's model configs with one input normalisation, decided on the training split only
    (`choose_normalization`); a config that names its own `normalize` keeps it."""
    import kd_models

    t_cfg, s_cfg = model_configs(data, teacher_config, student_config)
    norm = choose_normalization(data.X_train, normalize)

    def apply(cfg: dict, given: dict | None) -> dict:
        # A factory's model normalises its input as its author wrote it (or not at all): nothing is added.
        if kd_models.is_factory_spec(cfg) or (given and "normalize" in given):
            return cfg
        return {**cfg, "normalize": norm["mode"]}

    return apply(t_cfg, teacher_config), apply(s_cfg, student_config), norm


def train_role(
    role: str,
    config: dict,
    data: Dataset,
    X: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    *,
    teacher=None,
    teacher_logits=None,
    teacher_temperature: float = 1.0,
    show_progress: bool = True,
) -> TrainedModel:
    import kd_models
    import torch

    from harness.train.model_info import describe_model

    torch.manual_seed(seed)
    model = kd_models.build_model(config, what=f"the {role}")
    epochs = cfg.epochs_for(data.kind, role)
    loss_fn = build_loss(cfg.kd_loss, **cfg.kd_params()) if role == "student_kd" else build_loss("ce")
    bar, update = _progress_bar(f"{data.name} {role} seed {seed}", epochs, show_progress)
    try:
        result = fit(
            model, X, y, cfg=cfg, epochs=epochs, seed=seed, loss_fn=loss_fn,
            teacher=teacher, teacher_logits=teacher_logits,
            teacher_temperature=teacher_temperature, progress=update,
        )
    finally:
        bar.close()
    acc = accuracy(model, data.X_test, data.y_test)
    meta = {
        "role": role,
        "seed": seed,
        "epochs": epochs,
        "optimizer_steps": result.steps,
        **describe_model(model, config, data.input_shape),
        "input_shape": list(data.input_shape),
        "accuracy": acc,
        "train_seconds": result.seconds,
    }
    return TrainedModel(role, seed, model, acc, result.seconds, meta)


def _trained(result: dict[str, Any], model=None) -> TrainedModel:
    """A job's result as the TrainedModel the summary is written from (the model rebuilt here)."""
    from harness.train.jobs import trained_model

    value = result["value"]
    meta = dict(value["meta"])
    meta["weights_sha256"] = value["weights_sha256"]
    return TrainedModel(meta["role"], meta["seed"], model if model is not None else trained_model(result),
                        value["accuracy"], value["seconds"], meta)


class TrioTraining:
    """One task's trio in stages, so that several tasks' independent jobs can share one executor batch:
    (1) the teacher and the scratch students, which need nothing from each other; (2) the teacher's fit
    check (and, if it fails, a teacher retrained without augmentation); (3) the KD students, which need
    the teacher (and scratch students again only if (2) changed the recipe); (4) checkpoints + summary.
    """

    def __init__(self, data: Dataset, cfg: TrainConfig, seeds: list[int], out_dir: str | Path, *,
                 executor: "Executor", teacher_config: dict | None = None, student_config: dict | None = None,
                 data_ref: dict[str, Any] | None = None, teacher_checkpoint: str | Path | None = None):
        from harness.executor import ResultStore
        from harness.train.model_info import check_spec_fits_data

        self.data, self.cfg, self.seeds = data, cfg, parse_seeds(seeds)
        self.out_dir = ensure_writable_dir(out_dir)
        self.executor = executor
        self.cpus = executor.config.cpus()
        self.store = ResultStore(self.out_dir / ".jobs")
        self.progress = executor.config.kind == "local"  # per-model bars only where the driver itself trains
        self.t_cfg, self.s_cfg, self.norm = normalized_configs(data, cfg.normalize, teacher_config, student_config)
        # Every model is built and run on two samples here, so a factory that fails or a head of the wrong
        # width is one error now, not a failure in a worker after the teacher trained.
        for role, spec in (("teacher", self.t_cfg), ("student", self.s_cfg)):
            check_spec_fits_data(spec, data.X_train, data.classes, f"the {role}")
        self.teacher_checkpoint = Path(teacher_checkpoint) if teacher_checkpoint else None
        if self.teacher_checkpoint is not None and not self.teacher_checkpoint.is_file():
            from harness.errors import CheckpointError

            raise CheckpointError(f"teacher checkpoint not found: {self.teacher_checkpoint}")
        self.common = {"task": data.name, "kind": data.kind, "dataset": data.info(), "train_config": cfg.to_dict(),
                       "data_ref": data_ref or {"task": data.name, "data_seed": 0},
                       "library_versions": library_versions(), "normalize": self.norm,
                       "data_fingerprint": data.fingerprint()}
        self.fit_idx, self.val_idx = teacher_split(data, cfg, self.seeds)
        self.teacher_T, self.calib, self.fit_check = 1.0, None, None
        self.t_result = self.teacher = None
        self.cached_logits, self.logits_seconds = None, 0.0
        self._student_jobs: dict | None = None  # built once the teacher is settled (their keys hash its weights)

    # ---- stage 1
    def teacher_job(self, cfg: TrainConfig | None = None):
        return teacher_job(self.data, cfg or self.cfg, self.seeds, self.t_cfg, cpus=self.cpus,
                           show_progress=self.progress)

    def scratch_jobs(self) -> dict:
        from harness.train.jobs import role_job

        return {("student_scratch", seed): role_job(f"{self.data.name} student_scratch seed {seed}", self.data,
                                                    "student_scratch", self.s_cfg, self.cfg, seed, cpus=self.cpus,
                                                    show_progress=self.progress)
                for seed in self.seeds}

    def independent_jobs(self) -> list:
        """Jobs that need nothing from another job of this trio (stage 1)."""
        teacher = [] if self.teacher_checkpoint else [self.teacher_job()]
        return [*teacher, *self.scratch_jobs().values()]

    # ---- stage 2
    def settle_teacher(self) -> None:
        """The teacher from the store (or trained now), its fit check, and calibration if asked."""
        log.info(f"input normalisation: {self.norm['mode']} ({self.norm['why']}) [{self.data.name}]")
        n = len(self.data.y_train) if self.fit_idx is None else len(self.fit_idx)  # the teacher's training set
        passes = epoch_passes(n, self.cfg.min_epoch_samples)
        if passes > 1:
            log.info(f"each epoch is {passes} passes over the teacher's {n} training samples (an epoch draws at least "
                     f"min_epoch_samples={self.cfg.min_epoch_samples}) [{self.data.name}]")
        if self.teacher_checkpoint is not None:
            t_result, model = teacher_from_checkpoint(self.data, self.t_cfg, self.teacher_checkpoint, self.seeds[0])
            fit_check = teacher_fit_check(model, self.data, self.fit_idx, self.cfg)
            fit_check = {**fit_check, "retrain_without_augment": False, "fitted": fit_check["train_accuracy"],
                         "fits": fit_check["passed"]}  # a user's teacher is measured, never retrained
            if not fit_check["fits"]:
                log.warning(f"{fit_check['why']}: the checkpoint's teacher [{self.data.name}]")
        else:
            t_result, model, self.cfg, fit_check = train_checked_teacher(
                self.executor, self.data, self.cfg, self.teacher_job, store=self.store, fit_idx=self.fit_idx)
        teacher = _trained(t_result, model)
        if self.cfg.calibrate_teacher:
            self.teacher_T = fit_temperature(predict_logits(teacher.model, take_rows(self.data.X_train, self.val_idx)),
                                             self.data.y_train[self.val_idx])
            self.calib = {"method": "temperature scaling on a stratified 20% validation split of train",
                          "temperature": self.teacher_T}
        log.info(f"teacher: accuracy {teacher.accuracy:.4f}, {teacher.seconds:.1f}s [{self.data.name}]")
        if self.cfg.kd_logits == "cached":
            t0 = time.perf_counter()
            self.cached_logits = predict_logits(teacher.model, self.data.X_train)
            self.logits_seconds = time.perf_counter() - t0
        self.t_result, self.teacher, self.fit_check = t_result, teacher, fit_check

    # ---- stage 3
    def student_jobs(self) -> dict:
        """Every seed's scratch and KD students (the scratch ones usually already finished in stage 1)."""
        from harness.train.jobs import role_job

        if self._student_jobs is not None:
            return self._student_jobs
        teacher_inputs = ({"teacher_state": self.t_result["value"]["state"], "teacher_config": self.t_cfg}
                          if self.cfg.kd_logits == "live" else {"teacher_logits": self.cached_logits})
        jobs = self.scratch_jobs()
        for seed in self.seeds:
            jobs[("student_kd", seed)] = role_job(f"{self.data.name} student_kd seed {seed}", self.data, "student_kd",
                                                  self.s_cfg, self.cfg, seed, cpus=self.cpus,
                                                  show_progress=self.progress, teacher_temperature=self.teacher_T,
                                                  **teacher_inputs)
        self._student_jobs = jobs
        return jobs

    def _map(self, jobs) -> dict:
        return self.executor.map(jobs, shared={"data": self.data}, store=self.store).results

    # ---- stage 4
    def finish(self, results: dict | None = None) -> dict[str, Any]:
        """Checkpoints and OUT/summary.json from the finished jobs (run here if `results` lacks them)."""
        from harness.measure.stats import mean_ci

        jobs = self.student_jobs()
        if results is None or any(j.key not in results for j in jobs.values()):
            results = self._map(jobs.values())
        cfg, data, out_dir, common = self.cfg, self.data, self.out_dir, self.common
        ckpt_dir = out_dir / "checkpoints"
        trained: dict[str, list[TrainedModel]] = {"teacher": [self.teacher], "student_scratch": [], "student_kd": []}
        for seed in self.seeds:
            scratch = _trained(results[jobs[("student_scratch", seed)].key])
            kd = _trained(results[jobs[("student_kd", seed)].key])
            # Cached mode pays for one teacher pass over the training set: charge it to the KD student.
            kd.seconds += self.logits_seconds
            kd.meta["train_seconds"] = kd.seconds
            kd.meta.update({"kd_logits": cfg.kd_logits, "teacher_logits_seconds": self.logits_seconds,
                            "kd_loss": cfg.kd_loss, "kd_params": cfg.kd_params(), "teacher_temperature": self.teacher_T})
            trained["student_scratch"].append(scratch)
            trained["student_kd"].append(kd)
            log.info(f"seed {seed}: scratch {scratch.accuracy:.4f}, kd {kd.accuracy:.4f} [{data.name}]")

        summary: dict[str, Any] = {"schema": SUMMARY_SCHEMA, **common, "seeds": self.seeds, "models": {}}
        for role, items in trained.items():
            paths = []
            for item in items:
                path = ckpt_dir / f"{role}-seed{item.seed}.pt"
                meta = save_checkpoint(path, item.model, {**common, **item.meta})
                log.debug(f"saved {path} ({meta['bytes']} bytes, sha256 {meta['sha256'][:12]})")
                paths.append({"seed": item.seed, "path": str(path.relative_to(out_dir)), "sha256": meta["sha256"],
                              "bytes": meta["bytes"], "weights_sha256": item.meta["weights_sha256"]})
            accs = [it.accuracy for it in items]
            secs = [it.seconds for it in items]
            mean, lo, hi = mean_ci(accs)
            lo, hi = max(0.0, lo), min(1.0, hi)  # a t-interval can overshoot; accuracy cannot
            first = items[0].meta
            summary["models"][role] = {
                **{k: first[k] for k in ("family", "model_config", "params", "macs", "macs_detail", "model_source",
                                         "teacher_checkpoint") if k in first},
                "epochs": first["epochs"],
                "optimizer_steps": first.get("optimizer_steps"),
                "accuracy": {"mean": mean, "ci95": [lo, hi], "per_seed": accs},
                "train_seconds": {"mean": float(np.mean(secs)), "per_seed": secs},
                "seeds": [it.seed for it in items],
                "checkpoints": paths,
            }
        summary["models"]["student_kd"].update(
            {"kd_logits": cfg.kd_logits, "kd_loss": cfg.kd_loss, "kd_params": cfg.kd_params(),
             "teacher_logits_seconds": self.logits_seconds}
        )
        ratio = summary["models"]["teacher"]["params"] / max(1, summary["models"]["student_kd"]["params"])
        summary["student_sizing"] = {"params_ratio": ratio, "at_least_10x_smaller": ratio >= 10}
        if ratio < 10:
            summary["student_sizing"]["note"] = (
                f"the student has only {ratio:.1f}x fewer parameters than the teacher (the promise is >= 10x): "
                f"no layer may be narrower than the {data.classes}-class head it feeds, or a custom config says so")
            log.warning(summary["student_sizing"]["note"])
        if self.calib:
            summary["teacher_calibration"] = self.calib
        summary["teacher_fit_check"] = self.fit_check
        if cfg.to_dict() != common["train_config"]:
            summary["effective_train_config"] = cfg.to_dict()  # what the fit check changed (train_config: as asked)
        # Where the models trained (timing is separate: benches never share a node with training jobs).
        ran = [self.t_result, *(results[j.key] for j in jobs.values())]
        summary["executor"] = {**self.executor.config.describe(),
                               "jobs_ran_on": sorted({r.get("host", "?") for r in ran})}
        summary["comparison"] = compare_students(summary)
        atomic_write_json(out_dir / "summary.json", summary)
        return summary


def map_across(executor: "Executor", trios: list[TrioTraining], jobs_of) -> dict[str, dict]:
    """One executor batch over several trios' jobs (`jobs_of(trio)`), each result kept in its own trio's
    store; finished ones are resumed, not rerun. Returns results by job key."""
    from harness.executor import Job

    if len(trios) == 1:
        return trios[0]._map(jobs_of(trios[0]))
    results, stores, todo = {}, {}, []
    for trio in trios:
        for job in jobs_of(trio):
            done = trio.store.get(job.key)
            if done is not None:
                results[job.key] = done
            elif job.key not in stores:
                stores[job.key] = trio.store
                # Each trio has its own data, so it travels in the job's arguments, not as shared.
                todo.append(Job(job.name, job.fn, {**job.kwargs, "data": trio.data}, job.key))
    if results:
        log.info(f"resumed {len(results)} finished job(s)")
    if todo:
        def keep(job, result):
            stores[job.key].put(job.key, result)
            results[job.key] = result

        executor.map(todo, on_result=keep)
    return results


def train_trios(trios: list[TrioTraining]) -> list[dict[str, Any]]:
    """Train several tasks' trios on their (shared) executor in two batches: every teacher and scratch
    student at once, then every KD student at once; a parallel executor thus never waits on one task.
    (A local executor skips the first batch: it would only change the order of the same serial work.)"""
    if not trios:
        return []
    executor = trios[0].executor
    if executor.config.kind != "local":
        map_across(executor, trios, TrioTraining.independent_jobs)
    for trio in trios:
        trio.settle_teacher()
    results = map_across(executor, trios, lambda t: list(t.student_jobs().values()))
    return [trio.finish(results) for trio in trios]


def train_trio(
    data: Dataset,
    cfg: TrainConfig,
    seeds: list[int],
    out_dir: str | Path,
    *,
    teacher_config: dict | None = None,
    student_config: dict | None = None,
    data_ref: dict[str, Any] | None = None,
    executor: "Executor | None" = None,
    teacher_checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Train, checkpoint and summarise; returns the summary written to OUT/summary.json.

    The teacher is one job; then every seed's scratch and KD students are independent jobs on the
    executor (default: one after another in this process). Finished jobs are kept in OUT/.jobs, so
    a rerun of the same command resumes where an interrupted one stopped.
    """
    from harness.executor import ExecutorConfig, LocalExecutor

    executor = executor or LocalExecutor(ExecutorConfig())
    trio = TrioTraining(data, cfg, seeds, out_dir, executor=executor, teacher_config=teacher_config,
                        student_config=student_config, data_ref=data_ref, teacher_checkpoint=teacher_checkpoint)
    return train_trios([trio])[0]
