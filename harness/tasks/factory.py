"""Data by import path: `--dataset pkg.mod:callable` returns the training and test splits as
`torch.utils.data.Dataset`s (any object with __len__ and __getitem__ giving (sample, label)).

The callable returns (train, test), (train, test, class_names), or a dict with keys train, test and
optionally class_names. Samples are C x L (1D) or C x D x H x W (3D) arrays or tensors, every one the
same shape; labels are integers 0..K-1. The splits are read once, sample by sample, into the same
arrays an npz gives, so every stage downstream sees one kind of data. (They are held in memory:
a dataset larger than RAM is not streamed yet.)
"""
from __future__ import annotations

import numpy as np

from harness.errors import DataError, HarnessError, first_line
from harness.tasks.base import Dataset

KIND_BY_NDIM = {2: "1d", 4: "3d"}


def _split(obj, name: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(obj, (str, bytes)) or not (hasattr(obj, "__len__") and hasattr(obj, "__getitem__")):
        raise DataError(f"{what}: the {name} split is a {type(obj).__name__}, not a Dataset "
                        f"(an object with __len__ and __getitem__ returning (sample, label))")
    n = len(obj)
    if n == 0:
        raise DataError(f"{what}: the {name} split is empty")
    X, y, shape = None, np.empty(n, dtype=np.int64), None
    for i in range(n):
        try:
            item = obj[i]
        except Exception as exc:  # noqa: BLE001 - the user's __getitem__ raised
            raise DataError(f"{what}: {name}[{i}] raised {first_line(exc, with_type=True)}") from None
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{what}: {name}[{i}] is a {type(item).__name__}; a sample must be (input, label)")
        x = np.asarray(item[0].numpy() if hasattr(item[0], "numpy") else item[0])
        if x.dtype.kind not in "biuf":
            raise DataError(f"{what}: {name}[{i}] has a {x.dtype} input; inputs must be numeric")
        if shape is None:
            shape = x.shape
            if len(shape) not in KIND_BY_NDIM:
                raise DataError(f"{what}: samples have shape {shape}; expected C x L (1D) or C x D x H x W (3D)")
            X = np.empty((n, *shape), dtype=np.float32)
        elif x.shape != shape:
            raise DataError(f"{what}: samples of inconsistent shapes: {name}[{i}] is {x.shape}, "
                            f"{name}[0] is {shape}")
        label = item[1]
        label = label.item() if hasattr(label, "item") else label
        if isinstance(label, bool) or not float(label).is_integer():
            raise DataError(f"{what}: {name}[{i}] has label {label!r}; labels must be integers 0..K-1")
        X[i], y[i] = x, int(label)
    if not np.isfinite(X).all():
        raise DataError(f"{what}: the {name} split has non-finite inputs")
    return X, y


def load_dataset_factory(path: str, kwargs: dict | None = None, name: str | None = None) -> Dataset:
    """Call the factory (user code runs now), check what it returns, and read both splits."""
    from kd_models.factory import check_kwargs, resolve_factory

    what = f"dataset {path}"
    fn = resolve_factory(path, "dataset factory")
    try:
        out = fn(**check_kwargs(kwargs, "dataset factory"))
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's factory raised
        raise DataError(f"{what} raised {first_line(exc, with_type=True)}") from None
    names = None
    if isinstance(out, dict):
        if "train" not in out or "test" not in out:
            raise DataError(f"{what} returned a dict with keys {sorted(map(str, out))}; it needs train and test")
        train, test, names = out["train"], out["test"], out.get("class_names")
    elif isinstance(out, (tuple, list)) and len(out) in (2, 3):
        train, test = out[0], out[1]
        names = out[2] if len(out) == 3 else None
    else:
        raise DataError(f"{what} returned a {type(out).__name__}; it must return (train, test), "
                        f"(train, test, class_names) or a dict with train and test Datasets")
    X_train, y_train = _split(train, "train", what)
    X_test, y_test = _split(test, "test", what)
    if X_train.shape[1:] != X_test.shape[1:]:
        raise DataError(f"{what}: train samples are {X_train.shape[1:]}, test samples {X_test.shape[1:]}")
    classes = int(max(y_train.max(), y_test.max())) + 1
    if names is not None:
        names = [str(n) for n in names]
        if len(names) < classes:
            raise DataError(f"{what}: {len(names)} class names for labels up to {classes - 1}")
        classes = len(names)
    return Dataset(name=name or path.split(":", 1)[1].lower().replace("_", "-"),
                   kind=KIND_BY_NDIM[X_train.ndim - 1], X_train=X_train, y_train=y_train, X_test=X_test,
                   y_test=y_test, classes=classes, class_names=names or [str(i) for i in range(classes)],
                   source=f"dataset factory {path}")
