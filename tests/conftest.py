import numpy as np
import pytest


def make_npz(path, kind="1d", n_train=24, n_test=12, classes=3, seed=0):
    """A small learnable dataset: each class is a different frequency (1D) or blob position (3D)."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = np.arange(n) % classes
        if kind == "1d":
            t = np.linspace(0, 1, 48)
            X = np.stack([np.sin(2 * np.pi * (c + 1) * 2 * t + rng.uniform(0, 6.28)) for c in y])[:, None, :]
        else:
            X = np.zeros((n, 1, 4, 8, 8))
            for i, c in enumerate(y):
                X[i, 0, :, 2 * c : 2 * c + 2, 2:4] = 1.0
        X = X + 0.1 * rng.standard_normal(X.shape)
        return X.astype(np.float32), y.astype(np.int64)

    Xtr, ytr = split(n_train)
    Xte, yte = split(n_test)
    np.savez(path, X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte)
    return path


@pytest.fixture
def npz_1d(tmp_path):
    return make_npz(tmp_path / "tiny1d.npz", "1d")


@pytest.fixture
def npz_3d(tmp_path):
    return make_npz(tmp_path / "tiny3d.npz", "3d")


def pytest_configure(config):
    """`pytest -q` (the README's test command) runs everything but the slow end-to-end group (marked
    `slow`: tests that train or bench real models for seconds each), which `.ci/run` runs next as
    `pytest -q -m slow`. Giving `-m`, or naming a test file or a test, runs exactly what was asked."""
    if config.option.markexpr:
        return
    if not any(str(a).split("::")[0].endswith(".py") for a in config.args):
        config.option.markexpr = "not slow"
