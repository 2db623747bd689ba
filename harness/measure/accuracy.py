"""Accuracy suite: each session classifies the test set; ONNX accuracy is measured, never copied.

    measure(handles, {"X_test": X, "y_test": y, "batch_size": 256})

Runs `session.run` over X_test in batches (the last one may be short), takes the argmax of the
logits' last axis and compares with y_test. One Measurement per handle: metrics accuracy
(fraction), correct, n. With `base_roles` ({variant role: base role}) in `data`, a variant whose base
is among the handles (same task and backend) also gets base_accuracy and agreement (the fraction of
samples whose top-1 class equals the base's).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from harness.errors import DataError, OptionError
from harness.measure.base import SessionHandle, wrap_rows
from harness.results import Measurement


def _get(data: Any, name: str) -> Any:
    if isinstance(data, dict):
        return data.get(name)
    return getattr(data, name, None)


def predict(session: Any, X: np.ndarray, batch_size: int, fixed_batch: bool = False) -> np.ndarray:
    """Argmax predictions over X in chunks; with `fixed_batch` (a model that only takes `batch_size`
    samples) a short last chunk is padded with repeats of its own rows and the padding's outputs dropped."""
    preds = []
    for start in range(0, X.shape[0], batch_size):
        chunk = X[start : start + batch_size]
        n = chunk.shape[0]
        if fixed_batch and n < batch_size:
            chunk = wrap_rows(chunk, batch_size)
        logits = np.asarray(session.run(np.ascontiguousarray(chunk)))
        if logits.ndim < 2 or logits.shape[0] != chunk.shape[0]:
            raise DataError(f"model returned logits of shape {logits.shape} for a batch of {chunk.shape[0]}")
        preds.append(np.argmax(logits.reshape(logits.shape[0], -1), axis=-1)[:n])
    return np.concatenate(preds) if preds else np.empty(0, dtype=np.int64)


def measure(handles: Sequence[SessionHandle], data: Any, config: Any = None) -> list[Measurement]:
    X, y = _get(data, "X_test"), _get(data, "y_test")
    batch_size = _get(data, "batch_size") or 256
    if X is None or y is None:
        raise DataError("accuracy needs X_test and y_test")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise OptionError(f"accuracy batch_size must be a positive integer, got {batch_size!r}")
    if not hasattr(X, "rows"):  # a streamed split (harness/tasks/streamed.py) is read a batch at a time
        X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int64).ravel()
    if X.shape[0] != y.shape[0]:
        raise DataError(f"X_test has {X.shape[0]} samples but y_test has {y.shape[0]} labels")
    if y.size == 0:
        raise DataError("the test set is empty")
    base_roles = _get(data, "base_roles") or {}  # variant role -> its fp32 base's role
    fixed = bool(_get(data, "fixed_batch"))
    preds = {(h.task, h.role, h.backend): predict(h.session, X, int(batch_size), fixed) for h in handles}
    out = []
    for h in handles:
        pred = preds[(h.task, h.role, h.backend)]
        correct = int(np.sum(pred == y))
        metrics: dict[str, Any] = {"accuracy": correct / int(y.size), "correct": correct, "n": int(y.size)}
        base = preds.get((h.task, base_roles.get(h.role), h.backend))
        if base is not None:
            metrics.update(base_accuracy=float(np.mean(base == y)), agreement=float(np.mean(pred == base)))
        out.append(
            Measurement(
                task=h.task,
                model=h.role,
                backend=h.backend,
                suite="accuracy",
                batch_size=int(batch_size),
                threads=int(h.options.threads),
                metrics=metrics,
                options=h.options.key(),
            )
        )
    return out
