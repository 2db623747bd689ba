"""OpenVINO as a backend (optional extra) and per-operator profiles: with and without the package."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import Tiny1d, Tiny3d  # noqa: E402

from harness.backends import Artifact, BackendOptions, get_backend  # noqa: E402
from harness.errors import MissingPackageError  # noqa: E402
from harness.export import export_onnx  # noqa: E402
from harness.profile import NodeTime, Profile, _ov_precision, explain, family, profile_model  # noqa: E402
from harness.profile_cli import explanations, models_of_run  # noqa: E402
from harness.results import Measurement  # noqa: E402

try:
    import openvino  # noqa: F401

    HAS_OPENVINO = True
except ImportError:
    HAS_OPENVINO = False

needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="needs the openvino extra (pip install -e '.[openvino]')")


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("ov")
    torch.manual_seed(0)
    one = root / "onnx" / "student_kd.onnx"
    one.parent.mkdir()
    export_onnx(Tiny1d().eval(), (2, 32), one)
    three = root / "tiny3d.onnx"
    export_onnx(Tiny3d().eval(), (1, 4, 8, 8), three)
    return root, one, three


def test_missing_openvino_is_one_line_and_the_other_backends_still_run(onnx_files, monkeypatch):
    from harness.bench import BenchConfig, bench_models
    from harness.bench_onnx import onnx_sources

    root, one, _ = onnx_files
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with pytest.raises(MissingPackageError, match=r"pip install -e '\.\[openvino\]'"):
        get_backend("openvino").open(Artifact("m", onnx=str(one)), BackendOptions())
    sources = onnx_sources({"teacher": one, "student": one}, (2, 32), None, "tiny")
    res = bench_models(sources, None, BenchConfig(backends=["onnxruntime", "openvino"], suites=["storage"]))
    assert any(w.startswith("openvino: not measured: the openvino backend needs the openvino package")
               for w in res.warnings)
    assert "openvino" not in res.config.get("backend_settings", {})
    from harness.errors import OptionError

    with pytest.raises(OptionError, match="no backend to measure on"):
        bench_models(sources, None, BenchConfig(backends=["openvino"], suites=["storage"]))


@needs_openvino
def test_openvino_matches_onnxruntime_and_records_its_settings(onnx_files):
    root, one, three = onnx_files
    for path, shape in ((one, (2, 32)), (three, (1, 4, 8, 8))):
        x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
        opts = BackendOptions(threads=1)
        ov_sess = get_backend("openvino").open(Artifact("m", onnx=str(path)), opts)
        ort_sess = get_backend("onnxruntime").open(Artifact("m", onnx=str(path)), opts)
        np.testing.assert_allclose(ov_sess.run(x), ort_sess.run(x), rtol=1e-4, atol=1e-5)
        ov_sess.run(x[:1])
        assert set(ov_sess.compile_s) == {3, 1}  # compiled once per batch size, when prepared
        assert ov_sess.settings["PERFORMANCE_HINT"] == "LATENCY" and ov_sess.settings["NUM_STREAMS"] == "1"
        assert ov_sess.settings["INFERENCE_NUM_THREADS"] == "1"
    settings = get_backend("openvino").settings(BackendOptions(threads=2))
    assert settings["INFERENCE_NUM_THREADS"] == "2" and "float32" in settings["INFERENCE_PRECISION_HINT"]
    assert settings["version"]


def test_onnxruntime_profile_adds_up_by_operator(onnx_files):
    _, one, _ = onnx_files
    p = profile_model("onnxruntime", one, "student_kd", (2, 32), batch_size=4, threads=1, runs=20)
    assert p.runs == 20 and p.nodes and all(n.ms >= 0 for n in p.nodes)
    ops = p.by_op()
    assert abs(sum(o["share"] for o in ops) - 1.0) < 1e-9
    assert any(family(o["op"]) == "conv" for o in ops) and {n.precision for n in p.nodes} <= {"fp32", "other"}
    assert p.profiled_ms > 0 and p.unprofiled_p50_ms > 0
    d = p.to_dict()
    assert d["qdq_share"] == 0 and d["by_op"][0]["op"] == ops[0]["op"]


@needs_openvino
def test_openvino_profile(onnx_files):
    _, _, three = onnx_files
    p = profile_model("openvino", three, "tiny3d", (1, 4, 8, 8), batch_size=1, threads=1, runs=10)
    assert p.nodes and p.node_ms > 0 and any(family(n.op) == "conv" for n in p.nodes)


def test_precision_and_explanations():
    assert _ov_precision("jit_avx2_I8") == "int8" and _ov_precision("jit_avx2_f32") == "fp32"
    assert _ov_precision("brgconv_avx512_amx_bf16") == "bf16"
    fp32 = Profile("student_kd", "onnxruntime", 1, 1, 100, [NodeTime("c", "FusedConv", "fp32", 0.1),
                                                          NodeTime("p", "MaxPool", "fp32", 0.02)], 0.13, 0.12)
    int8 = Profile("student_kd@int8", "onnxruntime", 1, 1, 100,
                   [NodeTime("c", "QLinearConv", "int8", 0.7), NodeTime("p", "NhwcMaxPool", "int8", 0.03),
                    NodeTime("q", "QuantizeLinear", "int8", 0.01)], 0.75, 0.73)
    line = explain(int8, fp32, "student_kd@int8 is 6.1x slower")
    assert line == ("student_kd@int8 is 6.1x slower: QLinearConv (int8) takes 95% of the time, 0.7 ms per run, "
                    "7.0x the FusedConv's 0.1 ms.")
    # conv kept in fp32 between Q/DQ pairs is named
    qdq = Profile("m@int8", "onnxruntime", 1, 1, 10, [NodeTime("q", "QuantizeLinear", "int8", 0.2),
                                                     NodeTime("d", "DequantizeLinear", "int8", 0.2),
                                                     NodeTime("c", "Conv", "fp32", 0.4)], 0.8, 0.8)
    assert "quantize/dequantize 50%; 1 of 1 conv nodes ran in fp32 between Quantize/Dequantize pairs" in \
        explain(qdq, fp32, "m@int8")
    lines = explanations([fp32, int8])
    assert len(lines) == 1 and lines[0].startswith("student_kd@int8 on onnxruntime is 6.1x slower than student_kd (fp32) in the profile pass")


def test_profile_cli_bad_input_is_one_line(onnx_files, tmp_path, capsys):
    from harness.cli import main

    root, _, _ = onnx_files
    assert models_of_run(root) == {"student_kd": root / "onnx" / "student_kd.onnx"}
    for argv in (["profile", str(tmp_path)], ["profile"], ["profile", str(root), "--model", "nope"],
                 ["profile", str(root), "--backends", "torch"]):
        code = main(argv)
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("[")]
        assert code == 2 and len(err) == 1 and err[0].startswith("harness: error:"), (argv, err)


def test_profile_measurements_give_the_reports_why_lines(onnx_files):
    """bench --profile stores `profile` measurements; the one-screen summary reads its why-lines from them."""
    from harness.bench import BenchConfig
    from harness.bench_onnx import onnx_sources
    from harness.profile_cli import profile_measurements, profiles_from_results
    from harness.report.summary import why_lines
    from harness.results import Results

    root, one, _ = onnx_files
    sources = onnx_sources({"student_kd": one}, (2, 32), None, "tiny")
    warnings: list[str] = []
    ms = profile_measurements(sources, ["onnxruntime", "torch"], BenchConfig(quick=True, threads=1), warnings)
    assert [(m.model, m.backend, m.suite) for m in ms] == [("student_kd", "onnxruntime", "profile")]  # torch: no profiler
    assert not warnings and ms[0].metrics.extra["by_op"] and ms[0].metrics.extra["unprofiled_p50_ms"] > 0
    res = Results(measurements=ms)
    (p,) = profiles_from_results(res, "tiny")
    assert p.node_ms > 0 and p.unprofiled_p50_ms == ms[0].metrics.extra["unprofiled_p50_ms"]
    slower = Measurement("tiny", "student_kd@int8", "onnxruntime", "profile", 1, 1, {
        "by_op": [{"op": "QLinearConv", "ms": 10 * p.node_ms, "precisions": "int8"}], "runs": 100,
        "unprofiled_p50_ms": 10 * p.unprofiled_p50_ms, "profiled_ms": 10 * p.node_ms})
    res.measurements.append(slower)
    (line,) = why_lines(res, "tiny")
    assert line.startswith("Why: student_kd@int8 on onnxruntime is 10.0x slower than student_kd (fp32)")
    assert "QLinearConv (int8) takes 100% of the time" in line


@needs_openvino
def test_openvino_gemm_is_a_peak_source():
    from harness.measure.roofline import measure_peak_gflops

    out = measure_peak_gflops(threads=1, n=64, max_runs=2, sources=("openvino",), int8=False)
    assert out["peak_source"] == "openvino" and out["openvino_gflops"] > 0


@needs_openvino
def test_a_model_openvino_cannot_compile_is_one_line_and_the_others_run(onnx_files, monkeypatch):
    import openvino as ov

    from harness.bench import BenchConfig, bench_models
    from harness.bench_onnx import onnx_sources

    _, one, _ = onnx_files

    compile_model = ov.Core.compile_model

    def refuse(self, model, *a, **k):  # the model files (they hold convolutions), not the settings probe
        if not any(op.get_type_name() == "Convolution" for op in model.get_ops()):
            return compile_model(self, model, *a, **k)
        raise RuntimeError("Exception from src/core: Unsupported operation FancyOp\nwith a traceback below")

    monkeypatch.setattr(ov.Core, "compile_model", refuse)
    sources = onnx_sources({"teacher": one, "student": one}, (2, 32), None, "tiny")
    res = bench_models(sources, None, BenchConfig(backends=["onnxruntime", "openvino"], suites=["storage", "latency"],
                                                   batch_sizes=[1], quick=True, processes=1, threads=1))
    (line,) = [w for w in res.warnings if w.startswith("openvino: not measured for tiny")]
    assert "Unsupported operation FancyOp" in line and "\n" not in line
    assert {m.backend for m in res.measurements if m.suite == "latency"} == {"onnxruntime"}
