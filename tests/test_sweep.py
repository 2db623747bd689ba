import dataclasses
import json

import pytest

from harness.cli import main
from harness.tasks import load_npz
from harness.train.recipes import load_recipe
from harness.train.trainer import TrainConfig
from harness.sweep import SweepGrid, run_sweep, validation_view


def test_sweep_tiny_grid_writes_recipe(npz_1d, tmp_path):
    data = load_npz(npz_1d)
    rows = []
    doc = run_sweep(data, TrainConfig(epochs=2), SweepGrid([2.0], [0.5, 0.9], ["hinton"]), [0, 1], tmp_path / "sw",
                    on_row=rows.append)
    assert len(rows) == 3  # scratch + 2 cells, streamed as they finish
    assert doc["chosen"]["cell"] in [r["cell"] for r in doc["cells"]]
    for r in doc["cells"]:
        assert len(r["val_accuracy"]["per_seed"]) == 2
    on_disk = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert on_disk["validation"]["n_val"] + on_disk["validation"]["n_fit"] == len(data.y_train)
    cfg = load_recipe(tmp_path / "sw" / "recipe.json", TrainConfig())
    assert cfg.alpha == doc["chosen"]["cell"]["alpha"] and cfg.temperature == 2.0


def test_validation_view_never_touches_test(npz_1d):
    data = load_npz(npz_1d)
    view = validation_view(data, 0.25, seed=0)
    assert len(view.y_train) + len(view.y_test) == len(data.y_train)
    # Rows of the validation split come from train, so none equals a test row.
    for row in view.X_test:
        assert not any((row == t).all() for t in data.X_test)


@pytest.mark.parametrize("extra", [["--temperatures", "0,2"], ["--temperatures", "-1"], ["--alphas", "1.5"],
                                   ["--alphas", "-0.1"], ["--temperatures", ""], ["--alphas", ","],
                                   ["--kd-losses", "mse"]])
def test_bad_grid_values(capsys, npz_1d, tmp_path, extra):
    code = main(["sweep", "--data", str(npz_1d), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_recipe_reused_by_train(capsys, npz_1d, tmp_path):
    run_sweep(load_npz(npz_1d), TrainConfig(epochs=1), SweepGrid([3.0], [0.3], ["hinton"]), [0], tmp_path / "sw")
    code = main(["train", "--data", str(npz_1d), "--recipe", str(tmp_path / "sw" / "recipe.json"),
                 "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 0
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["train_config"]["temperature"] == 3.0 and s["train_config"]["alpha"] == 0.3


@pytest.mark.parametrize("kind", ["1d", "3d"])
def test_default_recipes_are_valid_and_distil_live(kind):
    from harness.train.recipes import DEFAULT_RECIPES, default_recipe

    cfg = default_recipe(kind)
    assert dataclasses.replace(cfg) == cfg  # validated on construction, and again on replace
    for key, value in DEFAULT_RECIPES[kind].items():
        assert getattr(cfg, key) == value
    # augmented or mixed batches must be labelled by the teacher itself
    if cfg.augment or cfg.mixup > 0:
        assert cfg.kd_logits == "live"


@pytest.mark.slow
def test_sweep_retrains_a_teacher_that_cannot_fit_without_augmentation(npz_1d, tmp_path, monkeypatch):
    import harness.train.trio as trio

    real = trio.accuracy
    data = load_npz(npz_1d)
    n_fit = len(data.y_train) - round(0.2 * len(data.y_train))
    calls = []

    def first_fit_fails(model, X, y):
        if len(y) != n_fit:
            return real(model, X, y)
        calls.append(1)
        return 0.0 if len(calls) == 1 else real(model, X, y)

    monkeypatch.setattr(trio, "accuracy", first_fit_fails)
    doc = run_sweep(data, TrainConfig(epochs=1, augment=True, kd_logits="live"), SweepGrid([2.0], [0.5], ["hinton"]),
                    [0], tmp_path / "sw")
    assert doc["teacher_fit_check"]["retrain_without_augment"]
    assert doc["base_config"]["augment"] is True and doc["effective_base_config"]["augment"] is False
    # the recipe records what the students were trained with
    assert load_recipe(tmp_path / "sw" / "recipe.json", TrainConfig()).augment is False


def test_a_cell_the_base_cannot_train_fails_before_the_teacher_trains(npz_1d, tmp_path):
    from harness.errors import OptionError

    with pytest.raises(OptionError, match="live"):  # attention transfer on cached logits
        run_sweep(load_npz(npz_1d), TrainConfig(epochs=1), SweepGrid([2.0], [0.5], ["hinton", "at"]), [0],
                  tmp_path / "sw")
    assert not list((tmp_path / "sw").glob(".jobs/*.pkl"))  # no teacher was trained
