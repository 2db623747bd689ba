"""Evidence: a 3D dataset larger than the memory the process may use trains and benches, streamed.

    python scripts/streamed_memory_check.py make DIR --gib 2      # clips on disk as .npy files (memmap)
    # then, inside a memory cgroup smaller than the files (see docs/evidence/streamed-memory.txt):
    cd scripts && harness train --dataset streamed_memory_check:data --dataset-kwargs '{"root": "DIR"}' \
        --teacher streamed_memory_check:teacher --student streamed_memory_check:student --epochs 1

`data(root)` returns map-style Datasets whose rows are read from np.load(..., mmap_mode="r"): a row is
paged in when the harness asks for it, never the whole file. The clips are moving-blob videos whose class
is the blob's quadrant x direction (8 classes), with noise: learnable, and generated in blocks so that
writing them needs no more memory than reading them.
"""
from __future__ import annotations

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
    """One split's clips, read a row at a time from the memory-mapped file."""

    def __init__(self, root: str, split: str):
        self.X = np.load(Path(root) / f"X_{split}.npy", mmap_mode="r")
        self.y = np.load(Path(root) / f"y_{split}.npy")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return np.array(self.X[i]), int(self.y[i])


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
