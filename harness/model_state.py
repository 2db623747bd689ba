"""Model weights across processes: a job returns its model's weights as bytes (`state_bytes`), the driver
rebuilds the model from its config and those bytes (`model_from_state`), and `state_digest` tells
whether two trainings produced bit-identical weights.
"""
from __future__ import annotations

import hashlib
import io


def state_bytes(model) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def model_from_state(config: dict, blob: bytes):
    import torch

    import kd_models

    model = kd_models.build_model(config)
    model.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
    model.eval()
    return model


def state_digest(model) -> str:
    """sha256 of a model's weights in state-dict order: equal digests mean bit-identical training."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
