"""`harness merge`: many hosts, one report. Two "hosts" are copies of a real results file with the
environment edited (CPU model, ISA flags); the report and the gate must keep them apart, never pool
them; two benches of one host pool like worker processes do."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main as cli_main
from harness.errors import SchemaError
from harness.gate import evaluate_gate, format_gate, gate_exit_code
from harness.hosts import host_fingerprint, host_label, host_views
from harness.measure import latency
from harness.report import build_model, build_report
from harness.results import Measurement, load_results

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "results" / "baseline.json"
MAIN_JOB = ROOT / "tests" / "data" / "results-2026-11-28-main-job.json"
XEON = "Intel Xeon Platinum 8480+"
KD_ORT = ("student_kd", "onnxruntime")


def _run(capsys, *argv):
    code = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _paired(doc: dict, role: str, backend: str) -> dict:
    return next(m for m in doc["measurements"]
                if m["suite"] == "paired" and m["model"] == role and m["backend"] == backend)


def _second_host(doc: dict, speed: float = 1.5) -> dict:
    """The same bench as if run on another machine: another CPU model and an extra ISA flag, a later
    bench, and the KD student `speed` times faster on onnxruntime (its own p50, speedup and CI)."""
    other = copy.deepcopy(doc)
    env = other["environment"]
    env["cpu_model"], env["cpu_isa"] = XEON, sorted(env["cpu_isa"] + ["amx_tile"])
    env["hostname"], env["timestamp"] = "xeon-box", "2026-11-29T00:00:00+00:00"
    other["created"] = "2026-11-29T00:00:00+00:00"
    met = _paired(other, *KD_ORT)["metrics"]
    met["student_p50_ms"] /= speed
    met["speedup"] *= speed
    met["speedup_ci95"] = [x * speed for x in met["speedup_ci95"]]
    return other


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def two_hosts(tmp_path):
    doc = json.loads(BASELINE.read_text())
    return _write(tmp_path / "epyc.json", doc), _write(tmp_path / "xeon.json", _second_host(doc))


# -- fingerprint --------------------------------------------------------------------------------

def test_fingerprint_is_machine_and_libraries_not_time_or_name():
    env = load_results(BASELINE).environment
    fp = host_fingerprint(env)
    assert len(fp) == 12 and fp == host_fingerprint(copy.deepcopy(env))
    same_machine = {**env, "timestamp": "later", "hostname": "other", "git_commit": "f00", "threads": 7,
                    "affinity_cores": 1}
    assert host_fingerprint(same_machine) == fp
    for changed in ({"cpu_model": XEON}, {"cpu_isa": env["cpu_isa"] + ["amx_tile"]}, {"logical_cores": 64},
                    {"python": "3.99.0"}, {"versions": {**env["versions"], "onnxruntime": "0.0.1"}}):
        assert host_fingerprint({**env, **changed}) != fp, changed
    # ISA flags are a set: their order does not make another host
    assert host_fingerprint({**env, "cpu_isa": list(reversed(env["cpu_isa"]))}) == fp


# -- two hosts ----------------------------------------------------------------------------------

def test_merge_keeps_two_hosts_apart_in_the_file(capsys, tmp_path, two_hosts):
    a, b = two_hosts
    out = tmp_path / "all.json"
    code, stdout, err = _run(capsys, "merge", a, b, "--out", out)
    assert code == 0, err
    merged = load_results(out)
    fa, fb = (host_fingerprint(load_results(p).environment) for p in (a, b))
    assert fa != fb and set(merged.hosts) == {fa, fb}
    assert merged.hosts[fb]["cpu_model"] == XEON and "amx_tile" in merged.hosts[fb]["cpu_isa"]
    n = len(load_results(a).measurements)
    assert len(merged.measurements) == 2 * n
    assert sorted(m.host for m in merged.measurements) == sorted([fa] * n + [fb] * n)
    assert merged.environment == {}  # several hosts: each one's environment is in `hosts`
    assert set(merged.models["student_kd"]["parity_by_host"]) == {fa, fb}
    assert f"{XEON} · {fb}" in stdout and "2 host(s)" in stdout
    # the per-host views are the inputs again: same measurements, own environment
    views = dict(host_views(merged))
    assert views[fb].environment["cpu_model"] == XEON
    assert _paired(views[fb].to_dict(), *KD_ORT)["metrics"] == _paired(json.loads(b.read_text()), *KD_ORT)["metrics"]


def test_report_shows_both_hosts_side_by_side_never_pooled(capsys, tmp_path, two_hosts):
    a, b = two_hosts
    out = tmp_path / "all.json"
    assert _run(capsys, "merge", a, b, "--out", out)[0] == 0
    docs = {host_fingerprint(json.loads(p.read_text())["environment"]): json.loads(p.read_text()) for p in two_hosts}
    code, text, _ = _run(capsys, "report", out)
    assert code == 0
    for fp, doc in docs.items():
        assert host_label(doc["environment"], fp) in text  # a column / source line per host, CPU + fingerprint
    report = json.loads(build_report([out], "json"))
    perf = [r for t in report["tasks"] for r in t["tables"]["performance"]
            if (r["model"], r["backend"]) == KD_ORT]
    assert len(perf) == 2  # one row per host, never one blended row
    for fp, doc in docs.items():
        row = next(r for r in perf if fp in r["source"])
        met = _paired(doc, *KD_ORT)["metrics"]
        # each host's own p50, speedup and CI: nothing recomputed over the two hosts' samples
        assert row["p50_ms"] == pytest.approx(met["student_p50_ms"])
        assert row["speedup"] == pytest.approx(met["speedup"])
        assert [row["speedup_ci_lo"], row["speedup_ci_hi"]] == pytest.approx(met["speedup_ci95"])
    assert perf[0]["p50_ms"] != pytest.approx(perf[1]["p50_ms"])
    model = build_model([out])
    assert [len({m.host for m in res.measurements}) for res in model.results] == [1, 1]


def test_gate_compares_host_with_host(tmp_path, two_hosts):
    a, b = two_hosts
    base_path, cur_path = tmp_path / "base.json", tmp_path / "cur.json"
    assert cli_main(["merge", str(a), str(b), "--out", str(base_path)]) == 0
    fb = host_fingerprint(json.loads(b.read_text())["environment"])
    same = evaluate_gate(base_path, base_path)
    assert gate_exit_code(same) == 0 and {r.host.rsplit(" ", 1)[-1] for r in same} == set(load_results(base_path).hosts)
    # the Xeon host alone got much slower; pooled with the EPYC host it might hide, host by host it fails
    slow = _second_host(json.loads(BASELINE.read_text()), speed=1.0)
    met = _paired(slow, *KD_ORT)["metrics"]
    met["speedup_p10"] *= 0.5
    met["speedup_p10_ci95"] = [x * 0.5 for x in met["speedup_p10_ci95"]]
    slow["created"] = "2026-11-30T00:00:00+00:00"
    assert cli_main(["merge", str(a), str(_write(tmp_path / "slow.json", slow)), "--out", str(cur_path)]) == 0
    verdicts = evaluate_gate(base_path, cur_path)
    failed = [r for r in verdicts if r.verdict == "fail"]
    assert gate_exit_code(verdicts) == 1 and failed
    assert all(r.host.endswith(fb) and (r.model, r.backend) == KD_ORT for r in failed)
    assert "host" in format_gate(verdicts).splitlines()[0]
    # a host the current file lacks: its baseline rows are missing, named by host
    lacking = evaluate_gate(base_path, a)
    assert gate_exit_code(lacking) == 1
    assert {r.missing for r in lacking if r.verdict == "missing"} == {f"host {XEON} · {fb}: task gunpoint"}


# -- one host -----------------------------------------------------------------------------------

def test_same_fingerprint_merge_pools_like_worker_processes(capsys, tmp_path):
    doc = json.loads(BASELINE.read_text())
    later = copy.deepcopy(doc)
    later["created"], later["environment"]["hostname"] = "2026-11-30T00:00:00+00:00", "twin"
    a, b = _write(tmp_path / "a.json", doc), _write(tmp_path / "b.json", later)
    out = tmp_path / "all.json"
    code, _, err = _run(capsys, "merge", a, b, "--out", out)
    assert code == 0, err
    merged = load_results(out)
    assert list(merged.hosts) == [host_fingerprint(doc["environment"])]
    assert len(merged.measurements) == len(doc["measurements"])  # one per key, not two
    before = _paired(doc, *KD_ORT)
    after = _paired(merged.to_dict(), *KD_ORT)
    assert after["metrics"]["processes"] == 2 * before["metrics"]["processes"]
    assert len(after["samples_ns"]) == 2 * len(before["samples_ns"])
    assert after["metrics"]["speedup_ci95"] != before["metrics"]["speedup_ci95"]  # recomputed over both benches
    assert merged.environment["cpu_model"] == doc["environment"]["cpu_model"]  # one host: its environment
    assert len(host_views(merged)) == 1
    assert "host fingerprint" in build_report([out], "full")


def test_pooling_a_pooled_latency_run_keeps_its_processes():
    rng = np.random.default_rng(0)

    def raw(pid: int) -> Measurement:
        samples = rng.integers(900_000, 1_100_000, size=200).tolist()
        metrics = {"calibration": {"n_samples": 200, "timer_resolution_s": 1e-9, "min_samples_met": True},
                   "harness_overhead": {"p50_ns": 90.0}, "harness_overhead_p50_ns": 90.0,
                   "worker": {"process": "worker", "pid": pid}}
        return Measurement("t", "student_kd", "onnxruntime", "latency", 1, 1, metrics, samples_ns=samples)

    runs = [raw(pid) for pid in range(4)]
    first, second = latency.merge_runs(runs[:2]), latency.merge_runs(runs[2:])
    pooled = latency.merge_runs([first, second])
    direct = latency.merge_runs(runs)
    assert first.metrics.processes == 2 and pooled.metrics.processes == 4
    assert pooled.metrics.process_p50_ms == direct.metrics.process_p50_ms
    assert pooled.metrics.p50_ms == direct.metrics.p50_ms
    assert [w["pid"] for w in pooled.metrics.workers] == [0, 1, 2, 3]


def test_same_host_without_raw_samples_keeps_the_first_and_says_so(capsys, tmp_path):
    doc = json.loads(MAIN_JOB.read_text())  # samples dropped from this copy
    later = copy.deepcopy(doc)
    later["created"] = "2026-11-30T00:00:00+00:00"
    out = tmp_path / "all.json"
    assert _run(capsys, "merge", _write(tmp_path / "a.json", doc), _write(tmp_path / "b.json", later),
                "--out", out)[0] == 0
    merged = load_results(out)
    assert len(merged.measurements) == len(doc["measurements"])
    lat = next(m for m in doc["measurements"] if m["suite"] == "latency")
    kept = next(m for m in merged.measurements if m.suite == "latency" and m.key() == Measurement.from_dict(lat).key())
    assert kept.metrics.to_dict() == lat["metrics"]
    assert any("not pooled" in w and "kept the one from a.json" in w for w in merged.warnings)


# -- bad input ----------------------------------------------------------------------------------

def _bad_cases(tmp_path: Path) -> dict[str, list]:
    good = _write(tmp_path / "good.json", json.loads(BASELINE.read_text()))
    other = _write(tmp_path / "other.json", _second_host(json.loads(BASELINE.read_text())))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema": "kd-harness/results/1", "measurements": [')
    foreign = _write(tmp_path / "foreign.json", {"schema": "kd-harness/results/0", "measurements": []})
    swapped = _second_host(json.loads(BASELINE.read_text()))
    swapped["models"]["student_kd"]["onnx_sha256"] = "0" * 64
    swapped = _write(tmp_path / "swapped.json", swapped)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    out = tmp_path / "out.json"
    return {
        "one input": [good, "--out", out],
        "missing file": [good, tmp_path / "nope.json", "--out", out],
        "corrupt json": [good, corrupt, "--out", out],
        "wrong schema": [good, foreign, "--out", out],
        "same file twice": [good, good, "--out", out],
        "another model under one name": [good, swapped, "--out", out],
        "out unwritable": [good, other, "--out", blocker / "out.json"],
        "out a folder": [good, other, "--out", tmp_path],
        "no out": [good, other],
    }


@pytest.mark.parametrize("case", ["one input", "missing file", "corrupt json", "wrong schema", "same file twice",
                                  "another model under one name", "out unwritable", "out a folder", "no out"])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, case):
    argv = _bad_cases(tmp_path)[case]
    inputs = {p: p.read_bytes() for p in tmp_path.glob("*.json")}
    code, stdout, err = _run(capsys, "merge", *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("harness: error:") and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()
    assert {p: p.read_bytes() for p in tmp_path.glob("*.json")} == inputs  # no input touched


def test_out_may_be_an_input_when_named(capsys, tmp_path, two_hosts):
    a, b = two_hosts
    b_bytes = b.read_bytes()
    assert _run(capsys, "merge", a, b, "--out", a)[0] == 0
    assert len(load_results(a).hosts) == 2 and b.read_bytes() == b_bytes
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed


def test_file_naming_a_host_it_does_not_hold_is_refused(tmp_path, two_hosts):
    out = tmp_path / "all.json"
    assert cli_main(["merge", *map(str, two_hosts), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    doc["measurements"][0]["host"] = "f" * 12
    with pytest.raises(SchemaError, match="does not hold"):
        load_results(_write(tmp_path / "broken.json", doc))


def test_single_bench_files_are_unchanged():
    res = load_results(BASELINE)
    assert "hosts" not in res.to_dict() and all("host" not in m for m in res.to_dict()["measurements"])
    assert host_views(res) == [(host_fingerprint(res.environment), res)]


def test_history_stores_each_host_as_its_own_run(tmp_path, two_hosts):
    from harness import history

    out = tmp_path / "all.json"
    assert cli_main(["merge", *map(str, two_hosts), "--out", str(out)]) == 0
    db = tmp_path / "h.sqlite"
    history.append(out, db)
    runs = history.list_runs(db)
    assert len(runs) == 2 and all(f"({fp})" in h for fp, h in zip(load_results(out).hosts, runs["host"]))
    assert len(history.query(db, "speedup", model="student_kd", backend="onnxruntime")) == 2  # one per host


def test_a_merged_file_and_one_of_its_inputs_are_the_same_bench(capsys, tmp_path, two_hosts):
    a, b = two_hosts
    out = tmp_path / "all.json"
    assert _run(capsys, "merge", a, b, "--out", out)[0] == 0
    code, _, err = _run(capsys, "merge", out, a, "--out", tmp_path / "again.json")
    assert code == 2 and "same bench" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "again.json").exists()
