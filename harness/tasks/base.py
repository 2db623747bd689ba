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

    def __post_init__(self) -> None:
        check_labels(self)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch axis."""
        return tuple(int(d) for d in self.X_train.shape[1:])

    @property
    def in_channels(self) -> int:
        return int(self.X_train.shape[1])

    def fingerprint(self) -> dict:
        """What decides a model trained on this data: the arrays' digests and the label space
        (a training job's content key; `source` and class names are descriptions, not content)."""
        import hashlib

        from harness.tasks.streamed import chunks, is_streamed

        def digest(a: np.ndarray) -> str:
            if is_streamed(a):  # the same bytes as an array of these rows would hash, a chunk at a time
                if a.digest is None:
                    h = hashlib.sha256()
                    for block in chunks(a):
                        h.update(np.ascontiguousarray(block).tobytes())
                    h.update(str((a.dtype, a.shape)).encode())
                    a.digest = h.hexdigest()[:16]
                return a.digest
            a = np.ascontiguousarray(a)
            return hashlib.sha256(a.tobytes() + str((a.dtype, a.shape)).encode()).hexdigest()[:16]

        return {"kind": self.kind, "classes": int(self.classes),
                "arrays": [digest(a) for a in (self.X_train, self.y_train, self.X_test, self.y_test)]}

    def info(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "classes": int(self.classes),
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "source": self.source,
            # the label each class index stands for (an npz's own labels, e.g. UCR's "1".."K")
            "class_names": list(self.class_names),
        }


def check_labels(data: "Dataset") -> None:
    """The label checks every way in shares (npz, UCR, generated tasks, sweep subsets); DataError otherwise.

    Training needs at least 2 classes present in y_train; every label must lie in 0..classes-1; and a
    test label that no training sample carries is refused (no model could learn it, so the accuracy
    would measure the data, not the model). A training class that test lacks is allowed.
    """
    where = data.source or data.name
    y_train = np.asarray(data.y_train)
    y_test = np.asarray(data.y_test)
    if y_train.size == 0 or y_test.size == 0:
        raise DataError(f"{where}: {'y_train' if y_train.size == 0 else 'y_test'} is empty (0 labels)")
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        if y.min() < 0 or y.max() >= data.classes:
            raise DataError(f"{where}: {key} has labels outside 0..{data.classes - 1}")
    present = np.unique(y_train)
    if present.size < 2:
        raise DataError(
            f"{where}: the training labels hold a single class ({int(present[0])}, {y_train.size} samples); "
            f"a classifier needs at least 2 classes in the training data"
        )
    unseen = np.setdiff1d(np.unique(y_test), present)
    if unseen.size:
        shown = ", ".join(str(int(c)) for c in unseen[:10]) + (", ..." if unseen.size > 10 else "")
        raise DataError(f"{where}: y_test has class(es) {shown} that no training sample carries")


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
