"""Backend contract: load an artifact, run a batch. No statistics, no file formats beyond loading.

    session = get_backend("onnxruntime").open(artifact, BackendOptions(threads=2))
    logits = session.run(batch)          # numpy float32 in, numpy float32 logits out
    session.close()

Inputs are prepared outside any timed region; `Session.run` must do as little Python work as
possible because the timing loop calls it directly. `Session.prepare(batch)` converts a numpy
batch into whatever the backend consumes natively (a torch tensor, an ORT feed dict), and
`Session.run_prepared(prepared)` runs it: timing loops call only `run_prepared`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.errors import OptionError
from harness.options import check_choice, check_int


@dataclass(frozen=True)
class Artifact:
    """What a backend can load. `checkpoint` is a harness .pt file (torch backend); `onnx` an .onnx file."""

    role: str
    checkpoint: str | None = None
    onnx: str | None = None


@dataclass(frozen=True)
class BackendOptions:
    threads: int = 1
    inter_op_threads: int = 1
    device: str = "cpu"  # "cpu" | "cuda"
    graph_optimization: str = "all"  # onnxruntime: disable | basic | extended | all
    arena: bool = True  # onnxruntime: CPU memory arena on/off

    def __post_init__(self) -> None:
        check_int(self.threads, "threads")
        check_int(self.inter_op_threads, "inter-op threads")
        check_choice(self.device, "device", ("cpu", "cuda"))
        check_choice(self.graph_optimization, "graph optimisation", ("disable", "basic", "extended", "all"))

    def key(self) -> dict[str, Any]:
        """The part of a measurement's key that these options make up."""
        return asdict(self)


class Session:
    backend: str = ""
    input_shape: tuple[int | None, ...] = ()  # without batch axis; None where dynamic

    def prepare(self, batch: np.ndarray) -> Any:
        raise NotImplementedError

    def run_prepared(self, prepared: Any) -> Any:
        raise NotImplementedError

    def to_numpy(self, out: Any) -> np.ndarray:
        raise NotImplementedError

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.to_numpy(self.run_prepared(self.prepare(batch)))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Backend:
    name: str = ""

    def open(self, artifact: Artifact, options: BackendOptions) -> Session:
        raise NotImplementedError

    def available_devices(self) -> list[str]:
        return ["cpu"]

    def settings(self, options: BackendOptions) -> dict[str, Any]:
        """The backend's own settings that decide its speed under `options` (beyond BackendOptions), for
        the results file; {} when it has none of its own."""
        return {}


_BACKENDS: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    _BACKENDS[cls.name] = cls
    return cls


def get_backend(name: str) -> Backend:
    _ensure_loaded()
    if name not in _BACKENDS:
        raise OptionError(f"unknown backend {name!r}; known backends: {', '.join(sorted(_BACKENDS))}")
    return _BACKENDS[name]()


def backend_names() -> list[str]:
    _ensure_loaded()
    return sorted(_BACKENDS)


def _ensure_loaded() -> None:
    # openvino_backend registers itself with or without the optional package; opening it without the
    # package is one line naming the extra
    from harness.backends import onnxruntime_backend, openvino_backend, torch_backend, torch_compile_backend  # noqa: F401
