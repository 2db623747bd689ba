"""A split of a user's map-style Dataset as an array the harness can index without loading it whole.

`StreamedSplit` has what the harness reads of an array (`shape`, `dtype`, `ndim`, `len`, slices and
index arrays, which return float32 rows fetched from the Dataset on demand), so the trainer's batches, the
accuracy passes, int8 calibration, parity and the timing inputs fetch only the rows they use. Whole-split
statistics (normalisation, fingerprints) go through `chunks`, a fixed number of rows at a time.

A split pickles as a reference (factory path, arguments, split name, the import root), not as data: a
worker process calls the factory itself, once, and fetches its own rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

CHUNK_ROWS = 256
_SPLITS: dict[tuple, tuple[Any, Any]] = {}  # (path, kwargs) -> the factory's (train, test), once per process


@dataclass(frozen=True)
class DatasetSource:
    """Where a streamed split comes from: `path(**kwargs)` returns (train, test[, class_names])."""

    path: str
    kwargs: tuple = ()  # sorted (name, JSON text) pairs: hashable and picklable
    import_root: str | None = None

    @classmethod
    def of(cls, path: str, kwargs: dict | None, import_root: str | None = None) -> "DatasetSource":
        return cls(path, tuple(sorted((k, json.dumps(v)) for k, v in (kwargs or {}).items())), import_root)

    def kwargs_dict(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.kwargs}

    def call(self):
        """The factory's raw return value (user code runs here)."""
        from kd_models.factory import resolve_factory

        return resolve_factory(self.path, "dataset factory", self.import_root)(**self.kwargs_dict())

    def splits(self) -> tuple[Any, Any]:
        key = (self.path, self.kwargs)
        if key not in _SPLITS:
            _SPLITS[key] = split_pair(self.call(), self.path)[:2]
        return _SPLITS[key]


def split_pair(out: Any, path: str) -> tuple[Any, Any, Any]:
    """(train, test, class_names or None) from what a dataset factory returned; DataError otherwise."""
    from harness.errors import DataError

    if isinstance(out, dict):
        if "train" not in out or "test" not in out:
            raise DataError(f"dataset {path} returned a dict with keys {sorted(map(str, out))}; it needs train and test")
        return out["train"], out["test"], out.get("class_names")
    if isinstance(out, (tuple, list)) and len(out) in (2, 3):
        return out[0], out[1], (out[2] if len(out) == 3 else None)
    raise DataError(f"dataset {path} returned a {type(out).__name__}; it must return (train, test), "
                    f"(train, test, class_names) or a dict with train and test Datasets")


def sample_array(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


class StreamedSplit:
    """Rows of one split (or of a subset of it, `indices`), fetched from the Dataset when indexed."""

    dtype = np.dtype(np.float32)

    def __init__(self, source: DatasetSource, split: str, sample_shape: tuple[int, ...], n: int,
                 indices: np.ndarray | None = None, digest: str | None = None):
        self.source, self.split = source, split
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)
        self.n = int(n) if self.indices is None else len(self.indices)
        self.digest = digest
        self._dataset = None

    def __reduce__(self):
        return (StreamedSplit, (self.source, self.split, self.sample_shape, self.n, self.indices, self.digest))

    @property
    def dataset(self):
        if self._dataset is None:
            train, test = self.source.splits()
            self._dataset = train if self.split == "train" else test
        return self._dataset

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n, *self.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.n

    def rows(self, idx) -> np.ndarray:
        """float32 rows at positions `idx` of this split (or view), in that order."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -self.n or idx.max() >= self.n):
            raise IndexError(f"row index out of range for {self.n} rows")
        idx = np.where(idx < 0, idx + self.n, idx)
        real = idx if self.indices is None else self.indices[idx]
        out = np.empty((len(real), *self.sample_shape), dtype=np.float32)
        for j, i in enumerate(real):
            out[j] = sample_array(self.dataset[int(i)][0])
        return out

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.rows([key])[0]
        if isinstance(key, slice):
            return self.rows(np.arange(self.n)[key])
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        return self.rows(key)

    def subset(self, idx) -> "StreamedSplit":
        """A view of some rows (nothing fetched): the fit/validation parts of a training split."""
        idx = np.asarray(idx, dtype=np.int64)
        real = idx if self.indices is None else self.indices[idx]
        return StreamedSplit(self.source, self.split, self.sample_shape, len(real), real, None)

    def __array__(self, dtype=None, copy=None):
        # Only for code that has not been taught to stream: every row at once.
        out = self.rows(np.arange(self.n))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"StreamedSplit({self.source.path} {self.split}, {self.shape})"


def is_streamed(X: Any) -> bool:
    return isinstance(X, StreamedSplit)


def take_rows(X: Any, idx) -> Any:
    """X's rows at `idx`: a view for a streamed split (nothing fetched), a copy for an array."""
    return X.subset(idx) if is_streamed(X) else X[idx]


def chunks(X: Any, rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """X in consecutive blocks of `rows` rows (arrays and streamed splits alike)."""
    for start in range(0, len(X), rows):
        yield np.asarray(X[start: start + rows])
