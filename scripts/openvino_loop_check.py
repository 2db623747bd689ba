"""Check the harness's OpenVINO p50 against a plain loop over `compiled_model` with the same settings.

    python scripts/openvino_loop_check.py RESULTS.json RUN_DIR --task osuleaf --model teacher [--batch 1] [--runs 2000]

Reads the latency suite's p50 of (task, model, openvino, batch) from RESULTS.json, then compiles the
model's ONNX file (RUN_DIR/onnx/<model>.onnx) with the same configuration the backend uses
(harness/backends/openvino_backend.py `compile_config`, the results file's thread count), times
`infer_request.infer()` in a plain loop with `time.perf_counter_ns`, and prints both medians and their
ratio. Two loops in two fresh processes would be fairer to the VM's speed states; this is one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--task", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=2000)
    args = ap.parse_args(argv)
    doc = json.loads(args.results.read_text())
    (m,) = [m for m in doc["measurements"] if m["suite"] == "latency" and m["backend"] == "openvino"
            and m["task"] == args.task and m["model"] == args.model and m["batch_size"] == args.batch]
    threads = m["threads"]
    import openvino as ov

    from harness.backends.base import BackendOptions
    from harness.backends.openvino_backend import compile_config

    base, _, variant = args.model.partition("@")
    path = args.run_dir / "onnx" / (f"{base}.{variant}.onnx" if variant else f"{base}.onnx")
    core = ov.Core()
    model = core.read_model(str(path))
    shape = [args.batch, *[d.get_length() for d in list(model.inputs[0].get_partial_shape())[1:]]]
    model.reshape({model.inputs[0]: ov.PartialShape(shape)})
    compiled = core.compile_model(model, "CPU", compile_config(BackendOptions(threads=threads)))
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32)))
    for _ in range(200):
        request.infer()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter_ns()
        request.infer()
        times.append(time.perf_counter_ns() - t0)
    loop = float(np.median(times)) / 1e6
    harness = m["metrics"]["p50_ms"]
    print(f"{args.task}/{args.model} openvino batch {args.batch}, {threads} thread(s): harness latency p50 "
          f"{harness:.4f} ms, plain loop p50 {loop:.4f} ms, ratio {harness / loop:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
