"""User data: an .npz archive with X_train, y_train, X_test, y_test.

    X_*: N x C x L (kind "1d"; N x L is one channel) or N x C x D x H x W (kind "3d"), any real
         numeric dtype, finite.
    y_*: 1-D labels: integers (integral floats accepted) or strings, any values (UCR's 1..K or -1/1,
         sktime's "1", "2", gaps). The K >= 2 distinct training labels, sorted (numeric strings by
         value), become class indices 0..K-1 and their names are kept; a test label that no training
         sample carries is refused.

Every problem raises DataError with one line naming the file and what to fix. Other keys in the
archive are ignored. Arrays come back as C-contiguous float32 (X) and int64 (y).
"""
from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.tasks.base import Dataset

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("X_train", "y_train", "X_test", "y_test")
KIND_BY_NDIM = {3: "1d", 5: "3d"}
_LAYOUT = {3: "N x C x L", 5: "N x C x D x H x W"}
_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float (complex, strings, objects are rejected)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise DataError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, expected an .npz file with {', '.join(REQUIRED_KEYS)}")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{path}: holds pickled data, which is not loaded for safety; save plain numeric arrays with numpy.savez") from exc
        raise DataError(f"{path}: not a valid .npz archive ({_one_line(exc)}); save one with numpy.savez") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read it as an .npz archive ({_one_line(exc)})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path}: is a single .npy array, not an .npz archive; save X_train, y_train, X_test, y_test with numpy.savez"
        )
    with archive:
        missing = [k for k in REQUIRED_KEYS if k not in archive.files]
        if missing:
            have = ", ".join(archive.files) or "none"
            raise DataError(f"{path}: missing key(s) {', '.join(missing)} (keys present: {have}); need {', '.join(REQUIRED_KEYS)}")
        out = {}
        for key in REQUIRED_KEYS:
            try:
                out[key] = archive[key]
            except ValueError as exc:
                if "pickle" in str(exc) or "Object arrays" in str(exc):
                    raise DataError(f"{path}: {key} is an object array (needs pickle); store a plain numeric array") from exc
                raise DataError(f"{path}: cannot read {key} ({_one_line(exc)})") from exc
            except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
                raise DataError(f"{path}: cannot read {key}, the archive is corrupt ({_one_line(exc)})") from exc
    return out


def _check_x(path: str, key: str, X: np.ndarray) -> np.ndarray:
    if X.dtype.kind not in _NUMERIC_KINDS:
        raise DataError(f"{path}: {key} has non-numeric dtype {X.dtype}; store real numbers (float32 is best)")
    if X.ndim == 2:  # N x L: univariate series without a channel axis (how many UCR dumps look)
        X = X[:, None, :]
    if X.ndim not in KIND_BY_NDIM:
        raise DataError(
            f"{path}: {key} has {X.ndim} dimensions {X.shape}; expected 2 (N x L) or 3 (N x C x L) for 1D, "
            f"5 (N x C x D x H x W) for 3D"
        )
    if X.shape[0] == 0:
        raise DataError(f"{path}: {key} is empty (0 samples)")
    if any(d == 0 for d in X.shape[1:]):
        raise DataError(f"{path}: {key} has a zero-length axis in its sample shape {X.shape[1:]} ({_LAYOUT[X.ndim]})")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = int(np.size(X) - np.count_nonzero(np.isfinite(X)))
        raise DataError(f"{path}: {key} has {bad} NaN or infinite value(s); clean or impute them first")
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        X32 = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X32).all():
        raise DataError(f"{path}: {key} has values too large for float32 (|x| > 3.4e38); rescale them")
    return X32


def _check_y(path: str, key: str, y: np.ndarray, n: int, x_key: str) -> np.ndarray:
    """Shape and value checks; returns int64 (integral numbers) or str labels, not yet class indices."""
    if y.dtype.kind not in _NUMERIC_KINDS + "US":
        raise DataError(f"{path}: {key} has unsupported dtype {y.dtype}; labels must be integers or strings")
    if y.ndim != 1:
        raise DataError(f"{path}: {key} must be 1-D (one label per sample), got shape {y.shape}")
    if len(y) == 0:
        raise DataError(f"{path}: {key} is empty (0 labels)")
    if len(y) != n:
        raise DataError(f"{path}: {x_key} has {n} samples but {key} has {len(y)} labels")
    if y.dtype.kind in "US":
        return np.char.decode(y, "utf-8", "replace").astype(str) if y.dtype.kind == "S" else y.astype(str)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DataError(f"{path}: {key} has NaN or infinite labels; labels must be integers or strings")
        if not np.array_equal(y, np.round(y)):
            # Fractional values are regression targets or a wrong column, not class labels.
            example = y[np.flatnonzero(y != np.round(y))[0]]
            raise DataError(f"{path}: {key} has non-integer labels (e.g. {example!r}); labels must be integers or strings")
        if np.abs(y).max() > 2**53:
            raise DataError(f"{path}: {key} has labels too large to tell apart as float; store them as integers")
    if y.dtype.kind == "u" and y.max() > np.iinfo(np.int64).max:
        raise DataError(f"{path}: {key} has labels too large for int64; store them as smaller integers or strings")
    return np.ascontiguousarray(y, dtype=np.int64)


def _sort_key(label: str):
    """Numeric strings ("1", "2", "10") in numeric order, the rest after them in text order."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def encode_labels(path: str, y_train: np.ndarray, y_test: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, list[str], bool]:
    """Class indices 0..K-1 for any label values (UCR's 1..K or -1/1, sktime's strings, gaps), K = the
    distinct training labels in sorted order. Returns (y_train, y_test, class names, remapped?).
    A test label that no training sample carries is refused: no model could learn it."""
    if (y_train.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        kinds = {k: "strings" if a.dtype.kind == "U" else "numbers" for k, a in (("y_train", y_train), ("y_test", y_test))}
        raise DataError(f"{path}: y_train holds {kinds['y_train']} but y_test holds {kinds['y_test']}; "
                        f"store both label arrays the same way")
    values = np.unique(y_train)
    if values.size < 2:
        raise DataError(
            f"{path}: y_train holds a single class (all {len(y_train)} training labels are {values[0]}); "
            f"a classifier needs at least 2 classes in the training data"
        )
    if y_train.dtype.kind == "U":
        values = np.array(sorted(values.tolist(), key=_sort_key))
    unseen = np.setdiff1d(np.unique(y_test), values)
    if unseen.size:
        shown = ", ".join(str(v) for v in unseen[:10]) + (", ..." if unseen.size > 10 else "")
        raise DataError(f"{path}: y_test has label(s) {shown} that no training sample carries "
                        f"(training labels: {', '.join(str(v) for v in values[:10])}{', ...' if values.size > 10 else ''})")
    if y_train.dtype.kind != "U" and np.array_equal(values, np.arange(values.size)):  # already 0..K-1
        return y_train, y_test, [str(i) for i in range(values.size)], False
    index = {v: i for i, v in enumerate(values.tolist())}

    def encode(y: np.ndarray) -> np.ndarray:
        return np.fromiter((index[v] for v in y.tolist()), dtype=np.int64, count=len(y))

    return encode(y_train), encode(y_test), [str(v) for v in index], True


def load_npz(path) -> Dataset:
    """Load and validate a user's .npz file; raise DataError (one line) on any problem."""
    path = os.fspath(path)
    raw = _read(path)
    X_train = _check_x(path, "X_train", raw["X_train"])
    X_test = _check_x(path, "X_test", raw["X_test"])
    if X_train.ndim != X_test.ndim:
        raise DataError(
            f"{path}: X_train has {X_train.ndim} dimensions but X_test has {X_test.ndim}; both must be 1D (3) or 3D (5)"
        )
    if X_train.shape[1:] != X_test.shape[1:]:
        raise DataError(
            f"{path}: per-sample shapes differ: X_train {X_train.shape[1:]} vs X_test {X_test.shape[1:]} "
            f"({_LAYOUT[X_train.ndim]})"
        )
    y_train = _check_y(path, "y_train", raw["y_train"], len(X_train), "X_train")
    y_test = _check_y(path, "y_test", raw["y_test"], len(X_test), "X_test")

    y_train, y_test, class_names, remapped = encode_labels(path, y_train, y_test)
    classes = len(class_names)
    if remapped:
        shown = ", ".join(f"{name}->{i}" for i, name in enumerate(class_names[:12]))
        log.info(f"{path}: labels mapped to class indices {shown}{', ...' if classes > 12 else ''}")
    return Dataset(
        name=Path(path).stem.lower(),
        kind=KIND_BY_NDIM[X_train.ndim],
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        classes=classes,
        class_names=class_names,
        source=path,
    )
