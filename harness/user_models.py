"""`harness bench --model ROLE=pkg.mod:factory[@CHECKPOINT]`: a user's trained PyTorch models, measured
without any training, exactly as the models of a training run are.

The models are written into a run folder of their own (OUT/checkpoints/<role>.pt in the harness's
checkpoint format, OUT/summary.json), and that folder goes through the same export, parity check,
variants, suites and report as `harness bench RUN`. So there is one measuring path, and the folder
records what was measured: import path, arguments, the user's checkpoint's sha256, the module's
source hash, parameters and MACs.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import CheckpointError, DataError, OptionError
from harness.roles import Role, user_role
from harness.tasks.base import Dataset

log = logging.getLogger(__name__)

USER_SUMMARY_SOURCE = "harness bench --model"


@dataclass(frozen=True)
class UserModel:
    """One model a user brings: its role, factory spec and (optionally) trained weights."""

    role: Role
    spec: dict[str, Any]
    checkpoint: Path | None = None
    kwargs_given: dict[str, Any] = field(default_factory=dict)


def parse_json_object(text: str | None, what: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OptionError(f"{what} is not valid JSON: {exc.msg} (e.g. '{{\"width\": 64}}')") from None
    if not isinstance(value, dict):
        raise OptionError(f"{what} must be a JSON object of keyword arguments, got {text!r}")
    return value


def parse_model_args(specs: list[str], kwargs: list[str] | None = None) -> list[UserModel]:
    """`ROLE=pkg.mod:factory[@CHECKPOINT]` options (and `ROLE=JSON` keyword arguments) -> UserModels."""
    import kd_models

    by_role: dict[str, dict[str, Any]] = {}
    for text in kwargs or []:
        role, sep, body = text.partition("=")
        if not sep:
            raise OptionError(f"--model-kwargs takes ROLE=JSON, got {text!r}")
        by_role[user_role(role, "--model-kwargs role").base] = parse_json_object(body, f"--model-kwargs {role}")
    out: list[UserModel] = []
    for text in specs:
        role_text, sep, rest = text.partition("=")
        m = re.match(r"^([^@]+?)(?:@(.+))?$", rest.strip()) if sep else None
        if not m:
            raise OptionError(f"--model takes ROLE=pkg.module:factory[@CHECKPOINT], got {text!r}")
        role = user_role(role_text, "--model role")
        if any(u.role == role for u in out):
            raise OptionError(f"--model role {role} given twice")
        spec = kd_models.factory_spec(m.group(1), by_role.get(role.base), what=f"--model {role}")
        ckpt = Path(m.group(2)) if m.group(2) else None
        if ckpt is not None and not ckpt.is_file():
            raise CheckpointError(f"--model {role}: checkpoint not found: {ckpt}")
        out.append(UserModel(role, spec, ckpt))
    unknown = sorted(set(by_role) - {u.role.base for u in out})
    if unknown:
        raise OptionError(f"--model-kwargs for role(s) {', '.join(unknown)} that no --model names")
    if not out:
        raise OptionError("give at least one --model ROLE=pkg.module:factory[@CHECKPOINT]")
    return out


def build_user_model(user: UserModel):
    """The model with its weights (a state_dict, loaded weights-only); without a checkpoint, as built."""
    import kd_models

    from harness.artifacts import fit_state_dict, read_state_dict

    model = kd_models.build_model(user.spec, what=f"--model {user.role}")
    if user.checkpoint is not None:
        fit_state_dict(model, read_state_dict(user.checkpoint), f"--model {user.role} checkpoint {user.checkpoint}")
    else:
        log.warning(f"{user.role}: no checkpoint given: measuring the factory's initial weights")
    return model.eval()


def materialize_run(models: list[UserModel], data: Dataset | None, input_shape: tuple[int, ...] | None,
                    out_dir: str | Path, *, task: str | None = None, data_ref: dict[str, Any] | None = None
                    ) -> Path:
    """Write the models as a run folder (checkpoints + summary.json) that `harness bench RUN` measures.
    Every model is built, loaded and checked against the data before anything is written."""
    from harness.artifacts import save_checkpoint
    from harness.fileio import atomic_write_json, ensure_writable_dir, sha256_file
    from harness.train.comparison import compare_students
    from harness.train.model_info import check_fits_data, describe_model
    from harness.train.trainer import accuracy
    from harness.train.trio import SUMMARY_SCHEMA, library_versions

    if data is None and input_shape is None:
        raise OptionError("--model without data needs --input-shape (e.g. 1,427 or 1,16,32,32), or give "
                          "--data/--task/--dataset to measure accuracy too")
    if data is not None and input_shape is not None and tuple(input_shape) != data.input_shape:
        raise OptionError(f"--input-shape {tuple(input_shape)} differs from the data's samples {data.input_shape}")
    shape = data.input_shape if data is not None else tuple(input_shape)
    import numpy as np

    probe = data.X_train if data is not None else np.zeros((2, *shape), dtype=np.float32)
    built = []
    for user in models:
        model = build_user_model(user)
        if data is not None:
            check_fits_data(model, probe, data.classes, f"--model {user.role}")
        else:
            check_fits_data(model, probe, _classes_of(model, probe), f"--model {user.role}")
        built.append((user, model))

    task = task or (data.name if data is not None else "models")
    out = ensure_writable_dir(out_dir)
    entries: dict[str, Any] = {}
    for user, model in built:
        info = describe_model(model, user.spec, shape)
        acc = accuracy(model, data.X_test, data.y_test) if data is not None else None
        source_ck = ({"path": str(user.checkpoint.resolve()), "sha256": sha256_file(user.checkpoint)}
                     if user.checkpoint else None)
        meta = save_checkpoint(out / "checkpoints" / f"{user.role}.pt", model, {
            "role": str(user.role), "seed": 0, "task": task, **info, "input_shape": list(shape),
            "accuracy": acc, "user_checkpoint": source_ck})
        entries[str(user.role)] = {
            **info, "epochs": 0, "seeds": [0], "user_checkpoint": source_ck,
            "accuracy": None if acc is None else {"mean": acc, "ci95": [acc, acc], "per_seed": [acc]},
            "train_seconds": None,
            "checkpoints": [{"seed": 0, "path": f"checkpoints/{user.role}.pt", "sha256": meta["sha256"],
                             "bytes": meta["bytes"]}]}
        if acc is not None:
            log.info(f"{task}: {user.role} accuracy {acc:.4f} on the test split (plain PyTorch loop)")
    summary: dict[str, Any] = {
        "schema": SUMMARY_SCHEMA, "source": USER_SUMMARY_SOURCE, "task": task,
        "kind": data.kind if data is not None else ("1d" if len(shape) == 2 else "3d"),
        "dataset": data.info() if data is not None else None, "data_ref": data_ref, "seeds": [0],
        "library_versions": library_versions(), "models": entries,
    }
    if all(r in entries and entries[r]["accuracy"] for r in ("teacher", "student_kd", "student_scratch")):
        summary["comparison"] = compare_students(summary)
    atomic_write_json(out / "summary.json", summary)
    return out


def _classes_of(model, probe) -> int:
    """Without data, the classes are what the model's head gives (the check then only proves it runs)."""
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(probe))
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise DataError(f"a model returns {type(out).__name__} of shape {getattr(out, 'shape', '?')}; "
                        f"a classifier must return logits of shape (batch, classes)")
    return int(out.shape[1])
