"""Which input normalisation a task's data needs, decided on its training split only.

The model normalises its own input (kd_models.common.InputNorm), so ONNX files take raw data:
- "dataset": per-channel mean/std of the training set (right when every series shares one scale,
  e.g. UCR sets that are already z-normalised);
- "sample": each series/clip z-normalised per channel (right when scales differ between series:
  PLAID's per-series std runs from 7e-5 to 49, and dataset statistics then leave most series flat);
- "sample_scale": "sample" plus each sample's log-std as one more channel (the scale that "sample"
  removes, kept as a feature);
- "none".
"auto" measures each training sample's per-channel std and picks "sample_scale" when the 5th and 95th
percentiles are more than SCALE_SPREAD_LIMIT apart (two orders of magnitude), else "dataset". Scales
that differ by orders of magnitude are the case where a scale can tell classes apart (PLAID: a random
forest on each training series' log-std, log-peak and mean alone reaches 71% in 5-fold CV on the
training split, chance 16%), and the network is free to ignore the channel where it does not
(docs/evidence/plaid-length.txt: teacher +1.30 points on five validation splits of PLAID's training
split, better on 4 of 5, over "sample").
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.errors import OptionError

NORMALIZE_CHOICES = ("auto", "dataset", "sample", "sample_scale", "none")
SCALE_SPREAD_LIMIT = 100.0


def per_sample_std(X: np.ndarray) -> np.ndarray:
    """(N, C) std of each sample's channels over its spatial axes (a streamed split a block at a time)."""
    from harness.tasks.streamed import chunks, is_streamed

    if is_streamed(X):
        axes = tuple(range(2, X.ndim))
        return np.concatenate([block.std(axis=axes, dtype=np.float64) for block in chunks(X)])
    X = np.asarray(X)
    return X.std(axis=tuple(range(2, X.ndim)), dtype=np.float64)


def choose_normalization(X_train: np.ndarray, requested: str = "auto") -> dict[str, Any]:
    """{"mode", "requested", "why"[, "std_p5", "std_p95", "spread"]} for the training split."""
    if requested not in NORMALIZE_CHOICES:
        raise OptionError(f"--normalize must be one of {', '.join(NORMALIZE_CHOICES)}, got {requested!r}")
    if requested != "auto":
        return {"mode": requested, "requested": requested, "why": "chosen with --normalize"}
    s = per_sample_std(X_train).ravel()
    s = s[np.isfinite(s) & (s > 0)]
    if s.size == 0:
        return {"mode": "dataset", "requested": "auto", "why": "every training sample is constant"}
    lo, hi = (float(v) for v in np.percentile(s, [5, 95]))
    spread = hi / lo
    out = {"requested": "auto", "std_p5": lo, "std_p95": hi, "spread": spread}
    if spread > SCALE_SPREAD_LIMIT:
        out.update(mode="sample_scale", why=(
            f"per-sample std spans {lo:.3g} to {hi:.3g} (5th-95th percentile, {spread:.3g}x > "
            f"{SCALE_SPREAD_LIMIT:.0f}x): each sample is z-normalised per channel, its log-scale kept as a "
            "channel"))
    else:
        out.update(mode="dataset", why=(
            f"per-sample std spread {spread:.3g}x (5th-95th percentile) <= {SCALE_SPREAD_LIMIT:.0f}x: "
            "per-channel training-set statistics"))
    return out


def _sample_mean_var(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's per-channel mean and variance (+ InputNorm's floor), float64, N x C x 1 ..."""
    from kd_models.common import SAMPLE_VAR_FLOOR

    X = np.asarray(X, dtype=np.float64)
    axes = tuple(range(2, X.ndim))
    mean = X.mean(axis=axes, keepdims=True)
    d = X - mean
    return mean, (d * d).mean(axis=axes, keepdims=True) + SAMPLE_VAR_FLOOR


def zscore_samples(X: np.ndarray) -> np.ndarray:
    """Each sample's channels z-normalised over their spatial axes (float32), as InputNorm's "sample" mode."""
    mean, var = _sample_mean_var(X)
    return ((np.asarray(X, dtype=np.float64) - mean) / np.sqrt(var)).astype(np.float32)


def sample_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's per-channel mean and log-std (float32, N x C x 1 ...): with `zscore_samples(X)` z,
    X == z * exp(log_std) + mean up to InputNorm's variance floor."""
    mean, var = _sample_mean_var(X)
    return mean.astype(np.float32), (0.5 * np.log(var)).astype(np.float32)
