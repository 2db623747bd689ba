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

from harness.errors import CheckpointError
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
    try:
        model = kd_models.build_model(config)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} names a model the harness cannot build: {exc}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint {path} does not fit its architecture: {first[:200]}") from None
    model.eval()
    return model, meta


def run_is_complete(run_dir: str | Path, train_config: dict[str, Any], seeds: list[int], task: str | None = None
                    ) -> bool:
    """Whether `run_dir` already holds a finished training run of exactly this config, seeds (and
    task): its summary says so and every checkpoint it lists is on disk. Such a run is reused, not
    retrained (`harness run`, the pytest plugin's default run)."""
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
    return all((Path(run_dir) / ck["path"]).is_file()
               for m in (summary.get("models") or {}).values() for ck in m.get("checkpoints", []))
