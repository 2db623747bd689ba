"""Child process of the memory / cold-start suites: one model x backend in a fresh interpreter.

Reads a JSON spec on stdin (see harness.measure.memory.child_spec), prints one line
`KDH-RESULT {"ok": true, "metrics": {...}}` (or `{"ok": false, "error": "..."}`) on stdout.

Order: import the backend's libraries (their import cost is not counted) -> load the input batch
-> reset the kernel's peak-RSS mark (/proc/self/clear_refs "5", where allowed) -> baseline RSS ->
open the session (load_s) -> RSS after load -> prepare the batch (torch-compile compiles here:
compile_s) -> first inference (first_inference_ms) -> `runs` more inferences -> peak RSS.

Peak RSS: max of the kernel's high-water mark and a psutil sampling thread (every ~1 ms). The
high-water mark is VmHWM from /proc/self/status, NOT getrusage().ru_maxrss: ru_maxrss of a
freshly spawned child also holds the PARENT's RSS at fork time (the kernel folds the forked memory
map's peak into it at exec), so a child of a 300 MB parent reports >= 300 MB whatever it does.
VmHWM covers only this process's own memory map. When the mark could be reset after the imports
(/proc/self/clear_refs), it covers only the measured part; when it could not, it still counts if it
rose after the baseline (a new high must have happened then); otherwise only the sampled peak is
used. Off Linux, ru_maxrss stands in for VmHWM with the same rule.
"""
from __future__ import annotations

import json
import sys

MARK = "KDH-RESULT "


def _rss_mb(proc) -> float:
    return proc.memory_info().rss / 2**20


def _hwm_mb() -> float | None:
    """The kernel's high-water RSS of this process's memory map (VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _maxrss_mb() -> float:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024.0  # macOS: bytes, Linux: KiB


def _high_water_mb() -> float:
    hwm = _hwm_mb()
    return hwm if hwm is not None else _maxrss_mb()


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class _Sampler:
    def __init__(self, proc, interval: float):
        import threading

        self.proc = proc
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def start(self) -> "_Sampler":
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        return self.peak / 2**20


def run(spec: dict) -> dict:
    import gc
    import time

    import numpy as np
    import psutil

    from harness.backends.base import Artifact, BackendOptions

    backend_name = spec["backend"]
    if backend_name == "torch":
        import torch  # noqa: F401  (import cost not counted)

        import harness.artifacts  # noqa: F401
        import kd_models  # noqa: F401
        from harness.backends.torch_backend import TorchBackend

        backend = TorchBackend()
    elif backend_name == "torch-compile":
        import torch._dynamo  # noqa: F401  (import cost not counted; compiling is)
        import torch._inductor.compile_fx  # noqa: F401

        import harness.artifacts  # noqa: F401
        import kd_models  # noqa: F401
        from harness.backends.torch_compile_backend import TorchCompileBackend

        backend = TorchCompileBackend()
    elif backend_name == "onnxruntime":
        import onnxruntime  # noqa: F401

        from harness.backends.onnxruntime_backend import OnnxRuntimeBackend
        from harness.onnx_tools import validate_onnx

        validate_onnx(spec["artifact"]["onnx"])  # the parent validated too; keep its cost out of the figures
        backend = OnnxRuntimeBackend(validate=False)
    elif backend_name == "openvino":
        import openvino  # noqa: F401  (import cost not counted; reading and compiling the model are)

        from harness.backends.openvino_backend import OpenVinoBackend

        backend = OpenVinoBackend()
    else:
        from harness.errors import OptionError

        raise OptionError(f"unknown backend {backend_name!r}")

    artifact = Artifact(**spec["artifact"])
    options = BackendOptions(**spec["options"])
    if spec.get("input_npy"):
        batch = np.load(spec["input_npy"], allow_pickle=False).astype(np.float32, copy=False)
    else:
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        batch = rng.standard_normal(tuple(spec["batch_shape"]), dtype=np.float32)
    runs = int(spec.get("runs", 10))

    proc = psutil.Process()
    gc.collect()
    reset = _reset_peak()
    hw_at_base = _high_water_mb()
    sampler = _Sampler(proc, float(spec.get("sample_interval_s", 0.001))).start()
    baseline = _rss_mb(proc)

    t0 = time.perf_counter()
    session = backend.open(artifact, options)
    load_s = time.perf_counter() - t0
    after_load = _rss_mb(proc)

    prepared = session.prepare(batch)  # torch-compile compiles here, for this batch's shape (compile_s)
    compile_s = getattr(session, "compile_s", {}).get(int(batch.shape[0]))
    t0 = time.perf_counter_ns()
    out = session.run_prepared(prepared)
    first_ns = time.perf_counter_ns() - t0
    logits = session.to_numpy(out)
    for _ in range(runs):
        session.run_prepared(prepared)
    steady = _rss_mb(proc)
    sampled_peak = sampler.stop()
    hw = _high_water_mb()
    if reset or hw > hw_at_base:
        peak = max(hw, sampled_peak)
    else:
        peak = sampled_peak
    session.close()
    return {
        "rss_baseline_mb": baseline,
        "rss_after_load_mb": after_load,
        "rss_steady_mb": steady,
        "peak_rss_mb": peak,
        "peak_rss_increase_mb": max(0.0, peak - baseline),
        "load_increase_mb": after_load - baseline,
        "load_s": load_s,
        "first_inference_ms": first_ns / 1e6,
        "first_inference_ns": first_ns,
        "compile_s": compile_s,
        "runs": runs,
        "batch_shape": list(batch.shape),
        "output_shape": list(logits.shape),
        "output_finite": bool(np.isfinite(logits).all()),
        "peak_source": "hwm_reset" if reset else ("hwm" if hw > hw_at_base else "sampled"),
        "arena": bool(options.arena),
        "threads": int(options.threads),
    }


def main() -> int:
    try:
        spec = json.loads(sys.stdin.read())
        result = {"ok": True, "metrics": run(spec)}
    except Exception as exc:  # every failure becomes one line for the parent
        from harness.errors import HarnessError

        text = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        msg = text if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {text}"
        result = {"ok": False, "error": msg[:300]}
    sys.stdout.write("\n" + MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
