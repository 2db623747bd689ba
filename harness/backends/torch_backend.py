"""PyTorch backend: a harness checkpoint (.pt) in, float32 logits out.

Threads: torch's intra-op thread count is process-global, so every session re-asserts its own
count in `prepare` (outside timing) before a timing loop starts. The inter-op count can be set only
once per process, before any inter-op parallel work; later requests for a different value are not
honoured and are noted in `session.warnings`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.backends.base import Artifact, Backend, BackendOptions, Session, register_backend
from harness.errors import OptionError

_INTEROP_SET: int | None = None


def _apply_threads(options: BackendOptions) -> list[str]:
    """Set torch's thread counts; returns warnings (one line each) for what could not be applied."""
    global _INTEROP_SET
    torch.set_num_threads(options.threads)
    warnings: list[str] = []
    want = options.inter_op_threads
    if _INTEROP_SET is None:
        if torch.get_num_interop_threads() != want:
            try:
                torch.set_num_interop_threads(want)
            except RuntimeError:
                pass  # already fixed by earlier parallel work in this process
        _INTEROP_SET = torch.get_num_interop_threads()
    if _INTEROP_SET != want:
        warnings.append(
            f"torch inter-op threads stay at {_INTEROP_SET} (requested {want}); torch fixes them once per process"
        )
    return warnings


def _device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise OptionError("device 'cuda' requested but torch sees no CUDA GPU (or is a CPU-only build); use --device cpu")
        return torch.device("cuda")
    raise OptionError(f"unknown device {name!r}; choose cpu or cuda")


class TorchSession(Session):
    backend = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        options: BackendOptions,
        input_shape: tuple[int, ...] | None = None,
        artifact: Artifact | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.options = options
        self.device = _device(options.device)
        self.warnings = _apply_threads(options)
        self.model = model.eval().to(self.device)
        self.input_shape = tuple(int(d) for d in input_shape) if input_shape else ()
        self.artifact = artifact
        self.metadata = metadata or {}
        self._cuda = self.device.type == "cuda"

    @classmethod
    def from_module(
        cls, module: torch.nn.Module, options: BackendOptions | None = None, input_shape: tuple[int, ...] | None = None
    ) -> "TorchSession":
        """A session around an in-memory module (no checkpoint); `input_shape` excludes the batch axis."""
        return cls(module, options or BackendOptions(), input_shape=input_shape)

    # -- outside timing -----------------------------------------------------------------------
    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        arr = np.asarray(batch)
        if self.input_shape and tuple(arr.shape[1:]) != self.input_shape:
            want = ", ".join(str(d) for d in self.input_shape)
            raise OptionError(
                f"input batch shape {tuple(arr.shape)} does not fit the model: expected (N, {want}) (N = batch size)"
            )
        if torch.get_num_threads() != self.options.threads:  # another session changed the global count
            torch.set_num_threads(self.options.threads)
        tensor = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if self._cuda:
            tensor = tensor.to(self.device)
            torch.cuda.synchronize()
        return tensor.contiguous()

    # -- the timed call -----------------------------------------------------------------------
    def run_prepared(self, prepared: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model(prepared)
        if self._cuda:
            torch.cuda.synchronize()
        return out

    def to_numpy(self, out: torch.Tensor) -> np.ndarray:
        return out.detach().to("cpu", torch.float32).numpy()

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


@register_backend
class TorchBackend(Backend):
    name = "torch"

    def open(self, artifact: Artifact, options: BackendOptions) -> TorchSession:
        from harness.artifacts import load_checkpoint

        if not artifact.checkpoint:
            raise OptionError(f"the {self.name} backend needs a checkpoint (.pt) for model {artifact.role!r}")
        _device(options.device)  # fail on a bad device before loading anything
        model, meta = load_checkpoint(Path(artifact.checkpoint))
        shape = meta.get("input_shape")
        return TorchSession(model, options, input_shape=tuple(shape) if shape else None, artifact=artifact, metadata=meta)

    def available_devices(self) -> list[str]:
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
