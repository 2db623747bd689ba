"""Pieces every model family shares: input normalisation, the model base class, counting.

Every model is `KDModel`:

    logits   = model(x)                      # N x num_classes, float32
    features = model.features(x)             # N x F, the pooled penultimate vector
    logits  == model.head(model.features(x)) # in every mode (dropout lives inside features)
    model.set_input_stats(mean, std)         # per-channel; stored as buffers in state_dict

Normalisation is part of the model so that an ONNX export takes raw data.
"""
from __future__ import annotations


import numpy as np
import torch
from torch import nn

from harness.errors import OptionError

STD_FLOOR = 1e-6
# Added to a series' variance before the square root: far below any real signal's variance (a
# series with std 7e-5 has variance 5e-9), so only a constant series (variance 0) is affected: it
# normalises to zeros instead of dividing by zero.
SAMPLE_VAR_FLOOR = 1e-12
NORM_MODES = ("dataset", "sample", "sample_scale", "none")


class InputNorm(nn.Module):
    """Input normalisation inside the model, so its ONNX export still takes raw data.

    mode "dataset": (x - mean) / std with per-channel training-set buffers shaped (1, C, 1, ...);
    mode "sample": each sample's channels z-normalised over their own spatial axes (the UCR
    convention: a series' scale and offset are removed, its shape kept);
    mode "sample_scale": "sample" plus, per channel, the sample's own log-std as one more channel
    (constant along the spatial axes), standardised with training-set statistics of that log-std held
    in the mean/std buffers. z-normalising removes a series' scale, and where scales differ by orders
    of magnitude the scale itself can tell classes apart (an appliance's current: a heater draws amps, a
    phone charger milliamps); the network gets the shape and the scale. Output channels: 2C.
    mode "none": x unchanged. The buffers exist in every mode, so checkpoints keep one layout.
    """

    def __init__(self, channels: int, spatial_dims: int, mode: str = "dataset"):
        super().__init__()
        if mode not in NORM_MODES:
            raise OptionError(f"unknown input normalisation {mode!r}; choose one of {', '.join(NORM_MODES)}")
        shape = (1, int(channels)) + (1,) * int(spatial_dims)
        self.channels = int(channels)
        self.mode = mode
        self.out_channels = 2 * self.channels if mode == "sample_scale" else self.channels
        self.axes = tuple(range(2, 2 + int(spatial_dims)))
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    @torch.no_grad()
    def set_stats(self, mean, std) -> None:
        mean_t = _as_channel_vector(mean, self.channels, "mean")
        std_t = _as_channel_vector(std, self.channels, "std").clamp_min(STD_FLOOR)
        self.mean.copy_(mean_t.reshape(self.mean.shape))
        self.std.copy_(std_t.reshape(self.std.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "dataset":
            return (x - self.mean) / self.std
        if self.mode in ("sample", "sample_scale"):
            d = x - x.mean(dim=self.axes, keepdim=True)
            var = (d * d).mean(dim=self.axes, keepdim=True) + SAMPLE_VAR_FLOOR
            z = d / torch.sqrt(var)
            if self.mode == "sample":
                return z
            log_scale = (0.5 * torch.log(var) - self.mean) / self.std
            return torch.cat([z, log_scale.expand_as(z)], dim=1)
        return x

    def stats_of(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The per-channel (mean, std) this mode keeps, from raw training inputs N x C x ...: the values'
        own for "dataset" (and the unused buffers of "sample"/"none"), the per-sample log-std's for
        "sample_scale"."""
        if not isinstance(X, np.ndarray) and hasattr(X, "shape") and hasattr(X, "__getitem__"):
            return self._stats_in_chunks(X)
        X = np.asarray(X)
        axes = tuple(range(2, X.ndim))
        if self.mode == "sample_scale":
            log_scale = 0.5 * np.log(X.var(axis=axes, dtype=np.float64) + SAMPLE_VAR_FLOOR)  # N x C
            return log_scale.mean(axis=0), log_scale.std(axis=0)
        return X.mean(axis=(0, *axes), dtype=np.float64), X.std(axis=(0, *axes), dtype=np.float64)

    def _stats_in_chunks(self, X, rows: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """stats_of for inputs too large to hold (a streamed split): float64 sums a block of rows at a time."""
        axes = tuple(range(2, len(X.shape)))
        if self.mode == "sample_scale":
            logs = [0.5 * np.log(np.asarray(X[i:i + rows]).var(axis=axes, dtype=np.float64) + SAMPLE_VAR_FLOOR)
                    for i in range(0, len(X), rows)]
            log_scale = np.concatenate(logs)
            return log_scale.mean(axis=0), log_scale.std(axis=0)
        total = np.zeros(X.shape[1]), np.zeros(X.shape[1]), 0
        s1, s2, n = total
        for i in range(0, len(X), rows):
            block = np.asarray(X[i:i + rows], dtype=np.float64)
            s1 = s1 + block.sum(axis=(0, *axes))
            s2 = s2 + (block * block).sum(axis=(0, *axes))
            n += block.size // block.shape[1]
        mean = s1 / n
        return mean, np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode}"


def _as_channel_vector(values, channels: int, what: str) -> torch.Tensor:
    arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    arr = arr.reshape(-1)
    if arr.size != channels:
        raise OptionError(f"input {what} has {arr.size} values, the model has {channels} input channels")
    if not np.all(np.isfinite(arr)):
        raise OptionError(f"input {what} has non-finite values")
    return torch.from_numpy(arr.astype(np.float32))


class KDModel(nn.Module):
    """Base class: norm -> body -> global average pool -> dropout = features; head = Linear.

    Subclasses set `self.norm`, `self.body` (a module mapping N x C x ... to N x F x ...),
    `self.drop`, `self.head` and `self.spatial_dims`.
    """

    spatial_dims: int = 1

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)

    def set_input_stats(self, mean, std) -> None:
        """Per-channel mean and std of the raw training inputs; std is clamped to >= 1e-6."""
        self.norm.set_stats(mean, std)

    def fit_input_stats(self, X) -> None:
        """Set the statistics the input normalisation keeps from raw training inputs (`InputNorm.stats_of`)."""
        self.norm.set_stats(*self.norm.stats_of(X))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(self.norm(x))
        # Global average pool as a plain mean: exports to ONNX for any batch and any length.
        h = h.mean(dim=tuple(range(2, 2 + self.spatial_dims)))
        return self.drop(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def feature_dim(self) -> int:
        return int(self.head.in_features)

    @property
    def num_classes(self) -> int:
        return int(self.head.out_features)


def count_params(model: nn.Module) -> int:
    """All parameters, trainable or not (buffers such as BN running stats are not parameters)."""
    return int(sum(p.numel() for p in model.parameters()))
