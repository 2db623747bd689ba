"""Memory, storage and accuracy of each model: sanity-checked and recorded.

The figures go to extra_info (so --benchmark-json / --benchmark-save carry them) and to junit
properties (record_property). Each test goes through the `benchmark` fixture, timing its own
measurement once, so that it runs under --benchmark-only; that time is the measuring (a child
process, a gzip pass, a pass over the test split), not the model's speed, and these entries are
left out of --benchmark-compare(-fail) (see harness.pytest_plugin.pytest_benchmark_compare_machine_info).
"""
import pytest

ONE_POINT = 0.01  # ONNX Runtime vs PyTorch accuracy tolerance: 1 percentage point


@pytest.mark.kd_grid("role")
def test_storage(benchmark, kd, role, record_property):
    from harness.measure.storage import storage_metrics

    src = kd.run.source_for(role)
    benchmark.group = f"footprint: {kd.run.task} storage"
    figures = benchmark.pedantic(storage_metrics, kwargs=dict(checkpoint=src.checkpoint, onnx=src.onnx,
                                                              params=src.params, macs=src.macs),
                                 rounds=1, iterations=1)
    for key in ("checkpoint_bytes", "checkpoint_gzip_bytes", "onnx_bytes", "onnx_graph_bytes", "onnx_gzip_bytes"):
        assert isinstance(figures[key], int) and figures[key] > 0, (key, figures[key])
    assert figures["onnx_bytes"] == figures["onnx_graph_bytes"] + figures["onnx_external_bytes"]
    assert figures["params"] and figures["params"] > 0
    # float32 weights: each file holds at least 4 bytes per parameter
    assert figures["onnx_bytes"] >= 4 * figures["params"] * 0.9
    assert figures["checkpoint_bytes"] >= 4 * figures["params"]
    info = kd.run.extra_info(role, "any", 0, "storage")
    info.update({k: v for k, v in figures.items() if v is not None})
    kd.record(benchmark, record_property, info)


@pytest.mark.kd_grid("role_backend")
def test_memory(benchmark, kd, role, backend, record_property):
    from harness.measure.memory import measure_sources

    src = kd.run.source_for(role)
    bs = kd.batch_sizes[0]
    benchmark.group = f"footprint: {kd.run.task} memory"
    ms = benchmark.pedantic(measure_sources, args=([src], [backend], kd.run.options()),
                            kwargs=dict(batch_size=bs, repeats=1, inputs={bs: kd.run.batch(bs)}),
                            rounds=1, iterations=1)
    by_suite = {m.suite: m for m in ms}
    assert set(by_suite) == {"memory", "cold_start"}
    mem, cold = by_suite["memory"].metrics, by_suite["cold_start"].metrics
    for value in (mem.rss_baseline_mb, mem.rss_after_load_mb, mem.peak_rss_mb, mem.rss_steady_mb):
        assert value is not None and value > 0, mem
    assert mem.peak_rss_mb >= mem.rss_baseline_mb
    assert mem.peak_rss_increase_mb >= 0
    assert cold.load_s > 0 and cold.first_inference_ms > 0
    info = kd.run.extra_info(role, backend, bs, "memory")
    info.update(rss_baseline_mb=mem.rss_baseline_mb, rss_after_load_mb=mem.rss_after_load_mb,
                load_increase_mb=mem.load_increase_mb, peak_rss_mb=mem.peak_rss_mb,
                peak_rss_increase_mb=mem.peak_rss_increase_mb, rss_steady_mb=mem.rss_steady_mb,
                load_s=cold.load_s, first_inference_ms=cold.first_inference_ms)
    notes = [w for m in ms for w in m.warnings]
    if notes:
        info["memory_warnings"] = notes
    kd.record(benchmark, record_property, info)


@pytest.mark.kd_grid("role_backend")
def test_accuracy(benchmark, kd, role, backend, record_property):
    src = kd.run.source_for(role)
    benchmark.group = f"footprint: {kd.run.task} accuracy"
    figures = benchmark.pedantic(kd.measured_accuracy, args=(role, backend), kwargs=dict(refresh=True),
                                 rounds=1, iterations=1)
    acc = figures["measured_accuracy"]
    assert 0.0 <= acc <= 1.0
    assert figures["n"] == len(kd.run.data.y_test)
    per_seed = (kd.run.summary["models"][role].get("accuracy") or {}).get("per_seed") or []
    if backend == "torch" and per_seed:
        # the checkpoint under test is the first seed's; reloaded, it must score what training recorded
        assert abs(acc - per_seed[0]) <= ONE_POINT, (acc, per_seed[0])
    if backend != "torch" and src.checkpoint is not None:
        ref = kd.measured_accuracy(role, "torch")["measured_accuracy"]
        assert abs(acc - ref) <= ONE_POINT, f"{backend} accuracy {acc:.4f} vs torch {ref:.4f}"
    info = kd.run.extra_info(role, backend, 64, "accuracy")
    info.update(figures)
    kd.record(benchmark, record_property, info)
