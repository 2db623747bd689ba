"""User data: an .npz archive with X_train, y_train, X_test, y_test.

    X_*: N x C x L (kind "1d") or N x C x D x H x W (kind "3d"), any real numeric dtype, finite.
    y_*: 1-D integer labels 0..K-1 (integral floats are accepted), K = max train label + 1 >= 2;
         every class 0..K-1 must occur in train, and test may not hold a label train lacks.

Every problem raises DataError with one line naming the file and what to fix. Other keys in the
archive are ignored. Arrays come back as C-contiguous float32 (X) and int64 (y).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.tasks.base import Dataset

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
    if X.ndim not in KIND_BY_NDIM:
        raise DataError(
            f"{path}: {key} has {X.ndim} dimensions {X.shape}; expected 3 (N x C x L, 1D) or 5 (N x C x D x H x W, 3D)"
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
    if y.dtype.kind not in _NUMERIC_KINDS:
        raise DataError(f"{path}: {key} has non-numeric dtype {y.dtype}; labels must be integers 0..K-1")
    if y.ndim != 1:
        raise DataError(f"{path}: {key} must be 1-D (one label per sample), got shape {y.shape}")
    if len(y) == 0:
        raise DataError(f"{path}: {key} is empty (0 labels)")
    if len(y) != n:
        raise DataError(f"{path}: {x_key} has {n} samples but {key} has {len(y)} labels")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DataError(f"{path}: {key} has NaN or infinite labels; labels must be integers 0..K-1")
        if not np.array_equal(y, np.round(y)):
            example = y[np.flatnonzero(y != np.round(y))[0]]
            raise DataError(f"{path}: {key} has non-integer labels (e.g. {example!r}); labels must be integers 0..K-1")
        if np.abs(y).max() > 2**53:
            raise DataError(f"{path}: {key} has labels too large to be class indices; labels must be integers 0..K-1")
    if y.dtype.kind == "u" and y.max() > np.iinfo(np.int64).max:
        raise DataError(f"{path}: {key} has labels too large to be class indices; labels must be integers 0..K-1")
    y64 = np.ascontiguousarray(y, dtype=np.int64)
    if y64.min() < 0:
        raise DataError(f"{path}: {key} has negative labels (min {int(y64.min())}); labels must be integers 0..K-1")
    return y64


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

    classes = int(y_train.max()) + 1
    if classes > len(y_train):  # cannot all be present; also keeps bincount small for wild labels
        raise DataError(
            f"{path}: y_train's largest label is {classes - 1} but there are only {len(y_train)} training samples, "
            f"so some of 0..{classes - 1} never occur; labels must be 0..K-1 with every class present"
        )
    counts = np.bincount(y_train, minlength=classes)
    if np.count_nonzero(counts) < 2:
        label = int(np.flatnonzero(counts)[0])
        raise DataError(
            f"{path}: y_train holds a single class (all {len(y_train)} training labels are {label}); "
            f"a classifier needs at least 2 classes in the training data"
        )
    absent = np.flatnonzero(counts == 0)
    if absent.size:
        shown = ", ".join(str(int(c)) for c in absent[:10]) + (", ..." if absent.size > 10 else "")
        raise DataError(
            f"{path}: y_train labels must be 0..K-1 with every class present, but {absent.size} of 0..{classes - 1} "
            f"never occur ({shown}); relabel classes consecutively"
        )
    if int(y_test.max()) >= classes:
        unseen = sorted({int(v) for v in y_test[y_test >= classes][:1000]})
        raise DataError(
            f"{path}: y_test has label(s) {', '.join(map(str, unseen[:10]))} outside train's range 0..{classes - 1}"
        )
    return Dataset(
        name=Path(path).stem.lower(),
        kind=KIND_BY_NDIM[X_train.ndim],
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        classes=classes,
        class_names=[str(i) for i in range(classes)],
        source=path,
    )
