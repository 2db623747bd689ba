"""Training units as executor jobs: one model (a teacher, or one seed's scratch or KD student).

`train_job` runs in whatever process the executor picks and returns plain data (metrics and the
weights as bytes); `role_job` builds the `Job` with a content key over everything that decides the
weights, so a rerun resumes exactly the units whose inputs did not change.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.executor import Job, content_key, model_from_state, state_bytes, state_digest
from harness.tasks.base import Dataset
from harness.train.trainer import TrainConfig, epoch_batch_sizes

JOB_VERSION = "train_job/1"  # bump when training code changes what a stored result means
# What only a KD student's training reads: a teacher or scratch student is the same job without them.
_KD_ONLY = ("temperature", "alpha", "kd_loss", "dkd_beta", "at_beta", "kd_logits")


def _versions() -> dict[str, str]:
    # Another torch or numpy can round differently: a stored result from before an upgrade is not reused.
    import torch

    return {"torch": torch.__version__, "numpy": np.__version__}


def train_job(data: Dataset, role: str, model_config: dict, cfg: TrainConfig, seed: int, *,
              fit_idx: np.ndarray | None = None, teacher_state: bytes | None = None,
              teacher_config: dict | None = None, teacher_logits: np.ndarray | None = None,
              teacher_temperature: float = 1.0, show_progress: bool = False) -> dict[str, Any]:
    from harness.train.trio import train_role

    from harness.tasks.streamed import take_rows

    X, y = (data.X_train, data.y_train) if fit_idx is None else (take_rows(data.X_train, fit_idx), data.y_train[fit_idx])
    teacher = model_from_state(teacher_config, teacher_state) if teacher_state is not None else None
    trained = train_role(role, model_config, data, X, y, cfg, seed, teacher=teacher, teacher_logits=teacher_logits,
                         teacher_temperature=teacher_temperature, show_progress=show_progress)
    return {"accuracy": trained.accuracy, "seconds": trained.seconds, "meta": trained.meta,
            "state": state_bytes(trained.model), "weights_sha256": state_digest(trained.model)}


def role_job(name: str, data: Dataset, role: str, model_config: dict, cfg: TrainConfig, seed: int, *,
             cpus: int, show_progress: bool = False, **inputs: Any) -> Job:
    """A `train_job` for the executor; `inputs` are train_job's keyword inputs (teacher, subset)."""
    cfg = cfg.with_overrides(threads=cpus or None)
    keyed_cfg = {k: v for k, v in cfg.to_dict().items() if role == "student_kd" or k not in _KD_ONLY}
    keyed_cfg["epochs_resolved"] = cfg.epochs_for(data.kind, role)  # the default epoch table may change
    if cfg.kd_loss != "at":
        keyed_cfg.pop("at_beta", None)  # read by the attention-transfer loss only: other jobs keep their keys
    n_fit = len(data.y_train) if inputs.get("fit_idx") is None else len(inputs["fit_idx"])
    layout = epoch_batch_sizes(n_fit, cfg)
    keyed_cfg.pop("min_epoch_samples", None)
    keyed_cfg.pop("even_batches", None)
    if layout != epoch_batch_sizes(n_fit, cfg.with_overrides(min_epoch_samples=0, even_batches=False)):
        # Keyed by the epoch's batch layout they give, and only where it differs from one plain pass in
        # full batches: jobs these options do not reach keep their stored results.
        keyed_cfg["epoch_batch_sizes"] = layout
    key = content_key(JOB_VERSION, _versions(), data.fingerprint(), role, model_config, keyed_cfg, seed,
                      {k: v for k, v in inputs.items() if v is not None})
    return Job(name=name, fn=train_job, key=key,
               kwargs={"role": role, "model_config": model_config, "cfg": cfg, "seed": seed,
                       "show_progress": show_progress, **inputs})


def trained_model(result: dict[str, Any]):
    """The driver's copy of a job's model, rebuilt from the returned weights."""
    return model_from_state(result["value"]["meta"]["model_config"], result["value"]["state"])
