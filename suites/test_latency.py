"""Latency: one inference call per sample, per role x backend x batch size (--kd-batch-sizes, default 1,8).

The session is opened once per (role, backend) and shared; the batch is real test data, converted to
the backend's native input outside timing, and warmed up outside timing. pytest-benchmark then times
`session.run_prepared(prepared)` with its own calibration (--benchmark-min-time, --benchmark-max-time,
--benchmark-min-rounds, --benchmark-warmup apply); the calls take far longer than the timer's
resolution, so each round is one call and the saved data are per-call samples.
"""
import pytest


@pytest.mark.kd_grid("latency")
def test_latency(benchmark, kd, role, backend, batch_size, record_property):
    session = kd.session(role, backend)
    prepared = session.prepare(kd.run.batch(batch_size))
    kd.warm_up(session.run_prepared, prepared)

    benchmark.group = f"latency: {kd.run.task} {backend} batch {batch_size}"
    info = kd.run.extra_info(role, backend, batch_size, "latency")
    benchmark.extra_info.update(info)
    out = benchmark(session.run_prepared, prepared)

    logits = session.to_numpy(out)
    assert logits.shape[0] == batch_size
    median = kd.median_s(benchmark)
    if median is not None:
        info["p50_ms"] = median * 1e3
    kd.record(benchmark, record_property, info)
