"""The measurement engine end to end on tiny models: run folder and ONNX-pair ways in, and bad input."""
import json

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.export import export_onnx
from harness.fileio import sha256_file
from harness.results import SCHEMA, load_results, measurements_frame

FAST = ["--quick", "--no-history", "--quiet", "--batch-sizes", "1,4", "--throughput-batch-sizes", "1,4", "--threads", "1"]


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line(code, err):
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("harness: error:"), err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_npz

    root = tmp_path_factory.mktemp("bench")
    npz = make_npz(root / "tiny.npz", "1d")
    assert main(["train", "--data", str(npz), "--epochs", "2", "--out", str(root / "run"), "--quiet"]) == 0
    return root, npz


@pytest.mark.slow
def test_bench_run_dir_writes_schema(capsys, tiny_run):
    root, _ = tiny_run
    out = root / "results.json"
    code, stdout, err = _cli(capsys, "bench", root / "run", "--suites", "accuracy,latency,paired,storage",
                             "--out", out, *FAST)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["schema"] == SCHEMA
    assert set(doc["models"]) == {"teacher", "student_scratch", "student_kd"}
    for entry in doc["models"].values():
        assert entry["onnx_bytes"] > 0 and len(entry["onnx_sha256"]) == 64
        assert entry["parity"]["passed"] is True
    env = doc["environment"]
    assert env.get("python") or env.get("python_version")
    ms = doc["measurements"]
    lat = [m for m in ms if m["suite"] == "latency"]
    assert {m["backend"] for m in lat} == {"torch", "onnxruntime"}
    for m in lat:
        for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "mean_ms", "n"):
            assert key in m["metrics"]
        assert m["threads"] >= 1 and m["batch_size"] in (1, 4) and len(m["samples_ns"]) == m["metrics"]["n"]
    acc = {(m["model"], m["backend"]): m["metrics"]["accuracy"] for m in ms if m["suite"] == "accuracy"}
    assert len(acc) == 6 and all(0 <= a <= 1 for a in acc.values())
    assert acc[("teacher", "torch")] == pytest.approx(acc[("teacher", "onnxruntime")], abs=0.05)
    paired = [m for m in ms if m["suite"] == "paired"]
    assert paired and all(m["metrics"]["speedup_ci95"][0] <= m["metrics"]["speedup"] <= m["metrics"]["speedup_ci95"][1]
                          for m in paired)
    assert {m["batch_size"] for m in paired} == {1}  # --quick pairs only the first batch size
    # both students of a backend share one round robin with the teacher: the same teacher calls
    for backend in ("torch", "onnxruntime"):
        refs = {json.dumps(m["metrics"]["reference_samples_ns"]) for m in paired if m["backend"] == backend}
        assert len(refs) == 1
    df = measurements_frame(out)
    assert {"task", "model", "backend", "suite", "batch_size", "threads", "p50_ms"} <= set(df.columns)
    assert len(df) == len(ms)
    assert "teacher" in stdout


def test_quick_throughput_defaults_to_the_latency_batch_sizes():
    from harness.bench import BenchConfig

    assert BenchConfig(quick=True, batch_sizes=[1, 8]).throughput_batch_sizes == [1, 8]
    assert BenchConfig(batch_sizes=[1, 8]).throughput_batch_sizes == [1, 4, 16, 64]
    assert BenchConfig(quick=True, throughput_batch_sizes=[2]).throughput_batch_sizes == [2]


def _tiny_onnx(path, in_ch=1, length=32, classes=3, seed=0, external=False):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv1d(in_ch, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(), torch.nn.Linear(4, classes))
    return export_onnx(model, (in_ch, length), path, external_data=external, exporter="torchscript")


@pytest.fixture(scope="module")
def onnx_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    t = _tiny_onnx(root / "t.onnx", seed=0)
    s = _tiny_onnx(root / "s.onnx", seed=1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 1, 32)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    np.savez(root / "data.npz", X_train=X, y_train=y, X_test=X, y_test=y)
    return root, t, s


@pytest.mark.slow
def test_bench_onnx_pair_with_data(capsys, onnx_pair):
    root, t, s = onnx_pair
    out = root / "pair.json"
    code, _, err = _cli(capsys, "bench", "--onnx", f"teacher={t}", "--onnx", f"student={s}", "--data",
                        root / "data.npz", "--suites", "accuracy,latency,storage", "--out", out, *FAST)
    assert code == 0, err
    res = load_results(out)
    assert {m.backend for m in res.measurements if m.suite == "latency"} == {"onnxruntime"}
    assert any(m.suite == "accuracy" for m in res.measurements)
    assert res.models["teacher"]["onnx_bytes"] == t.stat().st_size


def test_external_data_counted(capsys, tmp_path):
    t = _tiny_onnx(tmp_path / "t.onnx", external=True)
    s = _tiny_onnx(tmp_path / "s.onnx", seed=1)
    data_file = tmp_path / "t.onnx.data"
    assert data_file.is_file()
    out = tmp_path / "r.json"
    code, _, err = _cli(capsys, "bench", "--onnx", f"teacher={t}", "--onnx", f"student={s}", "--suites", "storage",
                        "--out", out, *FAST)
    assert code == 0, err
    entry = load_results(out).models["teacher"]
    assert entry["onnx_bytes"] == t.stat().st_size + data_file.stat().st_size


@pytest.fixture
def existing_results(tmp_path):
    path = tmp_path / "keep.json"
    path.write_text('{"precious": true}\n')
    return path


def _bad_pair_cases(root, t, s):
    corrupt = root / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 20)
    truncated = root / "trunc.onnx"
    truncated.write_bytes(t.read_bytes()[: len(t.read_bytes()) // 2])
    text = root / "text.onnx"
    text.write_text("not a model")
    ext = _tiny_onnx(root / "ext.onnx", external=True)
    (root / "ext.onnx.data").unlink()
    other = _tiny_onnx(root / "other.onnx", in_ch=2, length=32)
    return {
        "corrupt": ["--onnx", f"teacher={corrupt}", "--onnx", f"student={s}"],
        "truncated": ["--onnx", f"teacher={truncated}", "--onnx", f"student={s}"],
        "text": ["--onnx", f"teacher={text}", "--onnx", f"student={s}"],
        "missing-external": ["--onnx", f"teacher={ext}", "--onnx", f"student={s}"],
        "mismatched-inputs": ["--onnx", f"teacher={t}", "--onnx", f"student={other}"],
        "bad-shape": ["--onnx", f"teacher={t}", "--onnx", f"student={s}", "--input-shape", "3,7"],
        "unknown-backend": ["--onnx", f"teacher={t}", "--onnx", f"student={s}", "--backends", "tensorrt"],
        "unknown-suite": ["--onnx", f"teacher={t}", "--onnx", f"student={s}", "--suites", "latency,vibes"],
        "batch-zero": ["--onnx", f"teacher={t}", "--onnx", f"student={s}", "--batch-sizes", "0"],
        "batch-text": ["--onnx", f"teacher={t}", "--onnx", f"student={s}", "--batch-sizes", "a,b"],
        "threads-zero": ["--onnx", f"teacher={t}", "--onnx", f"student={s}", "--threads", "0"],
        "missing-file": ["--onnx", f"teacher={root / 'nope.onnx'}", "--onnx", f"student={s}"],
        "no-label": ["--onnx", str(t)],
    }


def test_bad_input_one_line_and_results_untouched(capsys, onnx_pair, existing_results):
    root, t, s = onnx_pair
    for name, argv in _bad_pair_cases(root, t, s).items():
        code, _, err = _cli(capsys, "bench", *argv, "--out", existing_results, "--quick", "--no-history")
        _assert_one_line(code, err)
        assert existing_results.read_text() == '{"precious": true}\n', name


def test_bench_missing_run_dir(capsys, tmp_path):
    code, _, err = _cli(capsys, "bench", tmp_path / "nothing", "--no-history")
    _assert_one_line(code, err)


def _two_trained_runs(tmp_path, tiny_run) -> list:
    """Two copies of the tiny trained run (no ONNX files yet), as export_runs takes them."""
    import shutil

    from harness.bench import load_run, run_dataset

    runs = []
    for name in ("a", "b"):
        shutil.copytree(tiny_run[0] / "run", tmp_path / name, ignore=shutil.ignore_patterns("onnx"))
        summary, run_dir = load_run(tmp_path / name)
        runs.append((summary, run_dir, run_dataset(summary)))
    return runs


@pytest.mark.slow
def test_export_runs_side_by_side_matches_one_at_a_time(tmp_path, tiny_run, caplog, capsys):
    """Two runs exported in two helper processes give the same ONNX files as exporting in this process;
    the helpers' log records reach this process's loggers (and print nothing themselves); an error
    inside a helper (a corrupt checkpoint) reaches the caller as the same HarnessError."""
    import logging

    from harness.bench import BenchConfig, export_runs
    from harness.errors import CheckpointError

    runs = _two_trained_runs(tmp_path, tiny_run)
    cfg = BenchConfig(quick=True)
    caplog.set_level(logging.INFO, logger="harness")
    side_by_side = export_runs(runs, cfg, workers=2)
    exported = [r.getMessage() for r in caplog.records if r.name == "harness.bench" and ": export " in r.getMessage()]
    assert len(exported) == 6 and {str(tmp_path / n) in " ".join(exported) for n in ("a", "b")} == {True}
    assert capsys.readouterr().err == ""
    digests = {p: sha256_file(p) for srcs in side_by_side for p in (s.onnx for s in srcs)}
    one_at_a_time = export_runs(runs, cfg, workers=1)
    assert [[s.role for s in srcs] for srcs in side_by_side] == [["teacher", "student_scratch", "student_kd"]] * 2
    assert all(s.parity["passed"] for srcs in side_by_side for s in srcs)
    assert {p: sha256_file(p) for srcs in one_at_a_time for p in (s.onnx for s in srcs)} == digests
    ckpt = runs[1][1] / runs[1][0]["models"]["teacher"]["checkpoints"][0]["path"]
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        export_runs(runs, cfg, workers=2)


class _DieWhenUnpickled:
    """Passed to a helper process, it kills that process as its arguments arrive."""

    def __reduce__(self):
        import os

        return os._exit, (3,)


def test_export_runs_names_a_helper_that_died(tmp_path, tiny_run):
    """A helper killed mid-work ends in one HarnessError, and the caller does not hang on it."""
    import threading

    from harness.bench import BenchConfig, export_runs
    from harness.errors import HarnessError

    runs = _two_trained_runs(tmp_path, tiny_run)
    runs[0] = (runs[0][0], runs[0][1], _DieWhenUnpickled())
    outcome = {}

    def call():
        try:
            export_runs(runs, BenchConfig(quick=True), workers=2)
        except HarnessError as exc:
            outcome["error"] = str(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "export_runs hung after a helper died"
    assert outcome.get("error", "").startswith("an export process died"), outcome
