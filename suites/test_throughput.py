"""Throughput: samples per second under back-to-back calls, per role x backend x batch size
(--kd-throughput-batch-sizes, default 1,8,32).

Each round makes `iterations` back-to-back calls (at least ~10 ms of work) so the figure is sustained
rate, not single-call latency; rounds fill --benchmark-max-time (default 1 s), at least
--benchmark-min-rounds. pytest-benchmark's times are per call; extra_info["samples_per_s"] is
batch_size / median.
"""
import pytest


@pytest.mark.kd_grid("throughput")
def test_throughput(benchmark, kd, role, backend, batch_size, record_property):
    session = kd.session(role, backend)
    prepared = session.prepare(kd.run.batch(batch_size))
    per_call = kd.warm_up(session.run_prepared, prepared)
    iterations, rounds = kd.throughput_plan(per_call)

    benchmark.group = f"throughput: {kd.run.task} {backend} batch {batch_size}"
    info = kd.run.extra_info(role, backend, batch_size, "throughput")
    benchmark.extra_info.update(info)
    out = benchmark.pedantic(session.run_prepared, args=(prepared,), iterations=iterations, rounds=rounds,
                             warmup_rounds=1)

    assert session.to_numpy(out).shape[0] == batch_size
    median = kd.median_s(benchmark)
    info.update(iterations=iterations, rounds=rounds)
    if median is not None:
        info["samples_per_s"] = batch_size / median
        assert info["samples_per_s"] > 0
    kd.record(benchmark, record_property, info)
