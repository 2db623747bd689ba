"""Timing loop and suites, with fake sessions (work-based, no sleeps) and no wall-clock thresholds."""
import json

import numpy as np
import pytest

from harness.backends.base import BackendOptions, Session
from harness.errors import OptionError
from harness.measure import accuracy, environment, latency, paired, throughput
from harness.measure.base import SessionHandle
from harness.measure.timers import CallableTimer
from harness.measure.timing import TimingConfig, measure_overhead_ns, time_callable
from harness.results import Measurement

FAST = TimingConfig(warmup_min_s=0.0, warmup_min_calls=2, min_time_s=0.01, min_samples=20, max_time_s=0.5)


# -- fakes ---------------------------------------------------------------------------------
class FakeClock:
    """A nanosecond clock that advances `step` per read, plus whatever a fake call adds."""

    def __init__(self, step=10):
        self.t = 0
        self.step = step
        self.reads = 0

    def __call__(self):
        self.reads += 1
        self.t += self.step
        return self.t


class WorkSession(Session):
    """Does `reps` single-threaded elementwise passes over a fixed array per call: work, not sleep."""

    backend = "fake"

    def __init__(self, reps=1, size=20_000, classes=3):
        self.reps = reps
        self.x = np.linspace(0, 1, size)
        self.y = np.empty_like(self.x)
        self.classes = classes
        self.prepared_calls = 0

    def prepare(self, batch):
        self.prepared_calls += 1
        return np.ascontiguousarray(batch, dtype=np.float32)

    def run_prepared(self, prepared):
        for _ in range(self.reps):
            np.sin(self.x, out=self.y)
        return prepared

    def to_numpy(self, out):
        # logits: class = (first feature * classes) bucket, so accuracy is predictable
        n = out.shape[0]
        logits = np.zeros((n, self.classes), dtype=np.float32)
        logits[np.arange(n), (out.reshape(n, -1)[:, 0] * self.classes).astype(int) % self.classes] = 1.0
        return logits


def handle(role, reps=1, threads=1, macs=None, task="toy", session=None):
    return SessionHandle(task=task, role=role, backend="fake", options=BackendOptions(threads=threads),
                         session=session or WorkSession(reps), macs=macs)


INPUTS = {1: np.zeros((1, 1, 8), np.float32), 4: np.zeros((4, 1, 8), np.float32)}


# -- time_callable -------------------------------------------------------------------------
def test_time_callable_count_from_min_time_with_fake_clock():
    clock = FakeClock(step=10)
    cfg = TimingConfig(warmup_min_s=0.0, warmup_min_calls=5, min_time_s=1e-4, min_samples=10, max_time_s=1.0)
    res = time_callable(lambda: None, cfg, clock=clock)
    # each call spans exactly one clock step (10 ns): n = 1e5 ns / 10 ns
    assert res.samples_ns.dtype == np.int64
    assert res.samples_ns.size == 10_000 and res.calibration["capped_by"] is None
    assert np.all(res.samples_ns == 10)
    assert res.calibration["warmup_calls"] == 5


def test_time_callable_min_samples_and_caps_with_fake_clock():
    clock = FakeClock(step=1000)
    # min_samples dominates a tiny min_time
    res = time_callable(lambda: None, TimingConfig(warmup_min_s=0, min_time_s=1e-6, min_samples=77, max_time_s=1.0),
                        clock=clock)
    assert res.samples_ns.size == 77 and res.calibration["min_samples_met"]
    # max_samples caps
    res = time_callable(lambda: None, TimingConfig(warmup_min_s=0, min_time_s=1.0, min_samples=5, max_samples=123,
                                                  max_time_s=10.0), clock=clock)
    assert res.samples_ns.size == 123 and res.calibration["capped_by"] == "max_samples"
    # max_time caps below min_samples: reported
    slow = FakeClock(step=0)

    def work():
        slow.t += 100_000_000  # 0.1 s per call

    res = time_callable(work, TimingConfig(warmup_min_s=0, warmup_min_calls=1, min_time_s=0.5, min_samples=30,
                                           max_time_s=1.0), clock=slow)
    assert res.samples_ns.size == 10
    assert res.calibration["capped_by"] == "max_time_s" and not res.calibration["min_samples_met"]


def test_time_callable_deadline_stops_a_run_that_slows_down():
    clock = FakeClock(step=0)
    calls = {"n": 0}

    def work():
        calls["n"] += 1
        clock.t += 1_000 if calls["n"] <= 10 else 10_000_000  # 1 us in warm-up, then 10 ms

    res = time_callable(work, TimingConfig(warmup_min_s=0, warmup_min_calls=10, min_time_s=0.1, min_samples=10,
                                           max_time_s=0.2), clock=clock)
    # calibrated for 100_000 calls of 1 us; the deadline stops it after ~0.2 s of 10 ms calls
    assert res.calibration["planned_samples"] == 100_000
    assert 15 <= res.samples_ns.size <= 25
    assert res.calibration["capped_by"] == "max_time_s (deadline)"


def test_time_callable_real_clock_fields_and_gc_restored():
    import gc

    assert gc.isenabled()
    res = time_callable(lambda: None, FAST)
    assert gc.isenabled()
    cal = res.calibration
    for key in ("warmup_calls", "warmup_s", "planned_samples", "n_samples", "total_s", "timer_resolution_s",
                "gc_disabled", "estimated_call_ns", "capped_by", "min_samples_met"):
        assert key in cal
    assert res.samples_ns.size >= FAST.min_samples and np.all(res.samples_ns >= 0)
    json.dumps(cal, allow_nan=False)


def test_overhead_measured():
    o = measure_overhead_ns()
    assert o["p50_ns"] > 0 and o["n"] > 0 and "method" in o


@pytest.mark.parametrize("kwargs", [dict(min_time_s=-1), dict(min_samples=0), dict(max_samples=5, min_samples=10),
                                    dict(max_time_s=0.5, min_time_s=1.0), dict(warmup_min_calls=1.5)])
def test_timing_config_validates(kwargs):
    with pytest.raises(OptionError):
        TimingConfig(**kwargs)


# -- latency -------------------------------------------------------------------------------
@pytest.mark.slow
def test_latency_measurements_have_the_right_keys():
    hs = [handle("teacher", macs=1000), handle("student_kd")]
    ms = latency.measure(hs, INPUTS, latency.LatencyConfig(timing=FAST, batch_sizes=(1, 4, 8)))
    assert len(ms) == 6
    for m in ms:
        assert isinstance(m, Measurement) and m.suite == "latency" and m.backend == "fake" and m.task == "toy"
        for key in ("p50_ms", "p90_ms", "p99_ms", "median_ci95_ms", "cv", "iqr_ms", "calibration",
                    "harness_overhead_p50_ns", "n"):
            assert getattr(m.metrics, key) is not None
        assert m.samples_ns and all(type(v) is int for v in m.samples_ns[:5])
        assert len(m.samples_ns) == m.metrics.n
        assert m.options == BackendOptions(threads=1).key() and m.threads == 1
        json.dumps(m.to_dict(), allow_nan=False)
    t = [m for m in ms if m.model == "teacher"]
    assert all(m.metrics.gflops is not None for m in t)
    assert t[0].metrics.gflops == pytest.approx(2 * 1000 * 1 / (t[0].metrics.p50_ms / 1e3) / 1e9)
    assert all(m.metrics.gflops is None for m in ms if m.model == "student_kd")
    assert {m.batch_size for m in ms} == {1, 4, 8}  # 8 was built from the given batches


def test_latency_prepares_outside_the_timed_loop():
    s = WorkSession()
    latency.measure([handle("teacher", session=s)], INPUTS, latency.LatencyConfig(timing=FAST, batch_sizes=(1,)))
    assert s.prepared_calls == 1


def test_latency_config_validates():
    with pytest.raises(OptionError):
        latency.LatencyConfig(batch_sizes=(0,))
    with pytest.raises(OptionError):
        latency.LatencyConfig(batch_sizes=())


# -- paired --------------------------------------------------------------------------------
def test_paired_detects_2x_work():
    hs = [handle("teacher", reps=2), handle("student_kd", reps=1), handle("student_scratch", reps=2),
          handle("teacher", reps=2, threads=2)]  # different options: no partner, not paired
    cfg = paired.PairedConfig(rounds=10, calls_per_block=15, warmup=TimingConfig(warmup_min_s=0, warmup_min_calls=3))
    ms = paired.measure(hs, INPUTS, cfg)
    assert [m.model for m in ms] == ["student_kd", "student_scratch"]
    kd, scratch = ms
    assert kd.suite == "paired" and kd.metrics.reference == "teacher"
    lo, hi = kd.metrics.speedup_ci95
    assert lo <= kd.metrics.speedup <= hi
    assert lo > 1.3 and kd.metrics.significant  # ~2x the work: CI well clear of 1
    assert kd.metrics.p_value < 0.01
    assert kd.metrics.speedup == pytest.approx(kd.metrics.teacher_p50_ms / kd.metrics.student_p50_ms)
    assert len(kd.samples_ns) == len(kd.metrics.reference_samples_ns) == 9 * 15
    assert kd.metrics.rounds == 9 and kd.metrics.calls_per_block == 15  # 10 -> 3 whole cycles of 3
    # same work: speedup near 1
    assert 0.6 < scratch.metrics.speedup < 1.6
    # one round robin per batch: both students are judged against the very same teacher calls
    assert kd.metrics.reference_samples_ns == scratch.metrics.reference_samples_ns
    assert kd.metrics.calibration["group_size"] == 3
    json.dumps(kd.to_dict(), allow_nan=False)


def test_round_robin_rotates_whole_cycles_and_never_repeats_a_block():
    order = []
    cfg = paired.PairedConfig(rounds=5, calls_per_block=1, block_warmup_calls=0,
                              warmup=TimingConfig(warmup_min_s=0, warmup_min_calls=1))
    clock = FakeClock(step=5)
    timers = [CallableTimer(lambda n=n: order.append(n), clock=clock) for n in "RAB"]
    samples, cal = paired.time_round_robin(timers, None, cfg, clock=clock, sleep=lambda s: None)
    timed = "".join(order[3:])  # after one warm-up call each
    assert timed == "RAB" "ABR" "BRA" "RAB" "ABR" "BRA"  # 5 rounds -> the nearest whole cycles: 6
    assert all(a != b for a, b in zip(timed, timed[1:]))  # no model runs two blocks back to back
    for name in "RAB":  # every model holds every position equally often
        assert sorted(timed[i:i + 3].index(name) for i in range(0, len(timed), 3)) == [0, 0, 1, 1, 2, 2]
    assert [s.shape for s in samples] == [(6, 1)] * 3 and cal["rounds"] == cal["planned_rounds"] == 6


def test_round_robin_stops_on_its_deadline_only_at_a_cycle_end():
    cfg = paired.PairedConfig(rounds=30, calls_per_block=1, block_warmup_calls=0, max_time_s=1e-9,
                              warmup=TimingConfig(warmup_min_s=0, warmup_min_calls=1))
    clock = FakeClock(step=5)
    timers = [CallableTimer(lambda: None, clock=clock) for _ in range(3)]
    samples, cal = paired.time_round_robin(timers, None, cfg, clock=clock, sleep=lambda s: None)
    assert cal["rounds"] == 3 and cal["stopped_by_max_time"]  # one whole cycle, not two rounds
    assert paired.planned_rounds(20, 6) == 18 and paired.planned_rounds(20, 2) == 20
    assert paired.planned_rounds(3, 2) == 4 and paired.planned_rounds(1, 1) == 2


# -- throughput ----------------------------------------------------------------------------
def test_throughput_sweep_marks_best_batch():
    cfg = throughput.ThroughputConfig(batch_sizes=(1, 2, 4), timing=FAST)
    ms = throughput.measure([handle("teacher", macs=10)], INPUTS, cfg)
    assert [m.batch_size for m in ms] == [1, 2, 4]
    best = [m for m in ms if m.metrics.is_best]
    assert len(best) == 1
    for m in ms:
        assert m.suite == "throughput" and m.metrics.best_batch == best[0].batch_size
        assert m.metrics.samples_per_s == pytest.approx(m.batch_size / (m.metrics.p50_ms / 1e3))
        assert m.metrics.samples_per_s <= best[0].metrics.samples_per_s


def test_throughput_stops_sweep_on_failure():
    class Fails(WorkSession):
        def prepare(self, batch):
            if batch.shape[0] > 2:
                raise MemoryError("too big")
            return super().prepare(batch)

    ms = throughput.measure([handle("teacher", session=Fails())], INPUTS,
                            throughput.ThroughputConfig(batch_sizes=(1, 2, 4, 8), timing=FAST))
    assert [m.batch_size for m in ms] == [1, 2]
    assert all(any("batch 4 failed" in w for w in m.warnings) for m in ms)


# -- accuracy ------------------------------------------------------------------------------
def test_accuracy_counts_correct_predictions():
    X = np.zeros((10, 1, 4), np.float32)
    X[:, 0, 0] = np.array([0.1, 0.5, 0.9] * 3 + [0.1])  # -> classes 0, 1, 2
    y = np.array([0, 1, 2] * 3 + [1])  # last one wrong
    ms = accuracy.measure([handle("teacher")], {"X_test": X, "y_test": y, "batch_size": 4})
    (m,) = ms
    assert m.suite == "accuracy" and m.metrics.to_dict() == {"accuracy": 0.9, "correct": 9, "n": 10}


# -- environment ---------------------------------------------------------------------------
def test_environment_fields():
    env = environment.collect(threads=1)
    for key in ("cpu_model", "physical_cores", "logical_cores", "threads", "memory_total_bytes", "os", "python",
                "versions", "torch_num_threads", "ort_providers", "cuda_available", "cuda_device", "git_commit",
                "git_dirty", "hostname", "timestamp", "env_vars"):
        assert key in env
    assert env["threads"] == 1
    for pkg in ("torch", "onnxruntime", "onnx", "numpy", "scipy", "kd-harness"):
        assert pkg in env["versions"]
    json.dumps(env, allow_nan=False)


def test_environment_git_outside_a_repo(tmp_path):
    assert environment._git(str(tmp_path)) == {"git_commit": None, "git_dirty": None}


# -- a real onnxruntime session ------------------------------------------------------------
def test_latency_on_real_onnxruntime_session(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    class OrtSession(Session):
        backend = "onnxruntime"

        def prepare(self, batch):
            return {"x": batch}

        def run_prepared(self, feed):
            return sess.run(None, feed)

        def to_numpy(self, out):
            return out[0]

    h = SessionHandle("toy", "teacher", "onnxruntime", BackendOptions(threads=1), OrtSession(), macs=24)
    (m,) = latency.measure([h], {1: np.ones((1, 8), np.float32)}, latency.LatencyConfig(timing=FAST))
    assert m.metrics.p50_ms > 0 and m.metrics.gflops > 0
    assert m.metrics.n >= FAST.min_samples


@pytest.mark.slow
def test_throughput_reads_a_batch_the_latency_suite_just_timed_instead_of_timing_it_again():
    calls = []

    class CountingTimer(CallableTimer):
        def time(self, batch, cfg):
            calls.append(batch.shape[0])
            return super().time(batch, cfg)

    h = SessionHandle(task="toy", role="teacher", backend="fake", options=BackendOptions(threads=1), session=None,
                      timer=CountingTimer(lambda: sum(range(200))))
    lat = latency.measure([h], INPUTS, latency.LatencyConfig(timing=FAST, batch_sizes=(1,), pooled=True))
    thr = throughput.measure([h], INPUTS, throughput.ThroughputConfig(batch_sizes=(1, 4), timing=FAST, pooled=True))
    assert calls == [1, 4]  # batch 1 timed once, for both suites
    assert thr[0].samples_ns == lat[0].samples_ns and thr[0].suite == "throughput"
    assert thr[0].metrics.calibration["reused_from"] == "latency" and "reused_from" not in thr[1].metrics.calibration
    again = throughput.measure([h], INPUTS, throughput.ThroughputConfig(batch_sizes=(1,), timing=FAST, pooled=True))
    assert calls == [1, 4, 1] and again[0].samples_ns != lat[0].samples_ns  # one latency run is reused once
    longer = TimingConfig(warmup_min_s=0.0, warmup_min_calls=2, min_time_s=0.05, min_samples=20, max_time_s=0.5)
    latency.measure([h], INPUTS, latency.LatencyConfig(timing=FAST, batch_sizes=(1,), pooled=True))
    throughput.measure([h], INPUTS, throughput.ThroughputConfig(batch_sizes=(1,), timing=longer, pooled=True))
    assert calls[-2:] == [1, 1]  # a shorter latency window than throughput's own is not reused
