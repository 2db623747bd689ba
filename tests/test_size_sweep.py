"""`harness sweep --student-scale/--student-widths`: sizes, selection on validation only, Pareto flags."""
import dataclasses
import json

import numpy as np
import pytest

from harness import size_sweep
from harness.cli import build_parser, main
from harness.errors import OptionError
from harness.measure.timing import TimingConfig
from harness.tasks import load_npz
from harness.train.trainer import TrainConfig

TINY_TIMING = TimingConfig(warmup_min_s=0.0, warmup_min_calls=1, min_time_s=0.0, min_samples=3, max_time_s=0.5)


def _row(label, params, p50, kd, scratch=None):
    return {"label": label, "widths": [params], "params": params, "params_ratio": 100_000 / params,
            "latency": {"p50_ms": p50}, "speedup": 1.0 / p50,
            "val_accuracy": {"kd": {"mean": kd}, "scratch": {"mean": kd if scratch is None else scratch}}}


# --------------------------------------------------------------------------- parsing and sizes

def test_parse_scales_and_widths():
    assert size_sweep.parse_scales("0.25,0.5,1,2") == [0.25, 0.5, 1.0, 2.0]
    assert size_sweep.parse_widths("6-12,12-24") == [[6, 12], [12, 24]]
    assert size_sweep.parse_widths("8-16-24;16-32-48") == [[8, 16, 24], [16, 32, 48]]
    assert size_sweep.parse_widths("32") == [[32]]


@pytest.mark.parametrize("text", ["", ",", "0", "-1", "0.5,0.5", "nan", "inf", "a"])
def test_bad_scales(text):
    with pytest.raises(OptionError):
        size_sweep.parse_scales(text)


@pytest.mark.parametrize("text", ["", "6-12,", "6--12", "6-0", "6-x", "6-12,6-12", "-6", "6.5-12", " , ", "²-4"])
def test_bad_widths(text):
    with pytest.raises(OptionError):
        size_sweep.parse_widths(text)


def test_scaled_widths_round_and_respect_the_head():
    assert size_sweep.scaled_widths([12, 24], 0.5, 3) == [6, 12]
    assert size_sweep.scaled_widths([12, 24], 2, 3) == [24, 48]
    assert size_sweep.scaled_widths([12, 24], 0.01, 1) == [1, 1]  # never below 1
    # 11 classes: [3, 6] would squeeze 11 decisions through 6 features; _fit_head widens it
    w = size_sweep.scaled_widths([12, 24], 0.25, 11)
    assert w[-1] >= 11 and all(x >= 1 for x in w)


def test_student_sizes_dedupe_and_depth():
    import kd_models

    base = kd_models.default_config("1d", "student", 1, 11, (1, 512))
    sizes = size_sweep.student_sizes(base, 11, scales=[0.1, 0.25, 1])
    # 0.1 and 0.25 both end at the head-fitted minimum: one size, both scales recorded
    assert len(sizes) == 2 and sizes[0].scales == (0.1, 0.25)
    deep = size_sweep.student_sizes(base, 11, widths=[[8, 16, 24]])[0].config
    assert deep["widths"] == [8, 16, 24] and len(deep["strides"]) == 3 and deep["strides"][0] == base["strides"][0]
    kd_models.build_model(deep)
    base3 = kd_models.default_config("3d", "student", 1, 5, (1, 4, 8, 8))
    with pytest.raises(OptionError, match="exactly 4 widths"):
        size_sweep.student_sizes(base3, 5, widths=[[4, 8]])
    assert size_sweep.student_sizes(base3, 5, widths=[[2, 4, 8, 16]])[0].config["widths"] == [2, 4, 8, 16]


def test_grid_defaults_match_the_parser():
    args = build_parser().parse_args(["sweep"])
    for key, value in size_sweep.GRID_DEFAULTS.items():
        assert getattr(args, key) == value


# --------------------------------------------------------------------------- selection on hand-made rows

def test_smallest_within_picks_fewest_params_within_the_margin():
    rows = [_row("a", 100, 0.1, 0.80), _row("b", 400, 0.2, 0.895), _row("c", 1600, 0.4, 0.91),
            _row("d", 6400, 0.8, 0.93)]
    assert size_sweep.smallest_within(rows, 0.90, 1.0)["label"] == "b"  # loses 0.5 pt
    assert size_sweep.smallest_within(rows, 0.90, 0.0)["label"] == "c"  # better than the teacher
    assert size_sweep.smallest_within(rows, 0.90, 10.0)["label"] == "a"  # loses exactly 10 pts
    assert size_sweep.smallest_within(rows, 0.95, 1.0) is None
    # on equal params, the faster one
    tie = [_row("slow", 100, 0.3, 0.9), _row("fast", 100, 0.1, 0.9)]
    assert size_sweep.smallest_within(tie, 0.9, 1.0)["label"] == "fast"


def test_selection_line_kd_scratch_and_none():
    teacher = {"val_accuracy": 0.90}
    rows = [_row("a", 100, 0.1, kd=0.895, scratch=0.85), _row("b", 400, 0.2, kd=0.92, scratch=0.91)]
    sel = size_sweep.selection_line(rows, teacher, 1.0)
    assert sel["kd"] == "a" and sel["scratch"] == "b"
    assert sel["line"].startswith("the smallest student that loses <= 1 pt is a ") and "with KD" in sel["line"]
    assert "without KD the smallest is b" in sel["line"]
    # scratch reaches it at a smaller size than KD: the line names the scratch student
    rows2 = [_row("a", 100, 0.1, kd=0.85, scratch=0.90), _row("b", 400, 0.2, kd=0.92, scratch=0.91)]
    sel2 = size_sweep.selection_line(rows2, teacher, 1.0)
    assert sel2["kd"] == "b" and sel2["scratch"] == "a" and "a (" in sel2["line"] and "from scratch" in sel2["line"]
    none = size_sweep.selection_line(rows, {"val_accuracy": 0.99}, 1.0)
    assert none["kd"] is None and none["scratch"] is None
    assert none["line"].startswith("no student loses <= 1 pt") and "b (" in none["line"]


def test_pareto_flags_follow_the_definition():
    rows = [_row("small", 100, 0.10, 0.80), _row("mid", 400, 0.20, 0.90),
            _row("mid-slow", 400, 0.30, 0.90),  # dominated by mid (same acc and params, slower)
            _row("big-worse", 1600, 0.40, 0.85),  # dominated by mid
            _row("big-best", 1600, 0.40, 0.95)]
    assert size_sweep.pareto_flags(rows) == [True, True, False, False, True]
    # a faster but bigger and worse model is not dominated (it wins on latency)
    rows.append(_row("odd", 3000, 0.05, 0.50))
    assert size_sweep.pareto_flags(rows)[-1] is True


# --------------------------------------------------------------------------- real (tiny) training

def _fake_latency(model_config, input_shape, onnx_path, sample, timing=None):
    n = sum(model_config["widths"])  # deterministic and monotone in width, no export
    return {"p50_ms": 0.01 * n, "median_ci95_ms": [0.01 * n, 0.01 * n], "p10_ms": 0.01 * n, "p90_ms": 0.01 * n,
            "n": 1, "onnx": str(onnx_path)}


@pytest.mark.slow
def test_measure_latency_exports_and_times_one_model(tmp_path):
    import kd_models

    cfg = kd_models.default_config("1d", "student", 1, 3, (1, 48))
    sample = np.zeros((4, 1, 48), np.float32)
    lat = size_sweep.measure_latency(cfg, (1, 48), tmp_path / "s.onnx", sample, TINY_TIMING)
    assert (tmp_path / "s.onnx").is_file() and lat["p50_ms"] > 0 and lat["n"] >= 3
    assert lat["median_ci95_ms"][0] <= lat["p50_ms"] <= lat["median_ci95_ms"][1]


@pytest.mark.slow
def test_size_sweep_writes_one_row_per_size(npz_1d, tmp_path, monkeypatch):
    monkeypatch.setattr(size_sweep, "measure_latency", _fake_latency)  # the export is tested above
    data = load_npz(npz_1d)
    doc = size_sweep.run_size_sweep(data, TrainConfig(epochs=1), [0, 1], tmp_path / "ss", scales=[0.5, 1, 2])
    on_disk = json.loads((tmp_path / "ss" / "size_sweep.json").read_text())
    assert on_disk["schema"] == size_sweep.SIZE_SWEEP_SCHEMA
    rows = on_disk["rows"]
    assert [r["scales"] for r in rows] == [[0.5], [1.0], [2.0]]
    params = [r["params"] for r in rows]
    assert params == sorted(params) and len(set(params)) == 3  # params increase with scale
    for r in rows:
        assert r["params_ratio"] == pytest.approx(on_disk["teacher"]["params"] / r["params"])
        assert r["latency"]["p50_ms"] > 0 and r["speedup"] > 0
        for key in ("scratch", "kd"):
            assert len(r["val_accuracy"][key]["per_seed"]) == 2
            assert r["loss_vs_teacher_pts"][key] == pytest.approx(
                100 * (on_disk["teacher"]["val_accuracy"] - r["val_accuracy"][key]["mean"]))
        assert r["kd_vs_scratch"]["n"] == 2
    assert [r["pareto"] for r in rows] == size_sweep.pareto_flags(rows)
    assert on_disk["validation"]["n_fit"] + on_disk["validation"]["n_val"] == len(data.y_train)
    assert on_disk["smallest_within"]["line"] == doc["smallest_within"]["line"]
    assert (tmp_path / "ss" / "size_sweep.html").read_text().count("<div") >= 1
    assert "Pareto" in size_sweep.format_table(doc)
    # Every unit is an executor job: a rerun of the same sweep trains nothing and gives the same rows.
    from harness.executor import ExecutorConfig, LocalExecutor

    class MustNotRun(LocalExecutor):
        def _run(self, jobs, shared, finish, failed):
            raise AssertionError(f"should have resumed, but ran {[j.name for j in jobs]}")

    again = size_sweep.run_size_sweep(data, TrainConfig(epochs=1), [0, 1], tmp_path / "ss", scales=[0.5, 1, 2],
                                      executor=MustNotRun(ExecutorConfig()))
    assert [r["val_accuracy"] for r in again["rows"]] == [r["val_accuracy"] for r in rows]


@pytest.mark.slow
def test_the_test_split_is_never_used(npz_1d, tmp_path, monkeypatch):
    """Poisoned test inputs and labels change nothing: every accuracy comes from the validation split."""
    monkeypatch.setattr(size_sweep, "measure_latency", _fake_latency)
    data = load_npz(npz_1d)
    rng = np.random.default_rng(1)
    poisoned = dataclasses.replace(data, X_test=rng.standard_normal(data.X_test.shape).astype(np.float32) * 1e3,
                                   y_test=rng.permutation(data.y_test))
    cfg = TrainConfig(epochs=1)
    a = size_sweep.run_size_sweep(data, cfg, [0], tmp_path / "a", scales=[0.5, 1])
    b = size_sweep.run_size_sweep(poisoned, cfg, [0], tmp_path / "b", scales=[0.5, 1])
    assert a["teacher"]["val_accuracy"] == b["teacher"]["val_accuracy"]
    for ra, rb in zip(a["rows"], b["rows"]):
        assert ra["val_accuracy"] == rb["val_accuracy"] and ra["pareto"] == rb["pareto"]
    assert a["smallest_within"] == b["smallest_within"]


@pytest.mark.slow
def test_cli_size_sweep(capsys, npz_1d, tmp_path, monkeypatch):
    monkeypatch.setattr(size_sweep, "measure_latency", _fake_latency)
    code = main(["sweep", "--data", str(npz_1d), "--student-widths", "4-8,8-16", "--seeds", "0", "--epochs", "1",
                 "--within-pts", "100", "--out", str(tmp_path / "o"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads((tmp_path / "o" / "size_sweep.json").read_text())
    assert [r["widths"] for r in doc["rows"]] == [[4, 8], [8, 16]]
    # within 100 points every student qualifies: the smallest is named
    assert doc["smallest_within"]["kd"] == "4-8"
    assert "the smallest student that loses <= 100 pt is 4-8" in out


# --------------------------------------------------------------------------- bad options

@pytest.mark.parametrize("extra", [
    ["--student-scale", ""], ["--student-scale", "0"], ["--student-scale", "-0.5"], ["--student-scale", "1,1"],
    ["--student-scale", "x"], ["--student-widths", ""], ["--student-widths", "8-"], ["--student-widths", "8-0"],
    ["--student-widths", "8,8"], ["--student-widths", "a-b"],
    ["--student-scale", "1", "--student-widths", "8-16"],
    ["--student-scale", "1", "--temperatures", "2"], ["--student-scale", "1", "--alphas", "0.5"],
    ["--student-scale", "1", "--within-pts", "-1"], ["--student-scale", "1", "--within-pts", "nan"],
    ["--student-scale", "1", "--val-fraction", "1.5"],
    ["--within-pts", "1"],  # only for a size sweep
])
def test_bad_size_options_exit_2(capsys, npz_1d, tmp_path, extra):
    code = main(["sweep", "--data", str(npz_1d), "--epochs", "1", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_3d_widths_of_the_wrong_depth_exit_2(capsys, npz_3d, tmp_path):
    code = main(["sweep", "--data", str(npz_3d), "--student-widths", "4-8", "--epochs", "1",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "exactly 4 widths" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_size_sweep_checks_its_teacher_and_warns_when_it_learned_nothing(npz_1d, tmp_path, monkeypatch):
    """The size sweep's teacher goes through the trio's fit check (found on ACSF1: a teacher at chance
    made every student 'within 1 pt'). A teacher that never fits is named in the selection line."""
    import harness.train.teacher as teacher_mod
    import harness.train.trio as trio

    monkeypatch.setattr(size_sweep, "measure_latency", _fake_latency)
    real = trio.accuracy
    data = load_npz(npz_1d)
    n_fit = len(data.y_train) - round(0.2 * len(data.y_train))

    def never_fits(model, X, y):  # the fit check scores the fit split; validation scores stay real
        return 0.0 if len(y) == n_fit else real(model, X, y)

    monkeypatch.setattr(trio, "accuracy", never_fits)
    monkeypatch.setattr(teacher_mod, "accuracy", never_fits)  # the fit check lives in train/teacher.py
    cfg = TrainConfig(epochs=1, augment=True, kd_logits="live")
    doc = size_sweep.run_size_sweep(data, cfg, [0], tmp_path / "ss", scales=[1])
    check = doc["teacher"]["fit_check"]
    assert check["retrain_without_augment"] and not check["passed"]
    assert doc["train_config"]["augment"] is True and doc["effective_train_config"]["augment"] is False
    assert "WARNING: the teacher fits only 0.0%" in doc["smallest_within"]["line"]
    # A teacher that fits: no warning, nothing retrained.
    monkeypatch.setattr(trio, "accuracy", lambda model, X, y: 1.0 if len(y) == n_fit else real(model, X, y))
    monkeypatch.setattr(teacher_mod, "accuracy", lambda model, X, y: 1.0 if len(y) == n_fit else real(model, X, y))
    ok = size_sweep.run_size_sweep(data, TrainConfig(epochs=1), [0], tmp_path / "ok", scales=[1])
    assert "WARNING" not in ok["smallest_within"]["line"] and "effective_train_config" not in ok
