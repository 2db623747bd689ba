"""Evidence: a 3D dataset larger than the memory the process may use trains and benches, streamed.

    python scripts/streamed_memory_check.py make DIR --gib 2      # clips on disk as .npy files (written a block at a time)
    # then, inside a memory cgroup smaller than the files (see docs/evidence/streamed-memory.txt):
    cd scripts && harness train --dataset streamed_memory_check:data --dataset-kwargs '{"root": "DIR"}' \
        --teacher streamed_memory_check:teacher --student streamed_memory_check:student --epochs 1

`data(root)` returns map-style Datasets whose rows are read from the .npy files with os.pread when the
harness asks for them, never the whole file. The clips are moving-blob videos whose class
is the blob's quadrant x direction (8 classes), with noise: learnable, and generated in blocks so that
writing them needs no more memory than reading them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

SHAPE = (1, 16, 32, 32)
CLASSES = 8


def _block(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    n = len(labels)
    x = 0.5 * rng.standard_normal((n, *SHAPE)).astype(np.float32)
    quad, direction = labels % 4, labels // 4
    for i in range(n):
        y0, x0 = 4 + 16 * (quad[i] // 2), 4 + 16 * (quad[i] % 2)
        for t in range(SHAPE[1]):
            dy = (t // 4) if direction[i] else 0
            dx = 0 if direction[i] else (t // 4)
            x[i, 0, t, y0 + dy:y0 + dy + 4, x0 + dx:x0 + dx + 4] += 2.0
    return x


def make(root: str, gib: float, test_fraction: float = 0.1, seed: int = 0) -> None:
    root_path = Path(root)
    root_path.mkdir(parents=True, exist_ok=True)
    per_sample = int(np.prod(SHAPE)) * 4
    n = int(gib * 2**30 // per_sample)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n - int(n * test_fraction)), ("test", int(n * test_fraction))):
        y = rng.integers(0, CLASSES, count).astype(np.int64)
        X = np.lib.format.open_memmap(root_path / f"X_{split}.npy", mode="w+", dtype=np.float32,
                                      shape=(count, *SHAPE))
        for start in range(0, count, 1024):
            X[start:start + 1024] = _block(rng, y[start:start + 1024])
            X.flush()
        del X
        np.save(root_path / f"y_{split}.npy", y)
        print(f"{split}: {count} clips, {count * per_sample / 2**30:.2f} GiB")


class Clips:
    """One split's clips, each row read from its .npy file on demand with os.pread.

    Not np.load(mmap_mode="r"): a page fault on a memory map reads ahead by the device's read_ahead_kb
    (8 MiB on this VM's disk), so random rows of 64 KiB each pulled in ~100x their size and, under a
    memory limit, evicted each other (80 GB read in 6 minutes for a 3 GiB file). A pread reads one row."""

    def __init__(self, root: str, split: str):
        self.path = Path(root) / f"X_{split}.npy"
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            self.offset = f.tell()
        self.shape, self.dtype = tuple(shape[1:]), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.y = np.load(Path(root) / f"y_{split}.npy")
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        if self._fd is None:  # opened lazily: a Dataset sent to a worker process opens its own
            self._fd = os.open(self.path, os.O_RDONLY)
        buf = os.pread(self._fd, self.row_bytes, self.offset + int(i) * self.row_bytes)
        return np.frombuffer(buf, dtype=self.dtype).reshape(self.shape).copy(), int(self.y[i])

    def __getstate__(self):
        return {**self.__dict__, "_fd": None}


def _net(widths: list[int], classes: int = CLASSES):
    """A 3D CNN that pools the clip 2x first: cheap per voxel, so a pass over gigabytes takes minutes."""
    from torch import nn

    layers, cin = [nn.AvgPool3d(2)], SHAPE[0]
    for w in widths:
        layers += [nn.Conv3d(cin, w, 3, stride=(1, 2, 2), padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU()]
        cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(cin, classes))


def teacher():
    return _net([16, 32, 64])


def student():
    return _net([4, 8, 16])


def data(root: str):
    return Clips(root, "train"), Clips(root, "test"), [f"q{q}-{d}" for d in ("right", "down") for q in range(4)]


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2], float(sys.argv[4]) if len(sys.argv) > 4 else 2.0)
    else:
        print(__doc__)
