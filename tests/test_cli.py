import json

import numpy as np
import pytest

from harness.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err):
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("harness: error:")
    assert "Traceback" not in err


@pytest.mark.slow
def test_tasks_json(capsys):
    code, out, _ = _run(capsys, "tasks", "--json")
    assert code == 0
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert {"osuleaf", "acsf1", "arrowhead", "gunpoint", "basicmotions", "japanesevowels",
            "moving-digits", "voxel-shapes"} <= names
    for r in rows:
        assert r["kind"] in ("1d", "3d") and r["classes"] >= 2 and r["n_train"] > 0 and r["n_test"] > 0


def test_train_cli_prints_table(capsys, npz_1d, tmp_path):
    code, out, _ = _run(capsys, "train", "--data", str(npz_1d), "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0
    assert "student_kd" in out and "teacher" in out
    assert (tmp_path / "r" / "summary.json").is_file()


@pytest.mark.parametrize("argv", [
    ["train", "--task", "no-such-task"],
    ["train", "--task", "gunpoint", "--seeds", "x"],
    ["train", "--task", "gunpoint", "--epochs", "0"],
    ["train", "--task", "gunpoint", "--epochs", "two"],
    ["train", "--task", "gunpoint", "-T", "-1"],
    ["train", "--task", "gunpoint", "--alpha", "2"],
    ["train", "--task", "gunpoint", "--kd-logits", "sometimes"],
    ["train", "--task", "gunpoint", "--bogus"],
    ["train"],
])
def test_bad_options(capsys, tmp_path, argv):
    out = tmp_path / "out"
    code, _, err = _run(capsys, *argv, "--out", str(out))
    _one_line_error(code, err)
    assert not out.exists()


def _bad_npz(tmp_path, name, **arrays):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def test_malformed_npz(capsys, tmp_path):
    X = np.zeros((6, 1, 16), np.float32)
    y = np.array([0, 1, 0, 1, 0, 1])
    cases = {
        "missing": dict(X_train=X, y_train=y, X_test=X),
        "ndim": dict(X_train=X[..., None], y_train=y, X_test=X[..., None], y_test=y),  # N x C x L x 1: no such kind
        "range": dict(X_train=X, y_train=y, X_test=X, y_test=y + 5),
        "nan": dict(X_train=np.full_like(X, np.nan), y_train=y, X_test=X, y_test=y),
        "inf": dict(X_train=X, y_train=y, X_test=np.full_like(X, np.inf), y_test=y),
        "length": dict(X_train=X, y_train=y[:4], X_test=X, y_test=y),
    }
    for name, arrays in cases.items():
        out = tmp_path / f"out-{name}"
        code, _, err = _run(capsys, "train", "--data", str(_bad_npz(tmp_path, name, **arrays)), "--out", str(out))
        _one_line_error(code, err)
        assert not out.exists(), name
    text = tmp_path / "notnpz.npz"
    text.write_text("hello")
    code, _, err = _run(capsys, "train", "--data", str(text), "--out", str(tmp_path / "o"))
    _one_line_error(code, err)


def test_unwritable_out(capsys, npz_1d, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(capsys, "train", "--data", str(npz_1d), "--epochs", "1", "--out", str(blocker / "sub"))
    _one_line_error(code, err)


def test_custom_student_config(capsys, npz_1d, tmp_path):
    cfg = {"family": "fcn1d", "in_channels": 1, "num_classes": 3, "widths": [4, 8], "kernels": [5, 3],
           "dropout": 0.0}
    import kd_models

    try:
        kd_models.validate_config(cfg)
    except Exception:
        cfg = kd_models.default_config("1d", "student", 1, 3, (1, 48))
        cfg["widths"] = [w + 2 for w in cfg["widths"]]
    code, out, err = _run(capsys, "train", "--data", str(npz_1d), "--epochs", "1", "--out", str(tmp_path / "r"),
                          "--quiet", "--student-config", json.dumps(cfg))
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["models"]["student_kd"]["model_config"]["widths"] == cfg["widths"]


@pytest.mark.parametrize("bad", ['{"family": "nope"}', '{not json', '{"family": "resnet1d"}'])
def test_bad_student_config(capsys, npz_1d, tmp_path, bad):
    out = tmp_path / "r"
    code, _, err = _run(capsys, "train", "--data", str(npz_1d), "--out", str(out), "--student-config", bad)
    _one_line_error(code, err)
    assert not out.exists()


def test_train_starts_from_the_kinds_default_recipe(capsys, npz_1d, tmp_path):
    from harness.train.recipes import DEFAULT_RECIPES

    code, _, _ = _run(capsys, "train", "--data", str(npz_1d), "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0
    tc = json.loads((tmp_path / "r" / "summary.json").read_text())["train_config"]
    for key, value in DEFAULT_RECIPES["1d"].items():
        if key != "student_epochs":  # --epochs sets every role's epochs, the recipe's student schedule included
            assert tc[key] == value, key
    assert tc["epochs"] == 1 and tc["student_epochs"] is None
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["models"]["student_kd"]["epochs"] == 1


def test_recipe_parts_can_be_switched_off(capsys, npz_1d, tmp_path):
    code, _, _ = _run(capsys, "train", "--data", str(npz_1d), "--epochs", "1", "--no-augment", "--mixup", "0",
                      "--kd-logits", "cached", "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0
    tc = json.loads((tmp_path / "r" / "summary.json").read_text())["train_config"]
    assert tc["augment"] is False and tc["mixup"] == 0 and tc["kd_logits"] == "cached"


def test_cached_logits_with_recipe_augmentation_is_one_line_error(capsys, npz_1d, tmp_path):
    code, _, err = _run(capsys, "train", "--data", str(npz_1d), "--epochs", "1", "--kd-logits", "cached",
                        "--out", str(tmp_path / "r"))
    _one_line_error(code, err)
    assert "live" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("value", ["-0.5", "nan", "x"])
def test_bad_mixup(capsys, npz_1d, tmp_path, value):
    code, _, err = _run(capsys, "train", "--data", str(npz_1d), "--mixup", value, "--out", str(tmp_path / "r"))
    _one_line_error(code, err)


def test_main_job_trains_in_a_pool_where_there_are_cores_other_commands_serially():
    import os

    from harness.cli import MAIN_JOB_EXECUTOR, build_parser

    parser = build_parser()
    assert parser.parse_args(["run"]).executor == MAIN_JOB_EXECUTOR
    assert MAIN_JOB_EXECUTOR == ("pool" if (os.cpu_count() or 1) >= 2 else "local")
    assert parser.parse_args(["run", "--executor", "local"]).executor == "local"
    for cmd in (["train"], ["sweep"], ["panel"]):
        assert parser.parse_args(cmd).executor == "local"


def test_attention_transfer_from_the_cli_uses_the_recipe_live_logits(capsys, npz_1d, tmp_path):
    code, out, err = _run(capsys, "train", "--data", str(npz_1d), "--kd-loss", "at", "--epochs", "1",
                          "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["models"]["student_kd"]["kd_loss"] == "at"
    assert summary["models"]["student_kd"]["kd_params"]["beta"] == 10.0
    code, _, err = _run(capsys, "train", "--data", str(npz_1d), "--kd-loss", "at", "--kd-logits", "cached",
                        "--out", str(tmp_path / "bad"))
    _one_line_error(code, err)
    assert "live" in err and not (tmp_path / "bad").exists()
