"""Roofline: the peak is the fastest GEMM in the process, beside a theoretical peak (no timing thresholds)."""
from __future__ import annotations

import numpy as np
import pytest

from harness.errors import OptionError
from harness.measure import roofline


def test_theoretical_peak_formula():
    t = roofline.theoretical_peak(2, 512, 2600.0)
    # 2 cores x 16 lanes x 2 (FMA) x 2 FMA units x 2.6 GHz
    assert t["theoretical_peak_gflops"] == pytest.approx(2 * 16 * 2 * 2 * 2.6)
    assert t["fma_units_assumed"] == 2 and "(assumed)" in t["theoretical_peak_method"]
    assert roofline.theoretical_peak(1, 256, 3000.0)["theoretical_peak_gflops"] == pytest.approx(96.0)
    # threads beyond the cores available do not add peak
    assert roofline.theoretical_peak(8, 256, 3000.0, cores_available=2)["theoretical_cores"] == 2
    for bits, mhz in ((None, 3000.0), (512, None), (512, 0.0)):
        u = roofline.theoretical_peak(1, bits, mhz)
        assert u["theoretical_peak_gflops"] is None and u["theoretical_peak_method"].startswith("unknown")


def test_matmul_model_runs_in_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((8, 16), dtype=np.float32)
    b = rng.standard_normal((16, 4), dtype=np.float32)
    sess = ort.InferenceSession(roofline.matmul_model_bytes(b), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"A": a})
    np.testing.assert_allclose(y, a @ b, rtol=1e-4, atol=1e-4)


def test_measure_peak_reports_every_source_and_the_max():
    out = roofline.measure_peak_gflops(threads=1, n=64, max_runs=2, budget_s=0.3)
    by = out["peak_by_source"]
    assert set(by) == set(roofline.SOURCES)
    found = {k: v for k, v in by.items() if v is not None}
    assert found, out
    assert out["peak_gflops"] == max(found.values()) and by[out["peak_source"]] == out["peak_gflops"]
    for src in roofline.SOURCES:  # the older per-library keys stay
        assert out[f"{src}_gflops"] == by[src]
    assert "theoretical_peak_gflops" in out and out["theoretical_peak_method"]
    assert out["fma_units_assumed"] == 2 and out["threads"] == 1 and out["flops_per_run"] == 2 * 64 ** 3


def test_a_failing_source_does_not_sink_the_peak(monkeypatch):
    import contextlib

    @contextlib.contextmanager
    def broken(*args):
        raise RuntimeError("no such library")
        yield  # pragma: no cover

    monkeypatch.setitem(roofline.GEMMS, "torch", broken)
    out = roofline.measure_peak_gflops(threads=1, n=32, max_runs=1, budget_s=0.1, sources=("numpy", "torch"))
    assert out["torch_gflops"] is None and "no such library" in out["torch_error"]
    assert out["peak_source"] == "numpy" and out["peak_gflops"] == out["numpy_gflops"]


def test_bad_arguments():
    with pytest.raises(OptionError):
        roofline.measure_peak_gflops(threads=0)
    with pytest.raises(OptionError):
        roofline.measure_peak_gflops(n=8)
    with pytest.raises(OptionError):
        roofline.measure_peak_gflops(sources=("cublas",))
