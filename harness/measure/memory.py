"""Memory and cold-start suites, measured in an isolated child process per model x backend.

Each measurement starts a fresh interpreter (`python -m harness.measure._memory_child`) so the
parent's own memory (other models, datasets, earlier sessions) does not pollute the figures. The
child imports the backend's libraries first - their import cost is NOT counted - then records
baseline RSS, opens the session (load_s), runs a first inference (first_inference_ms) and `runs`
more, and reports peak RSS. See harness/measure/_memory_child.py for how the peak is taken.

Metrics, suite "memory" (median over `repeats` children):
    rss_baseline_mb      RSS after imports, before loading the model
    rss_after_load_mb    RSS after the session is open
    load_increase_mb     rss_after_load_mb - rss_baseline_mb
    peak_rss_mb          high-water RSS while loading and running
    peak_rss_increase_mb peak_rss_mb - rss_baseline_mb: what the model costs on top of the runtime
    rss_steady_mb        RSS after the inference runs (arena growth shows here)
Suite "cold_start": load_s and first_inference_ms (medians, with _min/_max), samples_ns = the
first-inference time of each child. torch-compile adds compile_s (median): compiling for the batch's
shape, which happens between the two (in `prepare`), so its time to a first answer is
load_s + compile_s + first_inference_ms.

Input: the real batch from `inputs[batch_size]`, written to a temp .npy the child loads; a
MemorySpec with no inputs uses a seeded random batch of its `batch_shape`.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.backends.base import Artifact, BackendOptions
from harness.errors import HarnessError, OptionError
from harness.measure.registry import SuiteContext
from harness.options import check_int, check_number
from harness.results import Measurement

_MARK = "KDH-RESULT "
_MEMORY_KEYS = (
    "rss_baseline_mb",
    "rss_after_load_mb",
    "load_increase_mb",
    "peak_rss_mb",
    "peak_rss_increase_mb",
    "rss_steady_mb",
)


@dataclass(frozen=True)
class MemoryConfig:
    batch_sizes: Sequence[int] | None = None  # None: 1 if in inputs, else the smallest given
    runs: int = 10  # inferences after the first, to catch arena growth
    repeats: int = 3  # fresh children per model x backend x batch; medians are reported
    timeout_s: float = 300.0
    suites: Sequence[str] = ("memory", "cold_start")
    sample_interval_s: float = 0.001
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.repeats, "memory suite repeats")
        check_int(self.runs, "memory suite runs", minimum=0)
        check_number(self.timeout_s, "memory suite timeout_s", minimum=0, exclusive=True)
        check_number(self.sample_interval_s, "memory suite sample_interval_s", minimum=0, exclusive=True)
        unknown = set(self.suites) - {"memory", "cold_start"}
        if unknown:
            raise OptionError(f"memory suite cannot produce {sorted(unknown)}; choose memory and/or cold_start")


@dataclass
class MemorySpec:
    """What to measure without an open session: an artifact, a backend and its options."""

    task: str
    role: str
    backend: str
    artifact: Artifact
    options: BackendOptions = field(default_factory=BackendOptions)
    batch_shape: tuple[int, ...] | None = None  # with batch axis; used when `inputs` lacks the batch


def child_spec(
    backend: str,
    artifact: Artifact,
    options: BackendOptions,
    *,
    batch_shape: Sequence[int] | None = None,
    input_npy: str | None = None,
    runs: int = 10,
    seed: int = 0,
    sample_interval_s: float = 0.001,
) -> dict[str, Any]:
    if batch_shape is None and input_npy is None:
        raise OptionError("memory measurement needs a batch shape or an input file")
    return {
        "backend": backend,
        "artifact": asdict(artifact),
        "options": asdict(options),
        "batch_shape": list(batch_shape) if batch_shape is not None else None,
        "input_npy": input_npy,
        "runs": int(runs),
        "seed": int(seed),
        "sample_interval_s": float(sample_interval_s),
    }


def run_child(spec: dict[str, Any], timeout_s: float = 300.0) -> dict[str, Any]:
    """Run one child; returns its metrics or raises HarnessError with the child's one-line error."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    what = f"{spec['artifact'].get('role')}/{spec['backend']}"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "harness.measure._memory_child"],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(f"memory child for {what} timed out after {timeout_s:g}s") from None
    except OSError as exc:
        raise HarnessError(f"cannot start memory child for {what}: {exc.strerror or exc}") from None
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(_MARK)), None)
    if line is None:
        tail = next((ln.strip() for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no output")
        raise HarnessError(f"memory child for {what} died (exit {proc.returncode}): {tail[:200]}")
    result = json.loads(line[len(_MARK) :])
    if not result.get("ok"):
        raise HarnessError(f"memory child for {what} failed: {result.get('error')}")
    return result["metrics"]


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _target(item) -> tuple[str, str, str, Artifact, BackendOptions, tuple[int, ...] | None]:
    if isinstance(item, MemorySpec):
        return item.task, item.role, item.backend, item.artifact, item.options, item.batch_shape
    artifact = getattr(item.session, "artifact", None)
    if artifact is None:
        ckpt, onnx = item.extra.get("checkpoint"), item.extra.get("onnx")
        if not (ckpt or onnx):
            raise HarnessError(
                f"memory suite needs a model file for {item.role}/{item.backend}; this session was built in memory"
            )
        artifact = Artifact(role=item.role, checkpoint=ckpt, onnx=onnx)
    return item.task, item.role, item.backend, artifact, item.options, None


def measure(handles_or_specs, inputs: dict[int, np.ndarray] | None, config: MemoryConfig | None = None) -> list[Measurement]:
    """Suite contract: SessionHandles (their sessions' artifacts are re-opened in children) or
    MemorySpecs in, "memory" and "cold_start" Measurements out."""
    config = config or MemoryConfig()
    inputs = inputs or {}

    out: list[Measurement] = []
    seen: set[tuple] = set()
    with tempfile.TemporaryDirectory(prefix="kdh-memory-") as tmp:
        npy: dict[int, str] = {}
        for item in handles_or_specs:
            task, role, backend, artifact, options, shape = _target(item)
            if config.batch_sizes:
                sizes = list(config.batch_sizes)
            elif inputs:
                sizes = [1] if 1 in inputs else [min(inputs)]
            else:
                sizes = [shape[0]] if shape else [1]
            for b in sizes:
                key = (task, role, backend, tuple(sorted(options.key().items())), b)
                if key in seen:
                    continue
                seen.add(key)
                input_npy = None
                batch_shape = None
                if b in inputs:
                    if b not in npy:
                        npy[b] = os.path.join(tmp, f"batch{b}.npy")
                        np.save(npy[b], np.ascontiguousarray(inputs[b], dtype=np.float32))
                    input_npy = npy[b]
                elif shape:
                    batch_shape = (b, *shape[1:])
                else:
                    raise OptionError(f"memory suite has no input batch of size {b} for {role}/{backend}")
                spec = child_spec(
                    backend,
                    artifact,
                    options,
                    batch_shape=batch_shape,
                    input_npy=input_npy,
                    runs=config.runs,
                    seed=config.seed,
                    sample_interval_s=config.sample_interval_s,
                )
                runs = [run_child(spec, config.timeout_s) for _ in range(config.repeats)]
                out.extend(_measurements(task, role, backend, options, b, runs, config))
    return out


def _measurements(task, role, backend, options, batch_size, runs, config) -> list[Measurement]:
    result = []
    common = dict(task=task, model=role, backend=backend, batch_size=batch_size, threads=options.threads, options=options.key())
    notes = []
    if any(r.get("peak_source") == "sampled" for r in runs):
        notes.append("peak RSS from ~1 ms sampling only (could not reset the kernel's high-water mark)")
    if "memory" in config.suites:
        metrics: dict[str, Any] = {k: _median([r[k] for r in runs]) for k in _MEMORY_KEYS}
        metrics.update(arena=bool(options.arena), repeats=len(runs), runs=config.runs)
        result.append(Measurement(suite="memory", metrics=metrics, warnings=list(notes), **common))
    if "cold_start" in config.suites:
        loads = [r["load_s"] for r in runs]
        firsts = [r["first_inference_ms"] for r in runs]
        metrics = {
            "load_s": _median(loads),
            "load_s_min": min(loads),
            "load_s_max": max(loads),
            "first_inference_ms": _median(firsts),
            "first_inference_ms_min": min(firsts),
            "first_inference_ms_max": max(firsts),
            "repeats": len(runs),
        }
        compiles = [r["compile_s"] for r in runs if r.get("compile_s") is not None]
        if compiles:  # torch-compile: compiling for the batch's shape, between load and first inference
            metrics["compile_s"] = _median(compiles)
        result.append(
            Measurement(
                suite="cold_start",
                metrics=metrics,
                samples_ns=[int(r["first_inference_ns"]) for r in runs],
                **common,
            )
        )
    return result


def measure_sources(
    sources,
    backends: Sequence[str],
    options: BackendOptions,
    *,
    batch_size: int = 1,
    suites: Sequence[str] = ("memory", "cold_start"),
    repeats: int = 3,
    runs: int = 10,
    timeout_s: float = 300.0,
    inputs: dict[int, np.ndarray] | None = None,
) -> list[Measurement]:
    """Memory / cold start for model sources (anything with task, role, onnx, checkpoint, input_shape)
    on each backend, without opening sessions in this process. Backends that need a checkpoint are
    skipped for a source without one. Without `inputs`, each child uses a seeded random batch."""
    specs = []
    for src in sources:
        for b in backends:
            if not SuiteContext.runs_on(src, b):  # a model without a checkpoint runs on onnxruntime only
                continue
            onnx = getattr(src, "onnx", None)
            ckpt = getattr(src, "checkpoint", None)
            artifact = Artifact(role=src.role, checkpoint=str(ckpt) if ckpt else None, onnx=str(onnx) if onnx else None)
            specs.append(
                MemorySpec(src.task, src.role, b, artifact, options, batch_shape=(batch_size, *src.input_shape))
            )
    config = MemoryConfig(batch_sizes=[batch_size], runs=runs, repeats=repeats, timeout_s=timeout_s, suites=tuple(suites))
    return measure(specs, inputs, config)
