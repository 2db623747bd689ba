"""Integrity of a training run's inputs: `harness bench RUN_DIR` refuses any checkpoint that does not match
what the training summary recorded (sha256, architecture, parameter count, role), with one line and exit 2."""
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from harness.artifacts import load_checkpoint, save_checkpoint
from harness.bench import load_run
from harness.cli import main
from harness.tasks import load_npz
from harness.train.trainer import TrainConfig
from harness.train.trio import train_trio

BENCH = ["--suites", "storage", "--backends", "onnxruntime", "--quick", "--no-history", "--quiet",
         "--batch-sizes", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_npz

    root = tmp_path_factory.mktemp("integrity")
    data = load_npz(make_npz(root / "tiny.npz", "1d"))
    train_trio(data, TrainConfig(epochs=1), [0, 1], root / "run")
    return root / "run"


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of the trained run folder, free to tamper with."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _ckpt(run, role, seed=0):
    return run / "checkpoints" / f"{role}-seed{seed}.pt"


def _bench_refuses(capsys, run, tmp_path):
    code = main(["bench", str(run), "--out", str(tmp_path / "results.json"), *BENCH])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("harness: error:"), err
    assert not (tmp_path / "results.json").exists()
    return lines[0]


def test_intact_run_loads(run):
    summary, run_dir = load_run(run)
    assert run_dir == run.resolve() and set(summary["models"]) == {"teacher", "student_scratch", "student_kd"}


def test_teacher_replaced_by_student_is_refused(capsys, run, tmp_path):
    shutil.copyfile(_ckpt(run, "student_kd"), _ckpt(run, "teacher"))
    line = _bench_refuses(capsys, run, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert "teacher-seed0.pt does not match the training summary for teacher" in line
    assert "sha256 differs" in line and "architecture differs" in line
    assert (f"params {summary['models']['student_kd']['params']:,} vs "
            f"{summary['models']['teacher']['params']:,} recorded") in line


def test_students_swapped_same_architecture_is_refused(capsys, run, tmp_path):
    shutil.copyfile(_ckpt(run, "student_kd"), _ckpt(run, "student_scratch"))
    line = _bench_refuses(capsys, run, tmp_path)
    assert "for student_scratch" in line and "sha256 differs" in line and "saved as student_kd" in line
    assert "architecture" not in line and "params" not in line


def test_tampered_weights_same_architecture_are_refused(capsys, run, tmp_path):
    path = _ckpt(run, "student_kd")
    model, meta = load_checkpoint(path)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_checkpoint(path, model, meta)  # same architecture, metadata and sidecar: only the weights differ
    line = _bench_refuses(capsys, run, tmp_path)
    assert "for student_kd" in line and "sha256 differs" in line and "weights changed" in line


def test_later_seed_checkpoint_is_checked_too(capsys, run, tmp_path):
    shutil.copyfile(_ckpt(run, "student_kd", 0), _ckpt(run, "student_kd", 1))
    line = _bench_refuses(capsys, run, tmp_path)
    assert "student_kd-seed1.pt" in line and "seed 0 vs 1 recorded" in line


def test_missing_checkpoint_is_refused(capsys, run, tmp_path):
    _ckpt(run, "student_scratch", 1).unlink()
    line = _bench_refuses(capsys, run, tmp_path)
    assert "student_scratch-seed1.pt" in line and "missing" in line


def test_summary_without_sha256_still_checks_architecture(capsys, run, tmp_path):
    path = run / "summary.json"
    summary = json.loads(path.read_text())
    for entry in summary["models"].values():
        for ck in entry["checkpoints"]:
            del ck["sha256"]
    path.write_text(json.dumps(summary))
    load_run(run)  # an older, intact run still loads
    shutil.copyfile(_ckpt(run, "student_scratch"), _ckpt(run, "teacher"))
    line = _bench_refuses(capsys, run, tmp_path)
    assert "for teacher" in line and "sha256 differs" not in line and "params" in line and "architecture differs" in line
