"""Where a model's time goes, operator by operator: `harness profile`.

A speedup, or an int8 model slower than its fp32 one, is a number without a reason until a profile shows
which operators take the time. Each model is profiled on ONNX Runtime (its built-in profiler: one event per
node and run) and on OpenVINO (its performance counters, `PERF_COUNT`), in a pass of its own, never inside
the timed suites: profiling adds overhead, so each profile states its profiled time per run beside an
unprofiled plain-loop p50 of the same model, backend, batch and threads.

Per node: operator type, execution precision (int8 when an ONNX Runtime node reads (u)int8 inputs, or from
OpenVINO's kernel name, e.g. `jit_avx2_I8`) and time per run. Per model: time by operator type with its
share, the share spent quantising and dequantising (QuantizeLinear, DequantizeLinear, FakeQuantize) and in
layout conversions (Reorder, ReorderInput/ReorderOutput, Transpose). `explain` turns two profiles (a
variant and its fp32 model, or one model on two runtimes) into one line naming the operator that makes
the difference.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import OptionError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear", "FakeQuantize", "DynamicQuantizeLinear")
LAYOUT_OPS = ("Reorder", "ReorderInput", "ReorderOutput", "Transpose")


@dataclass
class NodeTime:
    name: str
    op: str
    precision: str  # fp32 | int8 | bf16 | other
    ms: float  # per run


@dataclass
class Profile:
    role: str
    backend: str
    batch: int
    threads: int
    runs: int
    nodes: list[NodeTime] = field(default_factory=list)
    profiled_ms: float | None = None  # the runtime's own time per run while profiling
    unprofiled_p50_ms: float | None = None  # a plain loop over the same model without profiling

    @property
    def node_ms(self) -> float:
        return sum(n.ms for n in self.nodes)

    def by_op(self) -> list[dict[str, Any]]:
        ops: dict[str, dict[str, Any]] = {}
        for n in self.nodes:
            o = ops.setdefault(n.op, {"op": n.op, "nodes": 0, "ms": 0.0, "precisions": set()})
            o["nodes"] += 1
            o["ms"] += n.ms
            o["precisions"].add(n.precision)
        total = self.node_ms or 1.0
        out = sorted(ops.values(), key=lambda o: -o["ms"])
        for o in out:
            o["share"] = o["ms"] / total
            o["precisions"] = "/".join(sorted(o["precisions"]))
        return out

    def share(self, ops: tuple[str, ...]) -> float:
        total = self.node_ms
        return sum(n.ms for n in self.nodes if n.op in ops) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(node_ms=self.node_ms, by_op=self.by_op(), qdq_share=self.share(QDQ_OPS),
                 layout_share=self.share(LAYOUT_OPS))
        return d


def _ort_precision(args: dict[str, Any]) -> str:
    types = {k for item in args.get("input_type_shape") or [] for k in item}
    if types & {"int8", "uint8"}:
        return "int8"
    if "float" in types:
        return "fp32"
    return "other"


def profile_onnxruntime(path: str | Path, role: str, batch: np.ndarray, threads: int, runs: int,
                        warmup: int = 10) -> Profile:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="kdh-profile-") as tmp:
        so.profile_file_prefix = os.path.join(tmp, "ort")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: batch}
        for _ in range(warmup + runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    model_runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                        key=lambda e: e["ts"])
    kept = model_runs[warmup:]
    start = kept[0]["ts"] if kept else 0
    totals: dict[str, NodeTime] = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
            continue
        args = e.get("args") or {}
        name = e["name"][:-len("_kernel_time")]
        t = totals.setdefault(name, NodeTime(name, str(args.get("op_name", "?")), _ort_precision(args), 0.0))
        t.ms += e["dur"] / 1000.0
    n = max(len(kept), 1)
    for t in totals.values():
        t.ms /= n
    profiled = float(np.mean([e["dur"] for e in kept])) / 1000.0 if kept else None
    return Profile(role, "onnxruntime", int(batch.shape[0]), threads, len(kept), list(totals.values()), profiled)


def _ov_precision(exec_type: str) -> str:
    t = exec_type.lower()
    if t.endswith(("_i8", "_u8")) or "i8" in t.rsplit("_", 1)[-1]:
        return "int8"
    if t.endswith(("_f32", "_fp32")):
        return "fp32"
    if "bf16" in t:
        return "bf16"
    return "other"


def profile_openvino(path: str | Path, role: str, batch: np.ndarray, threads: int, runs: int,
                     warmup: int = 10) -> Profile:
    from harness.backends.openvino_backend import _openvino, compile_config
    from harness.backends.base import BackendOptions

    ov = _openvino()
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0]: ov.PartialShape(list(batch.shape))})
    compiled = core.compile_model(model, "CPU", {**compile_config(BackendOptions(threads=threads)), "PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(batch))
    for _ in range(warmup):
        request.infer()
    totals: dict[str, NodeTime] = {}
    wall = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        request.infer()
        wall += time.perf_counter() - t0
        for p in request.profiling_info:  # the counters of the last inference
            if p.status != p.Status.EXECUTED:
                continue
            t = totals.setdefault(p.node_name, NodeTime(p.node_name, p.node_type, _ov_precision(p.exec_type), 0.0))
            t.ms += p.real_time.total_seconds() * 1000.0
    for t in totals.values():
        t.ms /= runs
    return Profile(role, "openvino", int(batch.shape[0]), threads, runs, list(totals.values()), 1000.0 * wall / runs)


def unprofiled_p50(backend: str, path: str | Path, role: str, batch: np.ndarray, threads: int, runs: int) -> float:
    """A plain loop (no profiler) over the harness's own session of the model: median ms per call."""
    from harness.backends.base import Artifact, BackendOptions, get_backend

    session = get_backend(backend).open(Artifact(role, onnx=str(path)), BackendOptions(threads=threads))
    try:
        prepared = session.prepare(batch)
        for _ in range(10):
            session.run_prepared(prepared)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            session.run_prepared(prepared)
            times.append(time.perf_counter_ns() - t0)
    finally:
        session.close()
    return float(np.median(times)) / 1e6


PROFILERS = {"onnxruntime": profile_onnxruntime, "openvino": profile_openvino}


def profile_model(backend: str, path: str | Path, role: str, input_shape: tuple[int, ...], batch_size: int = 1,
                  threads: int = 1, runs: int = 300) -> Profile:
    if backend not in PROFILERS:
        raise OptionError(f"no profiler for backend {backend!r}; profiled backends: {', '.join(PROFILERS)}")
    batch = np.random.default_rng(0).standard_normal((batch_size, *input_shape)).astype(np.float32)
    prof = PROFILERS[backend](path, role, batch, threads, runs)
    prof.unprofiled_p50_ms = unprofiled_p50(backend, path, role, batch, threads, runs)
    return prof


def family(op: str) -> str:
    """An operator type across runtimes and precisions: QLinearConv, FusedConv and Convolution are all conv."""
    o = op.lower()
    if "conv" in o:
        return "conv"
    if any(k in o for k in ("matmul", "gemm", "fullyconnected")):
        return "matmul"
    if op in QDQ_OPS or "quantize" in o:
        return "quantize/dequantize"
    if op in LAYOUT_OPS or "reorder" in o:
        return "layout"
    return o


def _by_family(p: Profile) -> dict[str, tuple[float, list[str]]]:
    out: dict[str, list] = defaultdict(lambda: [0.0, []])
    for n in p.nodes:
        f = out[family(n.op)]
        f[0] += n.ms
        if n.op not in f[1]:
            f[1].append(n.op)
    return {k: (v[0], v[1]) for k, v in out.items()}


def explain(slow: Profile, fast: Profile, what: str) -> str:
    """One line: why `slow` takes longer than `fast` (`what` names the comparison), from their profiles.
    When no operator family explains at least a quarter of the slow model's node time, the gap is said to
    lie outside the operators (per-call overhead, compiled-graph dispatch), with the node totals."""
    a, b = _by_family(slow), _by_family(fast)
    fam = max(a, key=lambda k: a[k][0] - b.get(k, (0.0, []))[0])
    ms, ops = a[fam]
    if slow.node_ms and ms / slow.node_ms < 0.25:
        return (f"{what}: no operator stands out (node times {slow.node_ms:.3g} vs {fast.node_ms:.3g} ms per run): "
                "the difference is per-call overhead outside the operators.")
    base_ms, base_ops = b.get(fam, (0.0, []))
    share = ms / slow.node_ms if slow.node_ms else 0.0
    ratio = f", {ms / base_ms:.1f}x the {'/'.join(base_ops)}'s {base_ms:.3g} ms" if base_ms > 0 else ", absent there"
    prec = sorted({n.precision for n in slow.nodes if family(n.op) == fam})
    line = (f"{what}: {'/'.join(ops)} ({'/'.join(prec)}) takes {100 * share:.0f}% of the time, {ms:.3g} ms per run"
            f"{ratio}")
    qdq = slow.share(QDQ_OPS)
    if qdq >= 0.1:
        line += f"; quantize/dequantize {100 * qdq:.0f}%"
    fp32_between = [n for n in slow.nodes if family(n.op) == "conv" and n.precision == "fp32"]
    if qdq > 0 and fp32_between:
        n_conv = sum(family(n.op) == "conv" for n in slow.nodes)
        line += f"; {len(fp32_between)} of {n_conv} conv nodes ran in fp32 between Quantize/Dequantize pairs"
    return line + "."
