"""What the harness checks and records about any model it trains or measures, built-in or a user's own."""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.errors import DataError, HarnessError, first_line


def describe_model(model, config: dict[str, Any], input_shape) -> dict[str, Any]:
    """The record a checkpoint, a training summary and a results file keep of a model: what it is (family
    or import path and arguments, the source file's sha256), its parameters and MACs per sample, and the
    layer types whose MACs could not be counted (never a silently low count)."""
    import kd_models

    detail = kd_models.count_macs_detail(model, input_shape)
    out = {"family": kd_models.model_label(config), "model_config": config,
           "params": kd_models.count_params(model), "macs": detail["macs"], "macs_detail": detail}
    if kd_models.is_factory_spec(config):
        out["model_source"] = kd_models.describe_source(config)
    return out


def check_fits_data(model, X: np.ndarray, classes: int, what: str) -> None:
    """A forward pass on two real samples: the model must take the data's shape and give one logit per class
    (DataError otherwise, before any training or export starts)."""
    import torch

    sample = torch.from_numpy(np.ascontiguousarray(X[:2], dtype=np.float32))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(sample)
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's forward raised on the data's shape
        raise DataError(f"{what} fails on the data's samples of shape {tuple(X.shape[1:])}: "
                        f"{first_line(exc, with_type=True)}") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise DataError(f"{what} returns a {type(out).__name__}; a classifier must return one logits tensor")
    if tuple(out.shape) != (len(sample), classes):
        raise DataError(f"{what} gives outputs of shape {tuple(out.shape[1:])} per batch of {len(sample)}; "
                        f"the data has {classes} classes, so one logit per class, shape ({classes},), is needed")


def check_spec_fits_data(config: dict[str, Any], X: np.ndarray, classes: int, what: str) -> None:
    """Build the model a spec names (its factory runs now, not first in a worker) and `check_fits_data`."""
    import kd_models

    check_fits_data(kd_models.build_model(config, what=what), X, classes, what)
