"""The contract every task honours: arrays in, metadata beside them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from harness.errors import DataError


@dataclass
class Dataset:
    """A task's data, ready for training: float32 inputs, int64 labels 0..K-1.

    X_* are N x C x L (kind "1d") or N x C x D x H x W (kind "3d").
    """

    name: str
    kind: str  # "1d" | "3d"
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: int
    class_names: list[str] = field(default_factory=list)
    source: str = ""  # where the arrays came from (package file, generator + seed, npz path)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch axis."""
        return tuple(int(d) for d in self.X_train.shape[1:])

    @property
    def in_channels(self) -> int:
        return int(self.X_train.shape[1])

    def info(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "classes": int(self.classes),
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "source": self.source,
        }


@dataclass(frozen=True)
class TaskSpec:
    """A named task in the registry. `load(seed)` builds its Dataset (seed matters for generated tasks)."""

    name: str
    kind: str
    description: str
    loader: Callable[[int], Dataset]

    def load(self, seed: int = 0) -> Dataset:
        return self.loader(seed)


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"task {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    _ensure_loaded()
    key = name.strip().lower()
    if key not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise DataError(f"unknown task {name!r}; known tasks: {known}")
    return _REGISTRY[key]


def list_tasks() -> list[TaskSpec]:
    _ensure_loaded()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _ensure_loaded() -> None:
    # Importing the modules registers their tasks; done lazily so `harness --help` stays fast.
    from harness.tasks import ucr, synthetic3d  # noqa: F401
