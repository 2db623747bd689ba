"""Real 1D tasks from the UCR/UEA archive, read offline from the .ts files sktime ships in its wheel.

Each task keeps the archive's own train/test split and its raw values (models normalise their
input with train statistics). String labels become 0..K-1 in the order of the sorted unique
labels of the TRAIN split (numeric order when every label parses as a number, else lexicographic);
`class_names` keeps the original labels.

Unequal-length sets (JapaneseVowels, lengths 7..29) are padded at the END of every series to the
longest length over train+test by repeating each channel's last value ("edge" padding). Repeating
the last value, rather than appending zeros, adds no artificial step to a value the series never
took and leaves per-channel statistics close to those of the real samples.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from harness.errors import DataError
from harness.tasks.base import Dataset, TaskSpec, register

# task name -> (archive name, equal length?, description). Unequal-length sets are edge-padded to the
# longest series, except those in RESAMPLE_TO, which are linearly resampled to a fixed length.
UCR_TASKS: dict[str, tuple[str, bool, str]] = {
    "osuleaf": ("OSULeaf", True, "UCR OSULeaf: leaf outlines as 1D shape series (6 classes, 1 x 427)"),
    "acsf1": ("ACSF1", True, "UCR ACSF1: appliance power consumption (10 classes, 1 x 1460)"),
    "arrowhead": ("ArrowHead", True, "UCR ArrowHead: arrowhead outlines (3 classes, 1 x 251)"),
    "gunpoint": ("GunPoint", True, "UCR GunPoint: hand motion, gun draw vs point (2 classes, 1 x 150)"),
    "basicmotions": (
        "BasicMotions",
        True,
        "UEA BasicMotions: accelerometer + gyroscope, 4 activities (6 channels x 100)",
    ),
    "japanesevowels": (
        "JapaneseVowels",
        False,
        "UEA JapaneseVowels: 9 speakers, LPC cepstra (12 channels, lengths 7..29 edge-padded to 29)",
    ),
    "plaid": (
        "PLAID",
        False,
        "UCR PLAID: appliance current signatures (11 classes, lengths 100..1344 resampled to 1 x 512, "
        "values as recorded)",
    ),
    "italypowerdemand": (
        "ItalyPowerDemand",
        True,
        "UCR ItalyPowerDemand: daily electricity demand, winter vs summer (2 classes, 1 x 24)",
    ),
}


def _sktime():
    try:
        import sktime  # noqa: F401
    except ImportError as exc:  # pragma: no cover - sktime is a dependency
        raise DataError(f"the UCR tasks need sktime installed ({exc}); pip install sktime") from exc
    return sktime


def _data_dir() -> str:
    return os.path.join(os.path.dirname(_sktime().__file__), "datasets", "data")


def _ts_path(archive: str, split: str) -> str:
    return os.path.join(_data_dir(), archive, f"{archive}_{split}.ts")


def _read_ts(path: str, equal_length: bool) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray]:
    """Return (X, y): X a float64 array N x C x L, or (unequal) a list of C x L_i arrays."""
    if not os.path.isfile(path):
        raise DataError(f"UCR data file missing: {path} (is the sktime wheel installed complete?)")
    from sktime.datasets import load_from_tsfile

    try:
        if equal_length:
            X, y = load_from_tsfile(path, return_data_type="numpy3D")
            X = np.asarray(X, dtype=np.float64)
        else:
            df, y = load_from_tsfile(path, return_data_type="nested_univ")
            X = [
                np.stack([np.asarray(df.iat[i, c], dtype=np.float64) for c in range(df.shape[1])])
                for i in range(df.shape[0])
            ]
    except Exception as exc:  # sktime raises several types for a malformed file
        raise DataError(f"cannot read UCR file {path}: {type(exc).__name__}: {exc}") from exc
    return X, np.asarray(y).astype(str)


# Sets whose lengths differ too much to pad (PLAID: 100..1344): resampled, keeping each series' values.
RESAMPLE_TO: dict[str, int] = {"plaid": 512}


def _resample(series: list[np.ndarray], length: int) -> np.ndarray:
    """Stack C x L_i series into N x C x length by linear interpolation over each series' own span."""
    out = np.empty((len(series), series[0].shape[0], length), dtype=np.float64)
    grid = np.linspace(0.0, 1.0, length)
    for i, s in enumerate(series):
        src = np.linspace(0.0, 1.0, s.shape[1])
        for c in range(s.shape[0]):
            out[i, c] = np.interp(grid, src, s[c])
    return out


def _pad_edge(series: list[np.ndarray], length: int) -> np.ndarray:
    """Stack C x L_i series into N x C x length, repeating each channel's last value at the end."""
    out = np.empty((len(series), series[0].shape[0], length), dtype=np.float64)
    for i, s in enumerate(series):
        n = s.shape[1]
        out[i, :, :n] = s
        out[i, :, n:] = s[:, -1:]
    return out


def _label_order(labels: np.ndarray) -> list[str]:
    uniq = sorted(set(labels.tolist()))
    try:
        return sorted(uniq, key=float)
    except ValueError:
        return uniq


def _encode(labels: np.ndarray, names: list[str], where: str) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(labels.tolist()) - set(index))
    if unknown:
        raise DataError(f"{where}: labels {unknown[:5]} do not occur in the TRAIN split")
    return np.fromiter((index[v] for v in labels.tolist()), dtype=np.int64, count=len(labels))


def load_ucr(name: str) -> Dataset:
    """Load one registered UCR/UEA task by name (case-insensitive).

    Cached in-process: every caller gets the same Dataset object, so do not modify its arrays in place.
    """
    key = str(name).strip().lower()
    if key not in UCR_TASKS:
        raise DataError(f"unknown UCR task {name!r}; known: {', '.join(sorted(UCR_TASKS))}")
    return _load_ucr(key)


@functools.lru_cache(maxsize=None)
def _load_ucr(key: str) -> Dataset:
    archive, equal, _ = UCR_TASKS[key]
    train_path, test_path = _ts_path(archive, "TRAIN"), _ts_path(archive, "TEST")
    Xtr, ytr = _read_ts(train_path, equal)
    Xte, yte = _read_ts(test_path, equal)
    if not equal and key in RESAMPLE_TO:
        Xtr, Xte = _resample(Xtr, RESAMPLE_TO[key]), _resample(Xte, RESAMPLE_TO[key])
    elif not equal:
        length = max(s.shape[1] for s in [*Xtr, *Xte])
        Xtr, Xte = _pad_edge(Xtr, length), _pad_edge(Xte, length)
    if Xtr.shape[1:] != Xte.shape[1:]:
        raise DataError(
            f"{archive}: train samples are {Xtr.shape[1:]} but test samples are {Xte.shape[1:]}"
        )
    for path, X in ((train_path, Xtr), (test_path, Xte)):
        if not np.isfinite(X).all():
            raise DataError(f"{path}: contains NaN or infinite values")
    names = _label_order(ytr)
    dataset = Dataset(
        name=key,
        kind="1d",
        X_train=np.ascontiguousarray(Xtr, dtype=np.float32),
        y_train=_encode(ytr, names, train_path),
        X_test=np.ascontiguousarray(Xte, dtype=np.float32),
        y_test=_encode(yte, names, test_path),
        classes=len(names),
        class_names=list(names),
        source=f"sktime {_sktime().__version__}: {archive}",
    )
    return dataset


def _loader(key: str):
    def load(seed: int = 0) -> Dataset:  # real data: the seed does not change it
        return load_ucr(key)

    return load


for _key, (_archive, _equal, _desc) in UCR_TASKS.items():
    register(TaskSpec(name=_key, kind="1d", description=_desc, loader=_loader(_key)))
