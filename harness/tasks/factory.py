"""Data by import path: `--dataset pkg.mod:callable` returns the training and test splits as
`torch.utils.data.Dataset`s (any object with __len__ and __getitem__ giving (sample, label)).

The callable returns (train, test), (train, test, class_names), or a dict with keys train, test and
optionally class_names. Samples are C x L (1D) or C x D x H x W (3D) arrays or tensors, every one the
same shape; labels are integers 0..K-1. Each split is scanned once, a sample at a time (shapes, labels,
a fingerprint), and then streamed: the harness fetches the rows it uses from the user's Datasets, never
the whole split (harness/tasks/streamed.py), so data larger than memory trains and benches.
"""
from __future__ import annotations

import numpy as np

from harness.errors import DataError, HarnessError, first_line
from harness.tasks.base import Dataset
from harness.tasks.streamed import _SPLITS, DatasetSource, StreamedSplit, sample_array, split_pair

KIND_BY_NDIM = {2: "1d", 4: "3d"}


def _scan(obj, name: str, what: str, source: DatasetSource) -> tuple[StreamedSplit, np.ndarray]:
    """One pass over a split, a sample at a time: shapes, dtypes, finiteness and labels checked, the
    inputs hashed (the run's fingerprint), nothing kept but the labels."""
    import hashlib

    if isinstance(obj, (str, bytes)) or not (hasattr(obj, "__len__") and hasattr(obj, "__getitem__")):
        raise DataError(f"{what}: the {name} split is a {type(obj).__name__}, not a Dataset "
                        f"(an object with __len__ and __getitem__ returning (sample, label))")
    n = len(obj)
    if n == 0:
        raise DataError(f"{what}: the {name} split is empty")
    y, shape, h = np.empty(n, dtype=np.int64), None, hashlib.sha256()
    for i in range(n):
        try:
            item = obj[i]
        except Exception as exc:  # noqa: BLE001 - the user's __getitem__ raised
            raise DataError(f"{what}: {name}[{i}] raised {first_line(exc, with_type=True)}") from None
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{what}: {name}[{i}] is a {type(item).__name__}; a sample must be (input, label)")
        x = sample_array(item[0])
        if x.dtype.kind not in "biuf":
            raise DataError(f"{what}: {name}[{i}] has a {x.dtype} input; inputs must be numeric")
        if shape is None:
            shape = x.shape
            if len(shape) not in KIND_BY_NDIM:
                raise DataError(f"{what}: samples have shape {shape}; expected C x L (1D) or C x D x H x W (3D)")
        elif x.shape != shape:
            raise DataError(f"{what}: samples of inconsistent shapes: {name}[{i}] is {x.shape}, "
                            f"{name}[0] is {shape}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{what}: {name}[{i}] has non-finite inputs")
        h.update(x.tobytes())
        label = item[1]
        label = label.item() if hasattr(label, "item") else label
        if isinstance(label, bool) or not isinstance(label, (int, float, np.integer, np.floating)) \
                or not float(label).is_integer():
            raise DataError(f"{what}: {name}[{i}] has label {label!r}; labels must be integers 0..K-1")
        y[i] = int(label)
    h.update(str((np.dtype(np.float32), (n, *shape))).encode())
    return StreamedSplit(source, name, shape, n, digest=h.hexdigest()[:16]), y


def load_dataset_factory(path: str, kwargs: dict | None = None, name: str | None = None,
                         import_root: str | None = None) -> Dataset:
    """Call the factory (user code runs now), check what it returns, and scan both splits once. The
    Dataset's inputs are StreamedSplits: rows are fetched from the user's Datasets when used."""
    from kd_models.factory import check_kwargs, describe_import_root

    what = f"dataset {path}"
    source = DatasetSource.of(path, check_kwargs(kwargs, "dataset factory"), import_root)
    try:
        out = source.call()
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's factory raised
        raise DataError(f"{what} raised {first_line(exc, with_type=True)}") from None
    source = DatasetSource(source.path, source.kwargs, describe_import_root(path) or import_root)
    train, test, names = split_pair(out, path)
    X_train, y_train = _scan(train, "train", what, source)
    X_test, y_test = _scan(test, "test", what, source)
    _SPLITS[(source.path, source.kwargs)] = (train, test)
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
                   source=f"dataset factory {path} (streamed)")
