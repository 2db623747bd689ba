"""Worker processes and between-process statistics: no wall-clock thresholds, only behaviour."""
import os
import signal

import numpy as np
import pytest

from harness.backends.base import Artifact, BackendOptions
from harness.errors import HarnessError, ModelFileError
from harness.measure import latency, paired
from harness.measure.base import SessionHandle
from harness.measure.merge import merge_processes
from harness.measure.hierarchical import between_process_cv, hierarchical_median_ci, hierarchical_ratio_ci
from harness.measure.timing import TimingConfig
from harness.measure.worker import WorkerTimer, start_workers

FAST = TimingConfig(warmup_min_s=0.0, warmup_min_calls=2, min_time_s=0.01, min_samples=20, max_time_s=0.5)


# -- two-stage bootstrap -------------------------------------------------------------------
def test_hierarchical_median_ci_widens_when_processes_disagree():
    rng = np.random.default_rng(1)
    same = [rng.normal(100, 1, 3000) for _ in range(3)]
    split = [rng.normal(100, 1, 3000), rng.normal(100, 1, 3000), rng.normal(140, 1, 3000)]
    lo_s, hi_s = hierarchical_median_ci(same)
    lo_b, hi_b = hierarchical_median_ci(split)
    assert lo_s <= np.median(np.concatenate(same)) <= hi_s
    assert lo_b <= np.median(np.concatenate(split)) <= hi_b
    assert (hi_b - lo_b) > 5 * (hi_s - lo_s)  # a bimodal process state widens the interval
    assert hi_b > 100.5  # and the interval reaches towards the odd process


def test_hierarchical_ratio_ci_covers_process_to_process_speedups():
    rng = np.random.default_rng(2)
    ref = [rng.normal(280, 3, (20, 50)) for _ in range(4)]
    cand_same = [rng.normal(35, 0.4, (20, 200)) for _ in range(4)]
    r, lo, hi = hierarchical_ratio_ci(ref, cand_same)
    assert lo <= r <= hi and hi - lo < 0.1 * r
    # one process in a slow state: 280/52 = 5.4x instead of 8x
    cand_split = [rng.normal(35, 0.4, (20, 200)) for _ in range(3)] + [rng.normal(52, 0.4, (20, 200))]
    r2, lo2, hi2 = hierarchical_ratio_ci(ref, cand_split)
    assert lo2 <= r2 <= hi2
    assert lo2 < 7.0 and (hi2 - lo2) > 5 * (hi - lo)


def test_hierarchical_ratio_ci_checks_shapes():
    with pytest.raises(ValueError):
        hierarchical_ratio_ci([np.ones((3, 4))], [np.ones((2, 4))])
    with pytest.raises(ValueError):
        hierarchical_ratio_ci([np.ones((3, 4))], [])


def test_between_process_cv():
    assert between_process_cv([1.0]) is None
    assert between_process_cv([2.0, 2.0, 2.0]) == 0.0
    assert between_process_cv([1.0, 3.0]) == pytest.approx(np.std([1, 3], ddof=1) / 2)


# -- merging runs from several processes ---------------------------------------------------
def _fake_latency(p50_ns, n=200, seed=0, model="teacher"):
    rng = np.random.default_rng(seed)
    samples = rng.normal(p50_ns, p50_ns * 0.01, n).astype(np.int64)
    res = type("R", (), {"samples_ns": samples, "calibration": {"n_samples": n, "timer_resolution_s": 1e-9}})()
    h = SessionHandle("toy", model, "fake", BackendOptions(), session=None, timer=object())
    m = latency.timed_measurement(h, "latency", 1, res, {"p50_ns": 100.0}, latency.StabilityThresholds(), True)
    return m


def test_merge_latency_pools_samples_and_keeps_processes():
    runs = [_fake_latency(1_000_000, seed=i) for i in range(2)] + [_fake_latency(1_300_000, seed=9)]
    (m,) = merge_processes(runs)
    assert m.metrics.processes == 3 and len(m.samples_ns) == 600
    assert m.metrics.process_p50_ms[2] == pytest.approx(1.3, rel=0.01)
    assert m.metrics.between_process_cv > 0.1
    lo, hi = m.metrics.median_ci95_ms
    assert lo <= m.metrics.p50_ms <= hi
    assert any("between processes" in w for w in m.warnings)
    assert m.metrics.p50_ms == pytest.approx(np.median(m.samples_ns) / 1e6)


def test_merge_paired_round_trips_layout():
    rng = np.random.default_rng(3)
    cfg = paired.PairedConfig()
    runs = []
    for i, (k_ref, k_cand) in enumerate([(5, 40), (6, 38)]):
        ref = rng.normal(280_000, 1000, (10, k_ref)).astype(np.int64)
        cand = rng.normal(35_000, 300, (10, k_cand)).astype(np.int64)
        cal = {"rounds": 10, "planned_rounds": 10, "timer_resolution_s": 1e-9}
        metrics, warnings = paired.compare([ref], [cand], {"p50_ns": 100.0}, [cal], cfg.thresholds, "teacher")
        h = SessionHandle("toy", "student_kd", "fake", BackendOptions(), session=None, timer=object())
        runs.append(paired._measurement(h, 1, metrics, cand.ravel(), warnings))
        assert [g.shape for g in paired.run_groups(runs[-1])[0]] == [(10, k_ref)]
    (m,) = merge_processes(runs)
    assert m.metrics.processes == 2 and m.metrics.rounds == 20
    assert m.metrics.process_calls_per_block == [[5, 40], [6, 38]]
    ref_groups, cand_groups = paired.run_groups(m)
    assert [g.shape for g in ref_groups] == [(10, 5), (10, 6)] and [g.shape for g in cand_groups] == [(10, 40), (10, 38)]
    assert m.metrics.speedup == pytest.approx(m.metrics.teacher_p50_ms / m.metrics.student_p50_ms)
    lo, hi = m.metrics.speedup_ci95
    assert lo <= m.metrics.speedup <= hi and 7 < m.metrics.speedup < 9
    assert len(m.metrics.process_speedups) == 2
    # the fast-state ratio: each side's 10th percentile, with its own two-stage CI
    flo, fhi = m.metrics.speedup_p10_ci95
    ref_all = np.concatenate([g.ravel() for g in ref_groups])
    cand_all = np.concatenate([g.ravel() for g in cand_groups])
    assert m.metrics.speedup_p10 == pytest.approx(np.percentile(ref_all, 10) / np.percentile(cand_all, 10))
    assert flo <= m.metrics.speedup_p10 <= fhi and len(m.metrics.process_speedups_p10) == 2


def test_paired_blocks_are_sized_per_model():
    from harness.measure.timers import CallableTimer

    slow = CallableTimer(lambda: sum(range(2000)))
    fast = CallableTimer(lambda: None)
    cfg = paired.PairedConfig(rounds=2, block_time_s=0.005, max_calls_per_block=100_000, settle_s=0,
                              warmup=TimingConfig(warmup_min_s=0.01, warmup_min_calls=5))
    ref, cand, cal = paired.time_interleaved(slow, fast, None, cfg)
    assert cand.shape[1] > ref.shape[1]  # the fast model's block holds more calls, not fewer seconds
    assert cal["calls_per_block"] == [ref.shape[1], cand.shape[1]]


# -- worker processes ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    import torch

    from harness.export import export_onnx

    path = tmp_path_factory.mktemp("w") / "m.onnx"
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    export_onnx(model, (1, 16), path)
    return path


def test_worker_times_in_its_own_process(tiny_onnx):
    (w,) = start_workers([("onnxruntime", Artifact(role="m", onnx=str(tiny_onnx)), BackendOptions(threads=1), "m")])
    try:
        batch = np.zeros((2, 1, 16), np.float32)
        res = w.time(batch, FAST)
        assert res.samples_ns.dtype == np.int64 and res.samples_ns.size >= 20
        block = w.block(batch, 7, 1)
        assert block.shape == (7,) and np.all(block > 0)
        assert len(w.warm_up(batch, FAST)) >= 2
        assert w.overhead()["p50_ns"] > 0
        where = w.where()
        assert where["process"] == "worker" and where["pid"] != os.getpid()
        with pytest.raises(HarnessError, match="does not fit"):  # a bad request: one-line error, worker lives on
            w.block(np.zeros((2, 1, 9, 9), np.float32), 3)
        assert w.block(batch, 2).shape == (2,)
    finally:
        w.close()
    assert not w.proc.is_alive()


def test_worker_open_failure_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ModelFileError) as exc:
        start_workers([("onnxruntime", Artifact(role="m", onnx=str(bad)), BackendOptions(), "m")])
    assert "\n" not in str(exc.value)


def test_worker_killed_mid_run_is_named(tiny_onnx):
    w = WorkerTimer("onnxruntime", Artifact(role="m", onnx=str(tiny_onnx)), BackendOptions(), "toy/m/onnxruntime")
    try:
        w.wait_ready()
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.join(5)
        with pytest.raises(HarnessError, match="toy/m/onnxruntime died"):
            w.block(np.zeros((1, 1, 16), np.float32), 3)
    finally:
        w.close()


@pytest.mark.slow
def test_pooled_runs_carry_no_statistics_and_merge_like_full_runs():
    """bench keeps raw runs per process and computes every statistic once, in the merge."""
    from harness.measure import throughput
    from tests.test_timing import INPUTS, handle

    hs = [handle("teacher", reps=3), handle("student_kd", reps=1)]
    pc = paired.PairedConfig(rounds=4, calls_per_block=6, settle_s=0,
                             warmup=TimingConfig(warmup_min_s=0, warmup_min_calls=2))
    raw = [m for _ in range(2) for m in paired.measure(hs, INPUTS, paired.PairedConfig(**{**pc.__dict__, "pooled": True}))]
    assert all(m.metrics.speedup is None and m.metrics.p50_ms is None for m in raw)
    # the same samples with statistics computed per run first, as before pooling existed
    full = [paired._measurement(m, m.batch_size, paired.compare(*paired.run_groups(m), m.metrics.harness_overhead,
                                                               [m.metrics.calibration], pc.thresholds, "teacher")[0],
                                np.asarray(m.samples_ns), []) for m in raw]
    for f, r in zip(full, raw):
        f.metrics.harness_overhead = r.metrics.harness_overhead
        f.metrics.workers = r.metrics.workers
    (a,), (b,) = merge_processes(raw), merge_processes(full)
    assert a.metrics.processes == 2 and a.metrics.speedup == b.metrics.speedup
    assert a.metrics.speedup_ci95 == b.metrics.speedup_ci95 and a.samples_ns == b.samples_ns

    lat = [m for _ in range(2) for m in latency.measure(hs, INPUTS, latency.LatencyConfig(timing=FAST, pooled=True))]
    assert all(m.metrics.p50_ms is None and m.samples_ns for m in lat)
    merged = merge_processes(lat)
    assert [m.model for m in merged] == ["teacher", "student_kd"] and all(m.metrics.processes == 2 for m in merged)
    thr = [m for _ in range(2) for m in throughput.measure(hs[:1], INPUTS, throughput.ThroughputConfig(
        batch_sizes=(1, 4), timing=FAST, pooled=True))]
    merged = merge_processes(thr)
    assert len(merged) == 2 and sum(m.metrics.is_best for m in merged) == 1
