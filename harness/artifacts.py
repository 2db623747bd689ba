"""Checkpoints: weights + metadata in one .pt file, a JSON sidecar with the sha256 beside it.

Layout of a training run folder (`harness train --out DIR`):

    DIR/summary.json
    DIR/checkpoints/teacher-seed0.pt        + teacher-seed0.json
    DIR/checkpoints/student_scratch-seed0.pt + .json
    DIR/checkpoints/student_kd-seed0.pt      + .json
    DIR/onnx/<role>.onnx                     (written by `harness bench` / `harness run`)
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

from harness.errors import CheckpointError, DataError, HarnessError, first_line
from harness.fileio import atomic_write_bytes, atomic_write_json, read_json, sha256_file

CHECKPOINT_FORMAT = "kd-harness/checkpoint/1"


def save_checkpoint(path: str | Path, model, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write model weights + metadata atomically; returns metadata with sha256 and bytes added."""
    import torch

    path = Path(path)
    if "model_config" not in metadata:
        raise ValueError("checkpoint metadata needs 'model_config'")
    buf = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": CHECKPOINT_FORMAT, "metadata": metadata, "state_dict": state}, buf)
    atomic_write_bytes(path, buf.getvalue())
    meta = dict(metadata)
    meta["format"] = CHECKPOINT_FORMAT
    meta["sha256"] = sha256_file(path)
    meta["bytes"] = path.stat().st_size
    meta["checkpoint"] = path.name
    atomic_write_json(path.with_suffix(".json"), meta)
    return meta


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (metadata, state_dict) after checking the file is a harness checkpoint."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"unreadable checkpoint {path}: {first[:200]}") from None
    except Exception as exc:  # torch raises a zoo of types for foreign pickles
        raise CheckpointError(f"unreadable checkpoint {path}: {type(exc).__name__}") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not a kd-harness checkpoint: {path} (expected format {CHECKPOINT_FORMAT})")
    meta, state = blob.get("metadata"), blob.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict) or "model_config" not in meta:
        raise CheckpointError(f"checkpoint {path} lacks metadata or weights")
    return meta, state


def load_checkpoint(path: str | Path, expect_config: dict[str, Any] | None = None):
    """Build the model its metadata describes and load the weights; returns (model, metadata).

    `expect_config`, when given, must match the checkpoint's model config: a checkpoint of another
    architecture is an error, not a silent partial load.
    """
    import kd_models

    meta, state = read_checkpoint(path)
    config = meta["model_config"]
    if expect_config is not None and dict(expect_config) != dict(config):
        raise CheckpointError(
            f"checkpoint {path} is a {config.get('family')} model with config {config}, "
            f"expected {expect_config.get('family')} with {expect_config}"
        )
    root_hint = (meta.get("model_source") or {}).get("import_root")
    try:
        model = kd_models.build_model(config, what=f"the model of checkpoint {path}", root_hint=root_hint)
    except HarnessError:
        raise
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} names a model the harness cannot build: {exc}") from None
    fit_state_dict(model, state, f"checkpoint {path}")
    model.eval()
    return model, meta


def _is_state_dict(obj: Any) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """A user's weights: a `state_dict` saved with torch.save (or a dict holding one under 'state_dict' or
    'model', or a kd-harness checkpoint), loaded with weights_only=True: nothing but tensors is unpickled."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises a zoo of types for foreign or corrupt files
        raise CheckpointError(f"unreadable checkpoint {path} (a state_dict saved with torch.save is expected; "
                              f"nothing but weights is loaded): {first_line(exc)}") from None
    if isinstance(blob, dict) and not _is_state_dict(blob):
        for key in ("state_dict", "model"):
            if _is_state_dict(blob.get(key)):
                return blob[key]
    if not _is_state_dict(blob):
        raise CheckpointError(f"{path} holds a {type(blob).__name__}, not a state_dict (names -> tensors)")
    return blob


def fit_state_dict(model, state: dict[str, Any], where: str) -> None:
    """Load `state` into `model` strictly; CheckpointError naming the first keys that do not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)} in the model" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]

    def first(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

    problems = ([f"missing keys {first(missing)}"] if missing else []) + \
        ([f"unexpected keys {first(unexpected)}"] if unexpected else []) + \
        ([f"shape mismatch {first(shapes)}"] if shapes else [])
    if problems:
        raise CheckpointError(f"{where} does not fit the model: {'; '.join(problems)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{where} does not fit the model: {first_line(exc)}") from None


def run_is_complete(run_dir: str | Path, train_config: dict[str, Any], seeds: list[int], task: str | None = None,
                    normalize: str | None = None) -> bool:
    """Whether `run_dir` already holds a finished training run of exactly this config, seeds (and
    task): its summary says so and every checkpoint it lists is on disk. Such a run is reused, not
    retrained (`harness run`, the pytest plugin's default run). `normalize`: the input normalisation
    the config resolves to now (`--normalize auto` may resolve differently in another release); a run
    that used another one is not reused (a summary without the record used "dataset")."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return False
    try:
        summary = read_json(path, what="training summary")
    except Exception:  # noqa: BLE001 - an unreadable old run is simply retrained
        return False
    if not isinstance(summary, dict) or summary.get("train_config") != train_config or summary.get("seeds") != seeds:
        return False
    if task is not None and summary.get("task") != task:
        return False
    if normalize is not None and (summary.get("normalize") or {}).get("mode", "dataset") != normalize:
        return False
    return all((Path(run_dir) / ck["path"]).is_file()
               for m in (summary.get("models") or {}).values() for ck in m.get("checkpoints", []))


def verify_checkpoints(summary: dict[str, Any], run_dir: Path) -> None:
    """Check every checkpoint the training summary lists against what it recorded; CheckpointError otherwise.

    A file whose sha256 matches the summary is the one training wrote. Otherwise (or for an older summary
    without sha256) the file is opened and its architecture (model config), parameter count and the role,
    seed and task it was saved for are compared with the summary, so the one line names what differs:
    a teacher replaced by a student, two students swapped, or weights changed after training.
    """
    import os

    import kd_models

    def shown(path: Path) -> str:  # as the user would type it: relative when below the working folder
        rel = os.path.relpath(path)
        return str(path) if rel.startswith("..") else rel

    def config_diff(actual: dict[str, Any], recorded: dict[str, Any]) -> str:
        keys = [k for k in sorted(set(actual) | set(recorded)) if actual.get(k) != recorded.get(k)]
        text = ", ".join(f"{k} {actual.get(k)!r} vs {recorded.get(k)!r}" for k in keys[:3])
        return f"architecture differs ({text}{', ...' if len(keys) > 3 else ''} recorded)"

    task = summary.get("task")
    for role, entry in summary["models"].items():
        if not isinstance(entry, dict):
            raise DataError(f"{run_dir / 'summary.json'}: the entry for {role} is not an object")
        cks = entry.get("checkpoints") or []
        if not cks:
            raise DataError(f"run {run_dir} has no checkpoint for {role}")
        for ck in cks:
            if not isinstance(ck, dict) or not isinstance(ck.get("path"), str):
                raise DataError(f"{run_dir / 'summary.json'}: a checkpoint entry of {role} has no path")
            path = run_dir / ck["path"]
            if not path.is_file():
                raise CheckpointError(f"{shown(path)}: the checkpoint of {role} that the training summary lists is missing")
            recorded_sha = ck.get("sha256")
            if recorded_sha and sha256_file(path) == recorded_sha:
                continue
            diffs = ["sha256 differs"] if recorded_sha else []
            try:
                model, meta = load_checkpoint(path)
            except CheckpointError as exc:
                raise CheckpointError(f"{exc} (the checkpoint of {role} in the training summary)") from None
            config = meta.get("model_config") or {}
            recorded_config = entry.get("model_config")
            if isinstance(recorded_config, dict) and dict(config) != dict(recorded_config):
                diffs.append(config_diff(dict(config), dict(recorded_config)))
            params, recorded_params = kd_models.count_params(model), entry.get("params")
            if isinstance(recorded_params, int) and params != recorded_params:
                diffs.append(f"params {params:,} vs {recorded_params:,} recorded")
            if meta.get("role") not in (None, role):
                diffs.append(f"it was saved as {meta['role']}")
            if meta.get("seed") is not None and ck.get("seed") is not None and meta["seed"] != ck["seed"]:
                diffs.append(f"seed {meta['seed']} vs {ck['seed']} recorded")
            if meta.get("task") not in (None, task):
                diffs.append(f"task {meta['task']!r} vs {task!r} recorded")
            if diffs == ["sha256 differs"]:
                diffs = ["sha256 differs (same architecture and parameter count: the weights changed after training)"]
            if diffs:
                raise CheckpointError(f"{shown(path)} does not match the training summary for {role}: {', '.join(diffs)}")
