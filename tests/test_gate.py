"""Regression gate: rule verdicts, significance logic, rule files, baseline handling."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import make_results  # noqa: E402

from harness.cli import main as cli_main  # noqa: E402
from harness.errors import OptionError, SchemaError  # noqa: E402
from harness.gate import (  # noqa: E402
    RULE_METRICS, default_rules, environment_differences, environment_note, evaluate_gate, format_gate,
    gate_exit_code, load_rules, missing_lines, nothing_compared, parse_rules, update_baseline,
)
from harness.results import Measurement, Results, load_results, write_results  # noqa: E402


def paired_run(speedup: float, ci: tuple[float, float] | None, *, acc_kd: float = 0.90, onnx_kd: int = 600_000,
               parity_ok: bool = True, samples: tuple[list[int], list[int]] | None = None) -> Results:
    """One task, teacher + student_kd, one paired measurement on onnxruntime at batch 1."""
    res = Results(environment={"git_commit": "abc"})
    res.add_model("osuleaf", "teacher", {"onnx_bytes": 4_800_000, "parity": {"passed": True}}, multi_task=False)
    par = {"passed": parity_ok, "max_abs_err": 1e-6 if parity_ok else 0.4}
    res.add_model("osuleaf", "student_kd", {"onnx_bytes": onnx_kd, "parity": par}, multi_task=False)
    metrics = {"speedup": speedup, "reference": "teacher", "rounds": 200}
    if ci:
        metrics["speedup_ci95"] = list(ci)
    s_ns = None
    if samples:
        metrics["reference_samples_ns"] = samples[0]
        s_ns = samples[1]
    res.measurements += [
        Measurement("osuleaf", "student_kd", "onnxruntime", "paired", 1, 1, metrics, samples_ns=s_ns),
        Measurement("osuleaf", "teacher", "onnxruntime", "accuracy", 64, 1, {"accuracy": 0.92, "n": 200}),
        Measurement("osuleaf", "student_kd", "onnxruntime", "accuracy", 64, 1, {"accuracy": acc_kd, "n": 200}),
    ]
    return res


def by_rule(results, rule):
    return [r for r in results if r.rule == rule]


def test_speedup_pass_fail_not_significant_skip():
    base = paired_run(3.0, (2.95, 3.05))
    # within threshold
    r = by_rule(evaluate_gate(base, paired_run(2.85, (2.80, 2.90))), "speedup")[0]
    assert r.verdict == "pass" and r.change == pytest.approx(-0.05)
    # past threshold, current CI below the baseline CI moved by the threshold -> fail
    r = by_rule(evaluate_gate(base, paired_run(2.4, (2.35, 2.45))), "speedup")[0]
    assert r.verdict == "fail" and r.change == pytest.approx(-0.2) and "apart by more than" in r.note
    # just past threshold with tight CIs: different, yes, but not established to be 10% worse
    r = by_rule(evaluate_gate(base, paired_run(2.68, (2.65, 2.71))), "speedup")[0]
    assert r.change < -0.10 and r.verdict == "not significant" and "not apart by the threshold" in r.note
    # past threshold, but the current CI is so wide it overlaps -> not significant
    res = evaluate_gate(base, paired_run(2.6, (2.0, 3.2)))
    r = by_rule(res, "speedup")[0]
    assert r.verdict == "not significant" and r.change < -0.10 and "overlap" in r.note
    assert gate_exit_code(res) == 0
    # no paired measurement in the current run: the baseline row has no counterpart -> missing, fails
    cur = paired_run(3.0, (2.9, 3.1))
    cur.measurements = [m for m in cur.measurements if m.suite != "paired"]
    res = evaluate_gate(base, cur)
    r = by_rule(res, "speedup")[0]
    assert r.verdict == "missing" and "current" in r.note and r.missing == "paired/latency timings of task osuleaf"
    assert gate_exit_code(res) == 1
    r = by_rule(evaluate_gate(base, cur, allow_missing=True), "speedup")[0]
    assert r.verdict == "skip" and "allowed" in r.note
    # faster is never a regression
    assert by_rule(evaluate_gate(base, paired_run(4.0, (3.9, 4.1))), "speedup")[0].verdict == "pass"


def test_speedup_mann_whitney_on_rounds():
    rng = np.random.default_rng(1)

    def rounds(speed, n=200, sigma=0.03):
        common = rng.lognormal(0, 0.1, n)  # shared by teacher and student within a round: cancels in the ratio
        t = (1.5e6 * common * rng.lognormal(0, sigma, n)).astype(int).tolist()
        s = (1.5e6 / speed * common * rng.lognormal(0, sigma, n)).astype(int).tolist()
        return t, s

    base = paired_run(3.0, None, samples=rounds(3.0))
    r = by_rule(evaluate_gate(base, paired_run(2.4, None, samples=rounds(2.4))), "speedup")[0]
    assert r.verdict == "fail" and r.p_value < 1e-3 and "Mann-Whitney" in r.note
    r = by_rule(evaluate_gate(base, paired_run(3.0, None, samples=rounds(3.0))), "speedup")[0]
    assert r.verdict == "pass"
    # few, noisy rounds: a 12% drop is not significant
    noisy = lambda sp: paired_run(sp, None, samples=rounds(sp, n=6, sigma=0.3))  # noqa: E731
    r = by_rule(evaluate_gate(noisy(3.0), noisy(2.64)), "speedup")[0]
    assert r.change == pytest.approx(-0.12)
    assert r.verdict == "not significant" and r.p_value >= 0.01


def test_unchanged_benches_pass_heavier_student_fails():
    first = make_results(seed=0)
    for seed in range(1, 6):  # five more benches of the same models: drift, noise, no change
        res = evaluate_gate(first, make_results(seed=seed))
        failed = [r for r in res if r.verdict == "fail"]
        assert not failed, format_gate(failed)
        assert not [r for r in res if r.verdict == "skip"]
    heavier = make_results(seed=11, slowdown=1.25)  # students genuinely 25% slower
    res = evaluate_gate(first, heavier)
    assert gate_exit_code(res) == 1
    speed = by_rule(res, "speedup")
    assert len(speed) == 16 and sum(r.verdict == "fail" for r in speed) >= 12
    assert all(r.verdict in ("fail", "not significant") for r in speed)
    assert all(r.verdict == "pass" for r in res if r.rule != "speedup")


def test_size_accuracy_parity_rules():
    base = paired_run(3.0, (2.95, 3.05))
    res = evaluate_gate(base, paired_run(3.0, (2.95, 3.05), onnx_kd=660_000))  # +10% bytes
    r = by_rule(res, "size_ratio")[0]
    assert r.verdict == "fail" and r.change == pytest.approx(0.10) and r.backend == "any"
    # measured accuracy of one training run per side: a -1.5 pt change could be cross-machine rounding
    r = by_rule(evaluate_gate(base, paired_run(3.0, (2.95, 3.05), acc_kd=0.885)), "accuracy_delta")[0]
    assert r.verdict == "not significant" and r.change == pytest.approx(-1.5) and r.unit == "pts"
    assert r.backend == "onnxruntime" and "one seed" in r.note and "--seeds" in r.note
    r = by_rule(evaluate_gate(base, paired_run(3.0, (2.95, 3.05), acc_kd=0.895)), "accuracy_delta")[0]
    assert r.verdict == "pass"
    # ... but a collapse no rounding explains still fails (default single_seed_max_drop_pts = 20)
    r = by_rule(evaluate_gate(base, paired_run(3.0, (2.95, 3.05), acc_kd=0.60)), "accuracy_delta")[0]
    assert r.verdict == "fail" and r.change == pytest.approx(-30.0) and "single_seed_max_drop_pts" in r.note
    res = evaluate_gate(base, paired_run(3.0, (2.95, 3.05), parity_ok=False))
    p = {r.model: r for r in by_rule(res, "parity")}
    assert p["student_kd"].verdict == "fail" and p["teacher"].verdict == "pass"
    assert gate_exit_code(res) == 1


def test_accuracy_with_seed_cis():
    # KD student 1.5 pts worse on the fixed test set, but the training seeds are noisy (older summary:
    # CIs only, no per-seed values, no comparison block)
    base = make_results(tasks=("osuleaf",), seed=0)
    cur = make_results(tasks=("osuleaf",), seed=1, kd_acc_shift=-0.015)
    for m in (base, cur):
        m.tasks["osuleaf"].pop("comparison")
        acc = m.tasks["osuleaf"]["models"]["student_kd"]["accuracy"]
        acc["ci95"] = [acc["mean"] - 0.03, acc["mean"] + 0.03]
        acc.pop("per_seed")
        m.tasks["osuleaf"]["models"]["teacher"]["accuracy"].pop("per_seed")
    r = next(r for r in by_rule(evaluate_gate(base, cur), "accuracy_delta") if r.model == "student_kd")
    assert r.change == pytest.approx(-1.5) and r.verdict == "not significant" and "overlap" in r.note
    # current summary shape (per-seed, comparison blocks): a drop well outside the seeds' spread fails
    base = make_results(tasks=("osuleaf",), seed=0)
    cur = make_results(tasks=("osuleaf",), seed=1, kd_acc_shift=-0.06)
    r = next(r for r in by_rule(evaluate_gate(base, cur), "accuracy_delta") if r.model == "student_kd")
    assert r.change == pytest.approx(-6.0) and r.verdict == "fail" and "apart by more than" in r.note


def test_single_seed_accuracy_is_not_exact_across_machines():
    # .ci/run's case: one seed per side, the same code trained on an AVX-512 instead of an AVX2 machine:
    # baseline -4.67 pts, current -9.33 pts. One run cannot tell a regression from rounding: not a failure.
    kd = lambda r: next(x for x in by_rule(r, "accuracy_delta") if x.model == "student_kd")  # noqa: E731
    base = make_results(tasks=("osuleaf",), seed=0, seeds=(0,))
    cur = make_results(tasks=("osuleaf",), seed=1, seeds=(0,), kd_acc_shift=-0.0467)
    res = evaluate_gate(base, cur)
    r = kd(res)
    assert r.change == pytest.approx(-4.5) and r.verdict == "not significant"
    assert "one seed in baseline and current" in r.note and "rounding" in r.note and "--seeds" in r.note
    assert gate_exit_code(res) == 0
    # one seed on one side only (the baseline has seed CIs): still no single-run verdict
    r = kd(evaluate_gate(make_results(tasks=("osuleaf",), seed=0), cur))
    assert r.verdict == "not significant" and "one seed in current" in r.note
    # a drop past single_seed_max_drop_pts fails even with one seed; the limit is configurable
    collapsed = make_results(tasks=("osuleaf",), seed=1, seeds=(0,), kd_acc_shift=-0.25)
    r = kd(evaluate_gate(base, collapsed))
    assert r.change == pytest.approx(-25.0) and r.verdict == "fail" and "single_seed_max_drop_pts" in r.note
    strict = parse_rules({"rules": {"accuracy_delta": {"single_seed_max_drop_pts": 4}}})
    assert kd(evaluate_gate(base, cur, strict)).verdict == "fail"
    loose = parse_rules({"rules": {"accuracy_delta": {"single_seed_max_drop_pts": 30}}})
    assert kd(evaluate_gate(base, collapsed, loose)).verdict == "not significant"
    with pytest.raises(OptionError, match="single_seed_max_drop_pts"):
        parse_rules({"rules": {"accuracy_delta": {"single_seed_max_drop_pts": -1}}})


def test_multi_seed_accuracy_drop_fails_and_noise_does_not():
    kd = lambda r: next(x for x in by_rule(r, "accuracy_delta") if x.model == "student_kd")  # noqa: E731
    base = make_results(tasks=("osuleaf",), seed=0, seeds=(0, 1, 2))
    # the same recipe trained again (other seeds' noise): seed CIs overlap, whatever the measured model did
    r = kd(evaluate_gate(base, make_results(tasks=("osuleaf",), seed=5, seeds=(0, 1, 2))))
    assert r.verdict == "pass"
    # a 4-pt drop across all three seeds: the seed CIs are apart by more than the threshold -> fail
    res = evaluate_gate(base, make_results(tasks=("osuleaf",), seed=5, seeds=(0, 1, 2), kd_acc_shift=-0.04))
    r = kd(res)
    assert r.verdict == "fail" and "seed CIs apart by more than the threshold" in r.note and r.ci
    assert gate_exit_code(res) == 1


def test_latency_rule_is_opt_in():
    base, cur = make_results(tasks=("osuleaf",), seed=0), make_results(tasks=("osuleaf",), seed=3, slowdown=1.3)
    assert not by_rule(evaluate_gate(base, cur), "latency_p50")
    rules = parse_rules({"rules": {"latency_p50": {"enabled": True, "roles": ["student_kd"], "batch_sizes": [1],
                                                   "backends": ["onnxruntime"]}}})
    res = by_rule(evaluate_gate(base, cur, rules), "latency_p50")
    assert len(res) == 1 and res[0].verdict == "fail" and res[0].p_value < 0.01 and res[0].change > 0.2
    res = by_rule(evaluate_gate(base, make_results(tasks=("osuleaf",), seed=4), rules), "latency_p50")
    assert res[0].verdict == "pass"


def test_missing_task_fails_and_is_named():
    # the case: a baseline of two tasks against a current file holding another task
    base = make_results(tasks=("osuleaf", "moving-digits"))
    res = evaluate_gate(base, make_results(tasks=("gunpoint",), seed=1))
    assert gate_exit_code(res) == 1 and nothing_compared(res)
    assert not [r for r in res if r.verdict == "pass" and r.rule != "parity"]
    lines = missing_lines(res)
    assert lines == [f"MISSING in current: task {t} (baseline rows of speedup, size_ratio, accuracy_delta, parity: 15)"
                     for t in ("osuleaf", "moving-digits")]
    text = format_gate(res)
    assert "gate FAIL" in text and "30 missing" in text and "nothing was compared" in text
    assert len(text.splitlines()) < 25  # grouped, not one line per missing row
    assert not [ln for ln in text.splitlines() if ln.startswith("speedup ") and "osuleaf" in ln]
    # allowed: the missing rows become skips with a note, but a gate that compared nothing still fails
    res = evaluate_gate(base, make_results(tasks=("gunpoint",), seed=1), allow_missing=True)
    assert not [r for r in res if r.verdict == "missing"]
    assert all("missing in current: task" in r.note for r in res if r.missing)
    assert gate_exit_code(res) == 1 and "skipped (allowed): task osuleaf" in format_gate(res)


def test_renamed_model_dropped_backend_and_batch_fail():
    base = make_results(tasks=("osuleaf",), batch_sizes=(1, 8))
    cur = make_results(tasks=("osuleaf",), seed=2, backends=("onnxruntime",), batch_sizes=(8,),
                       roles=("teacher", "student_scratch", "student_distilled"))
    res = evaluate_gate(base, cur)
    assert gate_exit_code(res) == 1 and not nothing_compared(res)
    assert missing_lines(res) == [
        "MISSING in current: model student_kd of task osuleaf (baseline rows of speedup, size_ratio, accuracy_delta, "
        "parity: 7)",
        "MISSING in current: backend torch of task osuleaf (baseline rows of speedup: 2)",
        "MISSING in current: batch size 1 of task osuleaf (baseline rows of speedup: 1)",
    ]
    # what both files have is still compared; the new model is not a problem
    kept = [r for r in by_rule(res, "speedup") if not r.missing]
    assert [(r.model, r.verdict in ("pass", "not significant")) for r in kept] == [("student_scratch", True),
                                                                                    ("student_distilled", False)]
    assert all(r.verdict == "skip" for r in res if r.model == "student_distilled" and r.rule != "parity")
    res = evaluate_gate(base, cur, allow_missing=True)
    assert gate_exit_code(res) == 0 and "gate PASS" in format_gate(res)
    # batch sizes only in the current run are new: not missing
    res = evaluate_gate(make_results(tasks=("osuleaf",), batch_sizes=(8,)),
                        make_results(tasks=("osuleaf",), seed=2, batch_sizes=(1, 8)))
    assert gate_exit_code(res) == 0 and not missing_lines(res)
    # an explicit batch list compares only those sizes: batch 1, dropped from the current run, is not asked for
    rules = parse_rules({"batch_sizes": [8]})
    assert gate_exit_code(evaluate_gate(base, make_results(tasks=("osuleaf",), seed=2, batch_sizes=(8,)), rules)) == 0


def test_new_models_and_tasks_in_current_are_fine():
    base = make_results(tasks=("osuleaf",))
    cur = make_results(tasks=("osuleaf", "gunpoint"), seed=1, roles=("teacher", "student_scratch", "student_kd",
                                                                      "student_dkd"))
    res = evaluate_gate(base, cur)
    assert gate_exit_code(res) == 0 and not missing_lines(res)
    assert all(r.verdict == "skip" for r in res if (r.task == "gunpoint" or r.model == "student_dkd")
               and r.rule != "parity")


def test_nothing_compared_fails():
    assert gate_exit_code([]) == 1 and "no rules enabled" in format_gate([])
    base, cur = make_results(tasks=("osuleaf",)), make_results(tasks=("osuleaf",), seed=1)
    only_parity = parse_rules({"rules": {m: {"enabled": m == "parity"} for m in RULE_METRICS}})
    res = evaluate_gate(base, cur, only_parity)
    assert gate_exit_code(res) == 0  # parity alone checks something
    for r in res:
        r.verdict = "skip"
    assert gate_exit_code(res) == 1 and "nothing was compared" in format_gate(res)


def _write(tmp_path, name, res):
    path = tmp_path / name
    write_results(path, res)
    return str(path)


def test_cli_gate_missing_and_allow_missing(tmp_path, capsys):
    base = _write(tmp_path, "base.json", make_results(tasks=("osuleaf",)))
    cur = _write(tmp_path, "cur.json", make_results(tasks=("osuleaf",), seed=1, backends=("onnxruntime",)))
    assert cli_main(["gate", "--baseline", base, "--current", cur]) == 1
    out = capsys.readouterr().out
    assert "MISSING in current: backend torch of task osuleaf" in out and "gate FAIL" in out
    assert cli_main(["gate", "--baseline", base, "--current", cur, "--allow-missing"]) == 0
    out = capsys.readouterr().out
    assert "missing in current, skipped (allowed): backend torch of task osuleaf" in out and "gate PASS" in out
    other = _write(tmp_path, "other.json", make_results(tasks=("gunpoint",), seed=1))
    assert cli_main(["gate", "--baseline", base, "--current", other, "--allow-missing"]) == 1
    assert "nothing was compared" in capsys.readouterr().out
    # bad input stays a one-line error, exit 2
    assert cli_main(["gate", "--baseline", str(tmp_path / "nope.json"), "--current", cur]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error:") and len(err.strip().splitlines()) == 1


def test_environment_differences_named(tmp_path, capsys):
    base, cur = make_results(tasks=("osuleaf",)), make_results(tasks=("osuleaf",), seed=1)
    env = {"cpu_model": "AMD EPYC", "cpu_isa": ["avx2", "avx512f", "fma"], "python": "3.11.7", "machine": "x86_64",
           "versions": {"torch": "2.13.0+cpu", "onnxruntime": "1.20.1", "onnx": "1.23.2", "numpy": None}}
    base.environment = dict(env)
    cur.environment = {**env, "cpu_model": "Intel Xeon", "cpu_isa": ["avx2", "fma"],
                       "versions": {**env["versions"], "onnxruntime": "1.22.0", "numpy": "2.4.6"}}
    diffs, unrecorded = environment_differences(base, cur)
    assert diffs == ["cpu_model AMD EPYC -> Intel Xeon", "cpu_isa baseline avx2,avx512f,fma current avx2,fma",
                     "onnxruntime 1.20.1 -> 1.22.0"] and not unrecorded
    note = environment_note(base, cur)
    assert note.startswith("environment differs: ") and "\n" not in note and "timing rules" in note
    assert environment_note(base, base) == ""
    # older files: keys absent on one side are named as not recorded, never a crash
    old = make_results(tasks=("osuleaf",), seed=2)
    old.environment = {"cpu": "AMD EPYC"}
    diffs, unrecorded = environment_differences(old, cur)
    assert diffs == ["cpu_model AMD EPYC -> Intel Xeon"]
    assert unrecorded == ["cpu_isa not recorded in baseline", "library versions not recorded in baseline"]
    old.environment = {}
    assert environment_note(old, cur).startswith("environment: cpu_model not recorded in baseline")
    old.environment = None  # a broken file's environment block
    assert environment_differences(old, old) == ([], [])
    # the CLI prints the line with the gate's output
    b, c = _write(tmp_path, "b.json", base), _write(tmp_path, "c.json", cur)
    assert cli_main(["gate", "--baseline", b, "--current", c]) == 0
    out = capsys.readouterr().out
    assert "environment differs: cpu_model AMD EPYC -> Intel Xeon; cpu_isa baseline avx2,avx512f,fma current " \
           "avx2,fma; onnxruntime 1.20.1 -> 1.22.0" in out


def test_format_gate():
    res = evaluate_gate(paired_run(3.0, (2.95, 3.05)), paired_run(2.4, (2.35, 2.45)))
    text = format_gate(res)
    assert "speedup" in text and "FAIL" in text and "-20.0%" in text and "gate FAIL" in text
    assert len([ln for ln in text.splitlines() if ln.startswith(("speedup", "size_ratio", "accuracy", "parity"))]) \
        == len(res)


def test_rule_files(tmp_path):
    j = tmp_path / "rules.json"
    j.write_text(json.dumps({"alpha": 0.05, "rules": {"speedup": {"max_drop": 0.2}, "parity": {"enabled": False}}}))
    rules = load_rules(j)
    specs = {r.metric: r for r in rules.rules}
    assert specs["speedup"].threshold == 0.2 and not specs["parity"].enabled
    assert specs["size_ratio"].threshold == 0.05 and specs["size_ratio"].alpha == 0.05  # defaults kept
    res = evaluate_gate(paired_run(3.0, (2.95, 3.05)), paired_run(2.55, (2.5, 2.6)), rules)
    assert by_rule(res, "speedup")[0].verdict == "pass" and not by_rule(res, "parity")
    t = tmp_path / "rules.toml"
    t.write_text('batch_sizes = [1]\n[rules.accuracy_delta]\nmax_drop_pts = 0.5\n[rules.latency_p50]\n'
                 'enabled = true\nroles = ["student_kd"]\n')
    specs = {r.metric: r for r in load_rules(t).rules}
    assert specs["accuracy_delta"].threshold == 0.5 and specs["latency_p50"].enabled
    assert specs["speedup"].batch_sizes == [1]
    lst = tmp_path / "list.json"
    lst.write_text(json.dumps({"rules": [{"metric": "size_ratio", "max_growth": 0.1}]}))
    assert {r.metric: r for r in load_rules(lst).rules}["size_ratio"].threshold == 0.1


def test_bad_rule_files(tmp_path):
    p = tmp_path / "rules.json"
    p.write_text(json.dumps({"rules": {"speedupp": {"max_drop": 0.1}}}))
    with pytest.raises(OptionError) as exc:
        load_rules(p)
    msg = str(exc.value)
    assert "'speedupp'" in msg and all(m in msg for m in RULE_METRICS) and "\n" not in msg
    p.write_text(json.dumps({"rules": {"speedup": {"max_dorp": 0.1}}}))
    with pytest.raises(OptionError, match="'max_dorp'.*valid keys: max_drop"):
        load_rules(p)
    p.write_text(json.dumps({"rules": {"speedup": {"max_drop": -1}}}))
    with pytest.raises(OptionError, match="non-negative"):
        load_rules(p)
    p.write_text(json.dumps({"rulez": {}}))
    with pytest.raises(OptionError, match="'rulez'"):
        load_rules(p)
    p.write_text("{oops")
    with pytest.raises(OptionError, match="not valid JSON"):
        load_rules(p)
    t = tmp_path / "r.toml"
    t.write_text("[rules.speedup\n")
    with pytest.raises(OptionError, match="not valid TOML"):
        load_rules(t)
    with pytest.raises(OptionError, match="not found"):
        load_rules(tmp_path / "missing.json")
    with pytest.raises(OptionError, match="batch_sizes"):
        parse_rules({"batch_sizes": [0]})


def test_foreign_schema_baseline(tmp_path):
    old = tmp_path / "baseline.json"
    old.write_text(json.dumps({"schema": "kd-harness/results/0", "measurements": [], "models": {}}))
    cur = tmp_path / "current.json"
    write_results(cur, paired_run(3.0, (2.9, 3.1)))
    with pytest.raises(SchemaError, match="schema"):
        evaluate_gate(old, cur)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(SchemaError):
        evaluate_gate(other, cur)


def test_update_baseline(tmp_path):
    cur = tmp_path / "current.json"
    write_results(cur, paired_run(3.0, (2.9, 3.1)))
    base = tmp_path / "ci" / "baseline.json"
    update_baseline(cur, base)
    assert base.read_bytes() == cur.read_bytes() and load_results(base).measurements
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "kd-harness/results/0"}))
    with pytest.raises(SchemaError):
        update_baseline(bad, base)
    assert base.read_bytes() == cur.read_bytes()  # untouched
    assert not [p for p in base.parent.iterdir() if p.name != "baseline.json"]


def test_default_rules_shape():
    specs = {r.metric: r for r in default_rules().rules}
    assert specs["speedup"].threshold == 0.10 and specs["size_ratio"].threshold == 0.05
    assert specs["accuracy_delta"].threshold == 1.0 and specs["parity"].enabled
    assert not specs["latency_p50"].enabled


def test_speedup_rule_judges_the_fast_state_ratio_when_both_files_have_it():
    def run(p50, p10):
        res = paired_run(p50, (p50 * 0.98, p50 * 1.02))
        (m,) = [m for m in res.measurements if m.suite == "paired"]
        if p10 is not None:
            m.metrics.speedup_p10 = p10
            m.metrics.speedup_p10_ci95 = [p10 * 0.98, p10 * 1.02]
        return res

    # p50 unchanged, fast-state ratio 30% lower: the slower student is caught by its undisturbed speed
    r = by_rule(evaluate_gate(run(8.0, 12.0), run(8.0, 8.4)), "speedup")[0]
    assert r.verdict == "fail" and "p10" in r.note and r.baseline == 12.0
    # p50 swings with the machine's state, p10 holds: no failure
    r = by_rule(evaluate_gate(run(10.0, 12.0), run(7.5, 11.9)), "speedup")[0]
    assert r.verdict == "pass"
    # an older baseline without p10: both sides are judged by the p50 ratio
    r = by_rule(evaluate_gate(run(8.0, None), run(8.0, 8.4)), "speedup")[0]
    assert r.verdict == "pass" and "p10" not in r.note and r.baseline == 8.0
