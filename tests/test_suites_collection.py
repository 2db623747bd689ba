"""The benchmark suites (suites/) collect their full grid, and stay out of a plain pytest run.

Each check runs pytest in a subprocess against an empty cache folder (KD_HARNESS_CACHE) with no
KD_HARNESS_RUN, so nothing here trains or times a model.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("teacher", "student_scratch", "student_kd")
BACKENDS = ("torch", "onnxruntime")


def _pytest(tmp_path, *args, timeout=180):
    env = dict(os.environ)
    env.pop("KD_HARNESS_RUN", None)
    env["KD_HARNESS_CACHE"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _ids(out: str) -> set[str]:
    return {ln.strip() for ln in out.splitlines() if ln.startswith("suites/") and "::" in ln}


def _grid(module, test, batches=None, backends=BACKENDS, roles=ROLES):
    if batches is None:
        return {f"suites/{module}::{test}[{r}-{b}]" for r in roles for b in backends}
    return {f"suites/{module}::{test}[{r}-{b}-b{s}]" for r in roles for b in backends for s in batches}


def test_collect_covers_role_backend_batch_grid(tmp_path):
    proc = _pytest(tmp_path, "--collect-only", "-q", "suites")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = _ids(proc.stdout)
    expected = (_grid("test_latency.py", "test_latency", (1, 8))
                | _grid("test_throughput.py", "test_throughput", (1, 8, 32))
                | _grid("test_footprint.py", "test_memory")
                | _grid("test_footprint.py", "test_accuracy")
                | {f"suites/test_footprint.py::test_storage[{r}]" for r in ROLES})
    assert expected <= ids, sorted(expected - ids)
    assert not (tmp_path / "cache").exists()


def test_grid_follows_options(tmp_path):
    proc = _pytest(tmp_path, "--collect-only", "-q", "suites", "--kd-batch-sizes=2,4",
                   "--kd-throughput-batch-sizes=16", "--kd-backends=onnxruntime")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = _ids(proc.stdout)
    lat = {i for i in ids if "::test_latency[" in i}
    thr = {i for i in ids if "::test_throughput[" in i}
    assert lat == _grid("test_latency.py", "test_latency", (2, 4), backends=("onnxruntime",))
    assert thr == _grid("test_throughput.py", "test_throughput", (16,), backends=("onnxruntime",))
    assert not any("-torch" in i for i in ids)


def test_bad_options_are_usage_errors(tmp_path):
    proc = _pytest(tmp_path, "--collect-only", "-q", "suites", "--kd-batch-sizes=0")
    assert proc.returncode == 4
    assert "--kd-batch-sizes must be a comma-separated list of positive integers" in proc.stdout + proc.stderr
    # a named run that is not a training run folder fails at start-up, before anything is trained
    proc = _pytest(tmp_path, "-q", "suites", "--benchmark-only", f"--kd-run={tmp_path / 'no-such-run'}")
    assert proc.returncode == 4
    assert "not a `harness train` output folder" in proc.stdout + proc.stderr
    assert not (tmp_path / "cache").exists()


def test_plain_run_skips_suites_without_training(tmp_path):
    proc = _pytest(tmp_path, "-q", "-rs", "suites")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    m = re.search(r"(\d+) skipped", out)
    assert m and int(m.group(1)) >= 45, out
    assert not re.search(r"\d+ (passed|failed|error)", out), out
    assert "--benchmark-only" in out  # the skip reason says how to run them
    assert not (tmp_path / "cache").exists(), "a plain run must not train the default suite run"


@pytest.mark.slow
def test_space_separated_options_parse_without_a_path(tmp_path):
    """The --kd-* options come from the installed plugin, so pytest knows them before it collects
    anything: `--kd-batch-sizes 2` (no `=`) works when pytest starts from testpaths."""
    proc = _pytest(tmp_path, "--collect-only", "-q", "--kd-batch-sizes", "2", "--kd-backends", "onnxruntime",
                   "-k", "test_latency")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lat = {i for i in _ids(proc.stdout) if "::test_latency[" in i}
    assert lat == _grid("test_latency.py", "test_latency", (2,), backends=("onnxruntime",))
    assert not (ROOT / "conftest.py").exists() and not (ROOT / "suites" / "conftest.py").exists()
