"""A/B timing (`harness compare`) and the gate's A/B speed rule, on tiny ONNX models (no timing thresholds)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_gate import by_rule, paired_run  # noqa: E402
from tiny_models import Tiny1d  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.compare import CompareConfig, common_models, compare, format_compare  # noqa: E402
from harness.errors import DataError  # noqa: E402
from harness.export import export_onnx  # noqa: E402
from harness.fileio import sha256_file  # noqa: E402
from harness.gate import evaluate_gate, gate_exit_code  # noqa: E402
from harness.gate.ab import speed_basis  # noqa: E402
from harness.results import Measurement, Results, write_results  # noqa: E402

SHAPE = (2, 32)


def _build(folder: Path, seed: int) -> Results:
    """A results file as `harness bench` records its models: ONNX path, sha256 and input shape per role."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    res = Results(environment={"git_commit": f"c{seed}"})
    for role, width in (("teacher", 16), ("student_kd", 4)):
        torch.manual_seed(seed)
        path = folder / f"{role}.onnx"
        export_onnx(Tiny1d(width=width).eval(), SHAPE, path)
        res.add_model("tiny", role, {"onnx": str(path), "onnx_sha256": sha256_file(path),
                                     "input_shape": list(SHAPE)}, multi_task=False)
    res.measurements.append(Measurement("tiny", "student_kd", "onnxruntime", "accuracy", 64, 1,
                                        {"accuracy": 0.90 + seed / 100, "n": 100}))
    write_results(folder / "results.json", res)
    return res


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("ab")
    return root, _build(root / "base", 0), _build(root / "cur", 1)


@pytest.mark.slow
def test_compare_times_each_role_beside_its_baseline(builds):
    root, base, cur = builds
    res = compare(root / "base", root / "cur", roles=["student_kd"],
                  config=CompareConfig(processes=1, threads=1))
    (m,) = res.measurements
    x = m.metrics
    assert (m.task, m.model, m.suite, m.backend, m.batch_size) == ("tiny", "student_kd", "ab", "onnxruntime", 1)
    assert x.latency_ratio == pytest.approx(x.current_p50_ms / x.baseline_p50_ms, rel=0.5)
    lo, hi = x.latency_ratio_ci95
    assert lo <= x.latency_ratio <= hi and x.latency_ratio_p10 > 0
    assert x.control_ratio is not None and x.control_valid in (True, False)  # the A/A control ran
    assert x.baseline_sha256 == base.models["student_kd"]["onnx_sha256"]
    assert x.current_onnx.endswith("cur/student_kd.onnx")
    assert (x.baseline_accuracy, x.current_accuracy) == (0.90, 0.91)  # read from the results files
    text = format_compare(res)
    assert "student_kd" in text and "A/A" in text and "90.00 -> 91.00 (+1.00 pts)" in text
    # the file round-trips as results, typed
    write_results(root / "ab.json", res)
    from harness.results import load_results

    again = load_results(root / "ab.json").measurements[0].metrics
    assert again.latency_ratio == x.latency_ratio and again.latency_ratio_ci95 == x.latency_ratio_ci95


def test_models_folder_and_changed_files(builds, tmp_path):
    root, base, cur = builds
    kept = tmp_path / "kept"
    kept.mkdir()
    for f in (root / "base").glob("*.onnx"):
        shutil.copy(f, kept / f.name)
    pairs, problems = common_models(base, cur, baseline_models=kept)
    assert {b.role for b, _ in pairs} == {"teacher", "student_kd"} and not problems
    assert all(b.onnx.parent == kept for b, _ in pairs)
    (kept / "teacher.onnx").write_bytes(b"changed")
    pairs, problems = common_models(base, cur, baseline_models=kept)
    assert [b.role for b, _ in pairs] == ["student_kd"]
    assert problems == [f"baseline teacher: {kept / 'teacher.onnx'} changed since the results were written "
                        "(sha256 differs)"]
    with pytest.raises(DataError, match="models folder not found"):
        common_models(base, cur, baseline_models=tmp_path / "nowhere")
    with pytest.raises(DataError, match="no role has a baseline and a current model"):
        compare(base, cur, baseline_models=tmp_path, roles=["student_kd"])


def _ab(ratio: float, ci: tuple[float, float], role: str = "student_kd", valid: bool = True) -> Results:
    return Results(measurements=[Measurement("osuleaf", role, "onnxruntime", "ab", 1, 1, {
        "latency_ratio": ratio, "latency_ratio_ci95": list(ci), "latency_ratio_p10": ratio,
        "latency_ratio_p10_ci95": list(ci), "baseline_p50_ms": 0.1, "current_p50_ms": 0.1 * ratio,
        "control_ratio": 1.0, "control_ci95": [0.99, 1.01], "control_valid": valid})])


def test_gate_judges_speed_by_the_ab_ratio_when_given():
    base, cur = paired_run(10.0, (9.5, 10.5)), paired_run(7.0, (6.8, 7.2))  # the speedups say: regression
    assert by_rule(evaluate_gate(base, cur), "speedup")[0].verdict == "fail"
    cases = [((1.00, (0.98, 1.02)), "pass"), ((1.12, (1.08, 1.16)), "fail"), ((1.12, (1.03, 1.21)), "not significant"),
             ((1.04, (1.02, 1.06)), "pass")]
    for (ratio, ci), verdict in cases:
        rows = evaluate_gate(base, cur, ab=_ab(ratio, ci))
        (ab,) = by_rule(rows, "ab_latency")
        assert ab.verdict == verdict, (ratio, ci, ab)
        assert ab.change == pytest.approx(ratio - 1) and ab.threshold == pytest.approx(0.05)
        assert not by_rule(rows, "speedup")  # replaced for the (task, model, backend) the A/B row judged
        assert gate_exit_code(rows) == (1 if verdict == "fail" else 0)
    # a role the A/B timing did not cover keeps its ratio-of-speedups row
    rows = evaluate_gate(base, cur, ab=_ab(1.0, (0.98, 1.02), role="teacher"))
    assert by_rule(rows, "speedup")[0].verdict == "fail" and by_rule(rows, "ab_latency")[0].model == "teacher"
    bad = by_rule(evaluate_gate(base, cur, ab=_ab(1.0, (0.98, 1.02), valid=False)), "ab_latency")[0]
    assert "A/A control failed" in bad.note
    # rules files set the threshold and the statistic; a bad statistic is one line
    strict = {"rules": {"ab_latency": {"max_slowdown": 0.01}}}
    assert by_rule(evaluate_gate(base, cur, strict, ab=_ab(1.04, (1.02, 1.06))), "ab_latency")[0].verdict == "fail"
    from harness.errors import OptionError

    with pytest.raises(OptionError, match="p50 or p10"):
        evaluate_gate(base, cur, {"rules": {"ab_latency": {"statistic": "p99"}}})


def test_speed_basis_falls_back_and_says_why(builds, tmp_path):
    root, base, cur = builds
    no_models = paired_run(10.0, (9.5, 10.5))  # models with no ONNX paths recorded
    basis = speed_basis(no_models, cur)
    assert basis.ab is None and basis.note.startswith("speed judged by the ratio of speedups")
    assert "not available" in basis.note and "--baseline-models" in basis.note
    assert speed_basis(base, cur, mode="off").note.endswith("turned off (--no-ab)")
    with pytest.raises(DataError, match="--ab: no role"):
        speed_basis(no_models, cur, mode="on")
    with pytest.raises(DataError, match="models folder not found"):
        speed_basis(base, cur, mode="on", baseline_models=tmp_path / "nowhere")
    assert speed_basis(base, cur, baseline_models=tmp_path / "nowhere").ab is None


def test_cli_compare_and_gate_bad_input_is_one_line(builds, tmp_path, capsys):
    root, _, _ = builds
    for argv in (["compare", str(tmp_path / "missing.json"), str(root / "cur")],
                 ["compare", str(root / "base"), str(root / "cur"), "--ab-processes", "0"],
                 ["gate", "--baseline", str(root / "base" / "results.json"), "--current",
                  str(root / "cur" / "results.json"), "--ab", "--baseline-models", str(tmp_path / "nowhere")]):
        assert main(argv) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("harness: error:"), err
