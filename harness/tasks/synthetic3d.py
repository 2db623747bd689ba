"""Two generated 3D tasks, deterministic in the data seed (`TaskSpec.load(seed)`).

moving-digits  N x 1 x 16 x 32 x 32 clips (channels, frames, H, W); 10 classes; 1000 train / 500 test.
    A real handwritten 4 or 9 (scikit-learn's 8x8 `load_digits`, upscaled 2x to 16x16) moves across
    a 32x32 canvas that wraps at the edges (a torus, so the direction never flips). The label is
    digit (4 or 9) x motion (right, up, left, down, or staying put while jittering by a pixel):
    one frame shows the digit but never its motion, so the label needs time; telling a noisy,
    moving 4 from a 9 is where model capacity pays.
    Nuisances: speed 0.25..1 px/frame, heading within +-25 degrees of the class direction, random
    start, per-clip gain and background offset, per-frame flicker, Gaussian pixel noise (sigma
    0.15), and a distractor (a dimmer 8x8 blob of a digit's shuffled pixels drifting any way).
    Train clips draw from the first two thirds of the 1797 digit images (in the package's order)
    and test clips from the last third, so test measures generalisation to unseen handwriting.
    (Grouping all ten digits, e.g. 0-4 vs 5-9, proved unlearnable for the default c3d teacher from
    1000 clips; a single pair is learnable and still separates teacher from student.)

voxel-shapes   N x 1 x 32 x 32 x 32 occupancy volumes; 8 classes; 800 train / 400 test.
    Procedural solids: sphere, box, cylinder, cone, torus, square pyramid, capsule, tube (hollow
    cylinder), each randomly rotated (uniform 3D rotation), anisotropically scaled (each axis x0.8..1.25),
    sized and placed, then corrupted: up to 3 small clutter balls, an occluding box (4..10 voxels a
    side) cut out of the volume, voxel dropout (0..10 %) and Gaussian voxel noise (sigma 0.1).
    Hardest pairs: cone vs pyramid, box vs cylinder.

Both are balanced (every class has n / classes samples) and byte-identical for the same seed; the
train and test splits use independent random streams derived from the seed. Values are raw
(roughly 0..1 plus noise); models normalise with train statistics.
"""
from __future__ import annotations

import functools

import numpy as np

from harness.errors import DataError
from harness.tasks.base import Dataset, TaskSpec, register

# Salts keep each task's (and split's) random stream independent of the others for one seed.
_SALT = {"moving-digits": 0x6D6F7669, "voxel-shapes": 0x766F7865}
_SPLITS = {"train": 1, "test": 2}


def _rng(task: str, seed: int, split: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([_SALT[task], int(seed), _SPLITS[split]]))


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise DataError(f"data seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _balanced_labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    if n % classes:
        raise AssertionError(f"{n} samples do not split evenly into {classes} classes")
    return rng.permutation(np.repeat(np.arange(classes, dtype=np.int64), n // classes))


# --------------------------------------------------------------------------- moving digits

DIGIT_FRAMES, DIGIT_CANVAS = 16, 32
DIGIT_CLASSES = (4, 9)  # the two handwritten digits used: similar shapes, so recognising them takes capacity
DIGIT_MOTIONS = ("right", "up", "left", "down", "still")  # the moving ones head 0, 90, 180, 270 degrees
DIGIT_CLASS_NAMES = [f"{d} {m}" for d in DIGIT_CLASSES for m in DIGIT_MOTIONS]  # label = digit index * 5 + motion

@functools.lru_cache(maxsize=1)
def _digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits in [0, 1] and their labels, read from the file it ships.

    Reads `sklearn/datasets/data/digits.csv.gz` directly (the file `load_digits` parses) so the
    import of scikit-learn and SciPy (~2 s) is skipped.
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DataError("moving-digits needs scikit-learn installed (it ships the digit images); pip install scikit-learn")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the scikit-learn digits file {path}: {exc}") from exc
    if table.ndim != 2 or table.shape[1] != 65:
        raise DataError(f"unexpected layout of the scikit-learn digits file {path}: shape {table.shape}")
    images = (table[:, :64] / 16.0).reshape(-1, 8, 8).astype(np.float32)
    return images, table[:, 64].astype(np.int64)


def _digit_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, target = _digit_images()
    cut = (2 * len(images)) // 3  # first two thirds train, last third test: disjoint images
    sl = slice(0, cut) if split == "train" else slice(cut, None)
    return images[sl], target[sl]


def _paste_wrapped(canvas: np.ndarray, sprite: np.ndarray, top: np.ndarray, left: np.ndarray) -> None:
    """canvas[n, t] = max(canvas, sprite[n] pasted at (top[n, t], left[n, t])), wrapping on a torus.

    canvas N x T x S x S, sprite N x h x w, top/left N x T integer arrays.
    """
    n, t, size, _ = canvas.shape
    h, w = sprite.shape[1:]
    rows = (top[:, :, None] + np.arange(h)) % size  # N x T x h
    cols = (left[:, :, None] + np.arange(w)) % size  # N x T x w
    ni = np.arange(n)[:, None, None, None]
    ti = np.arange(t)[None, :, None, None]
    ri = rows[:, :, :, None]
    ci = cols[:, :, None, :]
    # Indices within one paste are distinct (h, w <= size), so a plain gather/scatter is exact.
    canvas[ni, ti, ri, ci] = np.maximum(canvas[ni, ti, ri, ci], sprite[:, None, :, :])


def _trajectory(rng, n: int, frames: int, size: int, vx: np.ndarray, vy: np.ndarray):
    start = rng.uniform(0, size, size=(n, 2))
    steps = np.arange(frames, dtype=np.float64)
    left = np.rint(start[:, :1] + vx[:, None] * steps).astype(np.int64) % size
    top = np.rint(start[:, 1:] + vy[:, None] * steps).astype(np.int64) % size
    return top, left


def _moving_digits_split(seed: int, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng("moving-digits", seed, split)
    images, target = _digit_split(split)
    T, S = DIGIT_FRAMES, DIGIT_CANVAS
    n_moving = len(DIGIT_MOTIONS) - 1
    y = _balanced_labels(rng, n, len(DIGIT_CLASS_NAMES))
    digit, motion = y // len(DIGIT_MOTIONS), y % len(DIGIT_MOTIONS)

    # Target: an image of the label's digit (from this split's images), upscaled 2x (8x8 -> 16x16).
    pick = np.empty(n, dtype=np.int64)
    for k, d in enumerate(DIGIT_CLASSES):
        sel = digit == k
        pick[sel] = rng.choice(np.flatnonzero(target == d), size=int(sel.sum()))
    sprite = np.kron(images[pick], np.ones((1, 2, 2), dtype=np.float32))  # N x 16 x 16

    # Motion: class heading +- 25 degrees (counter-clockwise from +x on screen) at 0.25..1 px/frame;
    # "still" stays put but jitters by up to 1 px a frame on each axis.
    heading = motion * (2 * np.pi / n_moving) + rng.uniform(-np.radians(25), np.radians(25), size=n)
    speed = np.where(motion == n_moving, 0.0, rng.uniform(0.25, 1.0, size=n))
    top, left = _trajectory(rng, n, T, S, speed * np.cos(heading), -speed * np.sin(heading))
    jitter = rng.integers(-1, 2, size=(2, n, T)) * (speed == 0.0)[None, :, None]
    top, left = (top + jitter[0]) % S, (left + jitter[1]) % S
    canvas = np.zeros((n, T, S, S), dtype=np.float32)
    _paste_wrapped(canvas, sprite, top, left)

    # Distractor: a scrambled 8x8 digit (its 64 pixels shuffled: a digit's ink, no digit shape),
    # dimmer, drifting any way at 0..1.5 px/frame.
    other = images[rng.integers(0, len(images), size=n)].reshape(n, 64)
    other = np.take_along_axis(other, rng.random(size=(n, 64)).argsort(axis=1), axis=1).reshape(n, 8, 8)
    other = other * rng.uniform(0.3, 0.6, size=(n, 1, 1)).astype(np.float32)
    d_head = rng.uniform(0, 2 * np.pi, size=n)
    d_speed = rng.uniform(0.0, 1.5, size=n)
    d_top, d_left = _trajectory(rng, n, T, S, d_speed * np.cos(d_head), d_speed * np.sin(d_head))
    _paste_wrapped(canvas, other.astype(np.float32), d_top, d_left)

    # Per-clip gain, per-frame flicker, per-clip background offset, Gaussian pixel noise.
    gain = rng.uniform(0.7, 1.2, size=(n, 1, 1, 1)) * rng.uniform(0.9, 1.1, size=(n, T, 1, 1))
    offset = rng.uniform(-0.1, 0.1, size=(n, 1, 1, 1))
    X = canvas * gain.astype(np.float32) + offset.astype(np.float32)
    X += np.float32(0.15) * rng.standard_normal(size=X.shape, dtype=np.float32)
    return np.ascontiguousarray(X[:, None], dtype=np.float32), y


def moving_digits(seed: int = 0) -> Dataset:
    """The moving-digits task for one data seed (cached in-process; do not modify its arrays)."""
    return _moving_digits(_check_seed(seed))


@functools.lru_cache(maxsize=2)  # ~100-160 MB per dataset
def _moving_digits(seed: int) -> Dataset:
    Xtr, ytr = _moving_digits_split(seed, "train", 1000)
    Xte, yte = _moving_digits_split(seed, "test", 500)
    return Dataset(
        name="moving-digits", kind="3d", X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte,
        classes=len(DIGIT_CLASS_NAMES), class_names=list(DIGIT_CLASS_NAMES),
        source=f"generated: harness.tasks.synthetic3d moving-digits seed={seed} (sklearn load_digits)",
    )


# --------------------------------------------------------------------------- voxel shapes

VOXEL_SIZE = 32
SHAPE_NAMES = ["sphere", "box", "cylinder", "cone", "torus", "pyramid", "capsule", "tube"]


def _inside(shape: str, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Occupancy of a unit-sized solid (extent about [-1, 1]) at local coordinates x, y, z."""
    r2 = x * x + y * y
    if shape == "sphere":
        return r2 + z * z <= 1.0
    if shape == "box":
        return np.maximum(np.maximum(np.abs(x), np.abs(y)), np.abs(z)) <= 0.8
    if shape == "cylinder":
        return (r2 <= 0.8**2) & (np.abs(z) <= 0.9)
    if shape == "cone":  # apex at z = +1, base radius 1 at z = -1
        return (np.abs(z) <= 1.0) & (r2 <= ((1.0 - z) / 2.0) ** 2)
    if shape == "torus":
        return (np.sqrt(r2) - 0.7) ** 2 + z * z <= 0.3**2
    if shape == "pyramid":  # square base half-width 1 at z = -1, apex at z = +1
        return (np.abs(z) <= 1.0) & (np.maximum(np.abs(x), np.abs(y)) <= (1.0 - z) / 2.0)
    if shape == "capsule":  # segment z in [-0.6, 0.6], radius 0.45
        zc = np.clip(z, -0.6, 0.6)
        return r2 + (z - zc) ** 2 <= 0.45**2
    if shape == "tube":
        return (r2 <= 0.85**2) & (r2 >= 0.5**2) & (np.abs(z) <= 0.9)
    raise AssertionError(shape)


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """n uniform random 3x3 rotation matrices (from normalised Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def _voxel_shapes_split(seed: int, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng("voxel-shapes", seed, split)
    S = VOXEL_SIZE
    y = _balanced_labels(rng, n, len(SHAPE_NAMES))
    rot = _random_rotations(rng, n).astype(np.float32)
    size = rng.uniform(0.45, 0.7, size=(n, 1))
    scale = (size * np.exp(rng.uniform(np.log(0.8), np.log(1.25), size=(n, 3)))).astype(np.float32)
    center = rng.uniform(-0.15, 0.15, size=(n, 3)).astype(np.float32)

    axis = (np.arange(S, dtype=np.float32) + 0.5) / S * 2.0 - 1.0  # voxel centres in [-1, 1]
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # V x 3 (d, h, w)
    X = np.empty((n, S, S, S), dtype=np.float32)
    chunk = 64
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        # local = R^T (p - c) / s, for a chunk of samples at once: chunk x V x 3
        local = np.matmul(grid[None], rot[lo:hi])  # row vector p times R == (R^T p)^T
        local -= np.matmul(center[lo:hi, None, :], rot[lo:hi])
        local /= scale[lo:hi, None, :]
        occ = np.zeros(local.shape[:2], dtype=bool)
        for k, shape in enumerate(SHAPE_NAMES):
            sel = np.flatnonzero(y[lo:hi] == k)
            if sel.size:
                q = local[sel]
                occ[sel] = _inside(shape, q[..., 0], q[..., 1], q[..., 2])
        X[lo:hi] = occ.reshape(hi - lo, S, S, S)

    # Clutter: 0..3 small balls anywhere in the volume (squared distance built from per-axis terms).
    n_blobs = 3
    blob_c = rng.uniform(-0.9, 0.9, size=(n, n_blobs, 3)).astype(np.float32)
    blob_r = rng.uniform(0.05, 0.12, size=(n, n_blobs)).astype(np.float32)
    blob_on = rng.random(size=(n, n_blobs)) < 0.6
    for b in range(n_blobs):
        dd = (axis[None, None, :] - blob_c[:, b, :, None]) ** 2  # n x 3 x S
        r2 = np.where(blob_on[:, b], blob_r[:, b] ** 2, -1.0).astype(np.float32)[:, None, None, None]
        X[dd[:, 0, :, None, None] + dd[:, 1, None, :, None] + dd[:, 2, None, None, :] <= r2] = 1.0

    # Occlusion: cut an axis-aligned box of 4..10 voxels a side out of the volume.
    lo_c = rng.integers(0, S - 4, size=(n, 3))
    side = rng.integers(4, 11, size=(n, 3))
    idx = np.arange(S)
    inbox = [(idx[None] >= lo_c[:, a, None]) & (idx[None] < (lo_c + side)[:, a, None]) for a in range(3)]
    occl = inbox[0][:, :, None, None] & inbox[1][:, None, :, None] & inbox[2][:, None, None, :]
    X[occl] = 0.0

    # Voxel dropout (0..10 %) and Gaussian noise.
    keep = rng.random(size=X.shape, dtype=np.float32) >= rng.uniform(0.0, 0.1, size=(n, 1, 1, 1)).astype(np.float32)
    X *= keep
    X += np.float32(0.1) * rng.standard_normal(size=X.shape, dtype=np.float32)
    return np.ascontiguousarray(X[:, None], dtype=np.float32), y


def voxel_shapes(seed: int = 0) -> Dataset:
    """The voxel-shapes task for one data seed (cached in-process; do not modify its arrays)."""
    return _voxel_shapes(_check_seed(seed))


@functools.lru_cache(maxsize=2)  # ~100-160 MB per dataset
def _voxel_shapes(seed: int) -> Dataset:
    Xtr, ytr = _voxel_shapes_split(seed, "train", 800)
    Xte, yte = _voxel_shapes_split(seed, "test", 400)
    return Dataset(
        name="voxel-shapes", kind="3d", X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte,
        classes=len(SHAPE_NAMES), class_names=list(SHAPE_NAMES),
        source=f"generated: harness.tasks.synthetic3d voxel-shapes seed={seed}",
    )


register(
    TaskSpec(
        name="moving-digits",
        kind="3d",
        description=(
            "generated clips 1 x 16 x 32 x 32: a handwritten 4 or 9 moving on a wrapping canvas with a "
            "distractor and noise; 10 classes = digit (4/9) x motion (right/up/left/down/still)"
        ),
        loader=moving_digits,
    )
)
register(
    TaskSpec(
        name="voxel-shapes",
        kind="3d",
        description=(
            "generated volumes 1 x 32 x 32 x 32: 8 rotated, scaled solids (sphere, box, cylinder, cone, "
            "torus, pyramid, capsule, tube) with clutter, occlusion, dropout and noise"
        ),
        loader=voxel_shapes,
    )
)
