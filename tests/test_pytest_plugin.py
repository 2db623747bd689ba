"""The installed pytest plugin (entry point pytest11: kd_harness), seen from a project outside this
repository: its kd_session fixture times the project's own ONNX pair, and it leaves an ordinary
project's tests alone.

Each check writes a tiny project into tmp_path and runs pytest there in a subprocess, so only the
installed entry point can bring the plugin in (no conftest.py of this repository is in reach). No
assertion depends on how fast anything ran.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

FEATURES, CLASSES = 16, 3

OWN_BENCHMARK = '''
import pytest


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_latency(benchmark, kd_session, role):
    model = kd_session(f"models/{role}.onnx", threads=1)
    batch = model.example_batch(4)
    benchmark.group = "latency batch 4"
    benchmark.extra_info.update(model.extra_info(batch, task="toy"))
    logits = benchmark(model.bind(batch))
    assert logits.shape == (4, 3)
    assert model.input_shape == (None, 16)
'''

ORDINARY_TESTS = '''
import sys

import pytest


@pytest.fixture
def kd_run():  # the project's own fixture that happens to share a name with the plugin's
    return "mine"


def test_arithmetic():
    assert 1 + 1 == 2


def test_own_kd_run_fixture(kd_run):
    assert kd_run == "mine"


def test_plugin_imports_nothing_heavy():
    assert "torch" not in sys.modules and "onnxruntime" not in sys.modules
'''


def _mlp_onnx(path, hidden: int, seed: int) -> None:
    """A two-layer classifier (FEATURES -> hidden -> CLASSES) with a dynamic batch axis."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(seed)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("w1", (FEATURES, hidden)), ("b1", (hidden,)),
                                   ("w2", (hidden, CLASSES)), ("b2", (CLASSES,)))]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
         helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        initializer=weights)
    # IR 10 / opset 17: within what every supported onnxruntime loads
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    save(model, str(path))


def _pytest_in(folder, *args, timeout=180):
    env = dict(os.environ)
    for name in ("KD_HARNESS_RUN", "KD_HARNESS_CACHE", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_own_onnx_pair_is_timed_with_kd_session(tmp_path):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    _mlp_onnx(project / "models" / "teacher.onnx", hidden=256, seed=0)
    _mlp_onnx(project / "models" / "student.onnx", hidden=8, seed=1)
    (project / "test_models.py").write_text(OWN_BENCHMARK)
    out_json = tmp_path / "bench.json"

    proc = _pytest_in(project, "--benchmark-only", f"--benchmark-json={out_json}", "--benchmark-max-time=0.05",
                      "--benchmark-min-rounds=3", "-q")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"\b2 passed\b", out) and "skipped" not in out, out

    doc = json.loads(out_json.read_text())
    by_role = {b["extra_info"]["role"]: b for b in doc["benchmarks"]}
    assert set(by_role) == {"teacher", "student"}
    for role, bench in by_role.items():
        assert bench["group"] == "latency batch 4"
        assert bench["stats"]["median"] > 0 and bench["stats"]["rounds"] >= 3
        info = bench["extra_info"]
        assert info["backend"] == "onnxruntime" and info["batch_size"] == 4 and info["threads"] == 1
        assert info["task"] == "toy" and info["onnx_bytes"] == (project / "models" / f"{role}.onnx").stat().st_size
    assert by_role["teacher"]["extra_info"]["onnx_bytes"] > by_role["student"]["extra_info"]["onnx_bytes"]


def test_ordinary_project_is_unaffected(tmp_path):
    project = tmp_path / "project"
    # under suites/ on purpose: the suites' skip must key on the plugin's fixtures, never on a folder name
    (project / "suites").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "suites" / "test_ordinary.py").write_text(ORDINARY_TESTS)

    proc = _pytest_in(project, "-rs", "-v")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "kd-harness" in out  # the header's plugin list: the entry point did load the plugin
    assert re.search(r"\b3 passed\b", out) and "skipped" not in out, out
    assert not (project / ".kd-harness-cache").exists()


def test_suite_fixture_outside_suites_is_skipped_in_a_plain_run(tmp_path):
    """A test using the plugin's `kd` fixture is a suite test wherever it lives: a plain run skips it
    before the fixture would train the default run."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_extra_suite.py").write_text("def test_uses_the_run(kd):\n    assert kd.run\n\n\n"
                                                 "def test_plain():\n    pass\n")

    proc = _pytest_in(project, "-rs")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"\b1 passed, 1 skipped\b", out) and "--benchmark-only" in out, out
    assert not (project / ".kd-harness-cache").exists()


def test_compare_leaves_out_only_the_suites_footprint_entries():
    from harness.pytest_plugin import pytest_benchmark_compare_machine_info

    suite_memory = {"extra_info": {"suite": "memory", "role": "teacher", "run": "runs/x"}}
    suite_latency = {"extra_info": {"suite": "latency", "role": "teacher", "run": "runs/x"}}
    projects_own = {"extra_info": {"suite": "memory"}}  # a project's own key: not the suites'
    compared = {"benchmarks": [suite_memory, suite_latency, projects_own, {"name": "plain"}]}
    pytest_benchmark_compare_machine_info(None, None, {}, compared)
    assert compared["benchmarks"] == [suite_latency, projects_own, {"name": "plain"}]
