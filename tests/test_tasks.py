"""Tasks: every registered task honours the Dataset contract; generated tasks are deterministic
and balanced; user npz files load when valid and fail with one clear DataError line when not."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from harness.errors import DataError
from harness.tasks import get_task, list_tasks, load_dataset, load_npz
from harness.tasks import synthetic3d, ucr

TASK_NAMES = [spec.name for spec in list_tasks()]
UCR_NAMES = ["osuleaf", "acsf1", "arrowhead", "gunpoint", "basicmotions", "japanesevowels", "italypowerdemand"]
GENERATED = ["moving-digits", "voxel-shapes"]


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_task():
    assert set(UCR_NAMES + GENERATED) <= set(TASK_NAMES)
    for spec in list_tasks():
        assert spec.kind in ("1d", "3d")
        assert spec.description


def test_unknown_task_is_a_data_error():
    with pytest.raises(DataError, match="known tasks"):
        get_task("no-such-task")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_honours_the_contract(name):
    spec = get_task(name.upper())  # lookup ignores case
    d = spec.load(0)
    ndim = 3 if spec.kind == "1d" else 5
    assert d.name == name and d.kind == spec.kind
    for X in (d.X_train, d.X_test):
        assert X.dtype == np.float32 and X.ndim == ndim and X.flags.c_contiguous
        assert np.isfinite(X).all()
    for y, X in ((d.y_train, d.X_train), (d.y_test, d.X_test)):
        assert y.dtype == np.int64 and y.ndim == 1 and y.flags.c_contiguous and len(y) == len(X) > 0
        assert y.min() >= 0 and y.max() < d.classes
    assert d.X_train.shape[1:] == d.X_test.shape[1:]
    assert d.classes == len(np.unique(d.y_train)) and len(d.class_names) == d.classes
    info = d.info()
    assert info["name"] == name and info["kind"] == spec.kind
    assert info["input_shape"] == list(d.X_train.shape[1:])
    assert info["classes"] == d.classes
    assert info["n_train"] == len(d.y_train) and info["n_test"] == len(d.y_test)
    assert info["source"]


# --------------------------------------------------------------------------- UCR


def test_ucr_shapes_and_labels():
    jv = get_task("japanesevowels").load()
    assert jv.input_shape == (12, 29) and jv.classes == 9
    # Edge padding to the longest utterance over train+test: short ones end in repeated values.
    X = np.concatenate([jv.X_train, jv.X_test])
    tail_repeats = (X[:, :, -1] == X[:, :, -2]).all(axis=1)
    assert 0 < tail_repeats.sum() < len(X)
    bm = get_task("basicmotions").load()
    assert bm.in_channels == 6 and bm.class_names == ["badminton", "running", "standing", "walking"]
    gp = get_task("gunpoint").load()
    assert gp.input_shape == (1, 150) and gp.class_names == ["1", "2"]
    assert (len(gp.y_train), len(gp.y_test)) == (50, 150)
    assert gp.source.startswith("sktime ") and gp.source.endswith(": GunPoint")


def test_ucr_label_order_is_numeric_when_labels_are_numbers():
    assert ucr._label_order(np.array(["10", "9", "1"])) == ["1", "9", "10"]
    assert ucr._label_order(np.array(["b", "a", "10"])) == ["10", "a", "b"]


def test_ucr_missing_file_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ucr, "_data_dir", lambda: str(tmp_path))
    with pytest.raises(DataError, match="GunPoint_TRAIN.ts"):
        ucr._load_ucr.__wrapped__("gunpoint")


# --------------------------------------------------------------------------- generated 3D


def test_generated_shapes_and_balance():
    md = get_task("moving-digits").load(0)
    assert md.X_train.shape == (1000, 1, 16, 32, 32) and md.X_test.shape == (500, 1, 16, 32, 32)
    vs = get_task("voxel-shapes").load(0)
    assert vs.X_train.shape == (800, 1, 32, 32, 32) and vs.X_test.shape == (400, 1, 32, 32, 32)
    for d in (md, vs):
        assert d.kind == "3d"
        for y in (d.y_train, d.y_test):
            counts = np.bincount(y, minlength=d.classes)
            assert (counts == len(y) // d.classes).all()


@pytest.mark.parametrize(
    "split_fn, n", [(synthetic3d._moving_digits_split, 20), (synthetic3d._voxel_shapes_split, 16)]
)
def test_generated_is_deterministic_in_the_seed(split_fn, n):
    X0, y0 = split_fn(0, "train", n)
    X0b, y0b = split_fn(0, "train", n)
    assert X0.tobytes() == X0b.tobytes() and np.array_equal(y0, y0b)
    X1, _ = split_fn(1, "train", n)
    assert not np.array_equal(X0, X1)
    Xt, _ = split_fn(0, "test", n)
    assert not np.array_equal(X0, Xt)


def test_generated_loader_caches_per_seed_and_checks_it():
    assert get_task("voxel-shapes").load(0) is get_task("voxel-shapes").load(0)
    with pytest.raises(DataError, match="seed"):
        get_task("moving-digits").load(-1)


def test_moving_digits_train_and_test_use_disjoint_images():
    images, _ = synthetic3d._digit_images()
    train, _ = synthetic3d._digit_split("train")
    test, _ = synthetic3d._digit_split("test")
    assert len(train) + len(test) == len(images) == 1797
    train_set = {im.tobytes() for im in train}
    assert sum(im.tobytes() in train_set for im in test) < 10  # only accidental exact duplicates


def test_load_dataset_entry_point(tmp_path):
    assert load_dataset(task="gunpoint").name == "gunpoint"
    with pytest.raises(DataError, match="--task"):
        load_dataset()


# --------------------------------------------------------------------------- npz


def _valid_1d():
    rng = np.random.default_rng(0)
    return {
        "X_train": rng.normal(size=(12, 2, 30)),
        "y_train": np.array([0, 1, 2] * 4),
        "X_test": rng.normal(size=(6, 2, 30)).astype(np.float32),
        "y_test": np.array([2, 1, 0, 0, 1, 1]),
    }


def _save(tmp_path, arrays, name="MyData.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_valid_1d(tmp_path):
    path = _save(tmp_path, _valid_1d())
    d = load_npz(path)
    assert d.name == "mydata" and d.kind == "1d" and d.source == str(path)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.X_train.flags.c_contiguous and d.X_test.flags.c_contiguous
    assert d.classes == 3 and d.class_names == ["0", "1", "2"] and d.input_shape == (2, 30)
    assert load_dataset(data=str(path)).name == "mydata"


def test_npz_valid_3d_with_integral_float_labels(tmp_path):
    arrays = {
        "X_train": np.arange(4 * 1 * 3 * 4 * 5, dtype=np.int16).reshape(4, 1, 3, 4, 5),
        "y_train": np.array([0.0, 1.0, 1.0, 0.0]),
        "X_test": np.zeros((2, 1, 3, 4, 5), dtype=np.float64),
        "y_test": np.array([1, 1], dtype=np.uint8),
        "extra": np.array([1]),  # other keys are ignored
    }
    d = load_npz(_save(tmp_path, arrays, "vol.npz"))
    assert d.kind == "3d" and d.input_shape == (1, 3, 4, 5) and d.classes == 2
    assert d.y_train.tolist() == [0, 1, 1, 0] and d.y_train.dtype == np.int64


def _with(**changes):
    arrays = _valid_1d()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


BAD_ARRAYS = {
    "missing key": (_with(y_test=None), "y_test"),
    "X ndim 4": (_with(X_train=np.zeros((12, 2, 3, 4)), X_test=np.zeros((6, 2, 3, 4))), "dimensions"),
    "X ndim 2 vs 2 channels": (_with(X_train=np.zeros((12, 30))), "per-sample shapes differ"),
    "X ndim 1": (_with(X_train=np.zeros(12), X_test=np.zeros(6)), "dimensions"),
    "train/test ndim differ": (_with(X_test=np.zeros((6, 2, 30, 1, 1))), "X_test has 5"),
    "sample shape differs": (_with(X_test=np.zeros((6, 2, 31))), "per-sample shapes differ"),
    "y 2-D": (_with(y_train=np.zeros((12, 1), dtype=int)), "1-D"),
    "len mismatch": (_with(y_test=np.array([0, 1, 2])), "6 samples but y_test has 3"),
    "empty train": (_with(X_train=np.zeros((0, 2, 30)), y_train=np.zeros(0, dtype=int)), "empty"),
    "empty test": (_with(X_test=np.zeros((0, 2, 30)), y_test=np.zeros(0, dtype=int)), "empty"),
    "zero-length axis": (_with(X_train=np.zeros((12, 2, 0)), X_test=np.zeros((6, 2, 0))), "zero-length"),
    "non-integer labels": (_with(y_train=np.array([0, 1, 2.5] * 4)), "non-integer"),
    "NaN labels": (_with(y_test=np.array([0, 1, np.nan, 0, 1, 2])), "NaN"),
    "test label out of range": (_with(y_test=np.array([0, 1, 2, 3, 1, 1])), "3 that no training sample carries"),
    "string test label unseen": (_with(y_train=np.array(["a", "b", "c"] * 4), y_test=np.array(["a", "z"] * 3)),
                                 "z that no training sample carries"),
    "strings vs numbers": (_with(y_train=np.array(["a", "b", "c"] * 4)), "y_train holds strings but y_test holds numbers"),
    "complex labels": (_with(y_train=np.array([1 + 2j, 2, 3] * 4)), "unsupported dtype"),
    "single train class 0": (_with(y_train=np.zeros(12, dtype=int), y_test=np.zeros(6, dtype=int)), "single class"),
    "single train class 2": (_with(y_train=np.full(12, 2), y_test=np.full(6, 2)), "single class"),
    "single string class": (_with(y_train=np.full(12, "x"), y_test=np.full(6, "x")), "single class"),
    "NaN in X": (_with(X_train=np.where(np.arange(30) == 3, np.nan, np.ones((12, 2, 30)))), "NaN or infinite"),
    "inf in X_test": (_with(X_test=np.full((6, 2, 30), np.inf)), "NaN or infinite"),
    "too large for float32": (_with(X_train=np.full((12, 2, 30), 1e300)), "float32"),
    "string X": (_with(X_train=np.full((12, 2, 30), "a")), "non-numeric"),
    "complex X": (_with(X_test=np.zeros((6, 2, 30), dtype=complex)), "non-numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_npz_bad_arrays_raise_one_line_data_error(tmp_path, case):
    arrays, fragment = BAD_ARRAYS[case]
    path = _save(tmp_path, arrays, "bad.npz")
    with pytest.raises(DataError) as info:
        load_npz(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and fragment in message


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def _truncated(tmp_path):
    good = _save(tmp_path, _valid_1d(), "good.npz").read_bytes()
    return _write_bytes(tmp_path / "bad.npz", good[: len(good) // 2])


def _corrupt_member(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, **_valid_1d())  # stored uncompressed: flipping data bytes breaks the CRC
    data = bytearray(path.read_bytes())
    for i in range(300, 340):
        data[i] ^= 0xFF
    return _write_bytes(path, bytes(data))


def _npy(tmp_path):
    path = tmp_path / "bad.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3))
    return path


def _pickle_file(tmp_path):
    return _write_bytes(tmp_path / "bad.npz", pickle.dumps(_valid_1d()))


def _object_array(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, **_with(y_train=np.array([0, 1, 2] * 4, dtype=object)))
    return path


BAD_FILES = {
    "missing file": (lambda p: p / "nope.npz", "not found"),
    "directory": (lambda p: p, "directory"),
    "text file": (lambda p: _write_bytes(p / "bad.npz", b"hello, not numpy"), "npz"),
    "truncated zip": (_truncated, "npz"),
    "corrupt member": (_corrupt_member, "corrupt"),
    "npy not npz": (_npy, "single .npy"),
    "pickle file": (_pickle_file, "pickle"),
    "object array": (_object_array, "pickle"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_npz_bad_files_raise_one_line_data_error(tmp_path, case):
    make, fragment = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(DataError) as info:
        load_npz(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and fragment in message


# --------------------------------------------------------------------------- shared label checks


def _dataset(y_train, y_test, classes):
    from harness.tasks.base import Dataset

    X = np.zeros((len(y_train), 1, 8), np.float32)
    Xt = np.zeros((len(y_test), 1, 8), np.float32)
    return Dataset("labels", "1d", X, np.asarray(y_train), Xt, np.asarray(y_test), classes=classes, source="src")


@pytest.mark.parametrize("y_train, y_test, classes, fragment", [
    ([0, 0, 0], [0, 0], 1, "single class"),
    ([1, 1, 1], [1, 1], 3, "single class"),
    ([0, 1, 0], [0, 2], 3, "class(es) 2 that no training sample carries"),
    ([0, 1, 3], [0, 1], 3, "outside 0..2"),
    ([0, 1, 1], [-1, 0], 2, "outside 0..1"),
])
def test_dataset_refuses_labels_no_classifier_can_learn(y_train, y_test, classes, fragment):
    with pytest.raises(DataError) as info:
        _dataset(y_train, y_test, classes)
    assert "\n" not in str(info.value) and fragment in str(info.value) and str(info.value).startswith("src:")


def test_dataset_allows_a_training_class_that_test_lacks():
    assert _dataset([0, 1, 2], [0, 0], 3).classes == 3


def test_single_class_npz_is_refused_by_train_with_one_line(tmp_path, capsys):
    from harness.cli import main

    path = _save(tmp_path, _with(y_train=np.zeros(12, dtype=int), y_test=np.zeros(6, dtype=int)), "one.npz")
    code = main(["train", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "single class" in lines[0] and "one.npz" in lines[0], err
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("y_train, y_test, names, want_train", [
    ([1, 2, 3] * 4, [1, 3, 2, 2, 1, 3], ["1", "2", "3"], [0, 1, 2] * 4),  # UCR's 1..K
    ([-1, 1, 1] * 4, [1, -1, 1, -1, 1, 1], ["-1", "1"], [0, 1, 1] * 4),  # ECG200's -1/1
    ([0, 2, 10**12] * 4, [2, 2, 0, 0, 10**12, 2], ["0", "2", "1000000000000"], [0, 1, 2] * 4),  # gaps
    ([1.0, 2.0, 3.0] * 4, [3.0, 1.0, 2.0, 2.0, 1.0, 1.0], ["1", "2", "3"], [0, 1, 2] * 4),
    (["2", "10", "1"] * 4, ["1", "10", "2", "2", "1", "1"], ["1", "2", "10"], [1, 2, 0] * 4),  # sktime strings, by value
    ([b"walk", b"run", b"sit"] * 4, [b"sit"] * 6, ["run", "sit", "walk"], [2, 0, 1] * 4),
])
def test_npz_labels_of_any_values_become_class_indices(tmp_path, y_train, y_test, names, want_train):
    d = load_npz(_save(tmp_path, _with(y_train=np.array(y_train), y_test=np.array(y_test)), "lab.npz"))
    assert d.class_names == names and d.classes == len(names) and d.info()["class_names"] == names
    assert d.y_train.tolist() == want_train and d.y_train.dtype == np.int64
    # every test label keeps its meaning: the name of its index is the original label
    assert [d.class_names[i] for i in d.y_test] == [str(v.decode() if isinstance(v, bytes) else v)
                                                   for v in (int(x) if isinstance(x, float) else x for x in y_test)]


def test_npz_labels_already_0_to_k_minus_1_are_kept(tmp_path):
    d = load_npz(_save(tmp_path, _valid_1d(), "ok.npz"))
    assert d.class_names == [str(i) for i in range(d.classes)]
    assert d.y_train.tolist() == _valid_1d()["y_train"].tolist()


def test_npz_n_by_l_series_are_one_channel(tmp_path):
    rng = np.random.default_rng(1)
    Xtr, Xte = rng.normal(size=(12, 30)), rng.normal(size=(6, 30))
    d = load_npz(_save(tmp_path, _with(X_train=Xtr, X_test=Xte), "uni.npz"))
    assert d.kind == "1d" and d.input_shape == (1, 30) and d.in_channels == 1
    np.testing.assert_array_equal(d.X_train[:, 0, :], Xtr.astype(np.float32))
