"""The benchmark suites (suites/) really run: a slice of every suite file on a tiny training run,
through the installed plugin, into a pytest-benchmark JSON that `harness report` reads back.

Not a timing test: it checks that the suites execute and record their figures, on any machine.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_suite_slice_runs_and_reports(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "gunpoint", "--epochs", "1", "--seeds", "0", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "KD_HARNESS_RUN"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "suites", "--benchmark-only",
         "--kd-run", str(run), "--kd-threads", "1", "--kd-batch-sizes", "1", "--kd-throughput-batch-sizes", "1",
         "--benchmark-max-time=0.02", "--benchmark-min-rounds=3", f"--benchmark-json={out}",
         "-k", "student_kd and onnxruntime or storage"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    suites = {b["extra_info"]["suite"] for b in json.loads(out.read_text())["benchmarks"]}
    assert {"latency", "throughput", "memory", "accuracy", "storage"} <= suites
    assert main(["report", str(out), "--format", "md"]) == 0
    assert "student_kd" in capsys.readouterr().out
