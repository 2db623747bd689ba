"""The suites' run (`kd_run`) and helper (`kd`): the trained models under test, their sessions, and the
timing and recording helpers the files in suites/ use. Heavy imports happen inside the methods."""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_options import DEFAULT_EPOCHS, DEFAULT_SEEDS, DEFAULT_TASK, backends, latency_batch_sizes


def warm_up_calls(fn, *args, min_calls: int = 10, min_s: float = 0.05, max_s: float = 2.0) -> float:
    """Call fn(*args) outside timing until min_calls and min_s are reached (at most max_s); s/call."""
    from harness.measure.timing import TimingConfig, warm_up

    calls = warm_up(functools.partial(fn, *args),
                    TimingConfig(warmup_min_s=min_s, warmup_min_calls=min_calls, warmup_max_s=max_s))
    return sum(calls) / len(calls) / 1e9


# -- the suites' run -----------------------------------------------------------------------------
@dataclass
class SuiteRun:
    task: str
    run_dir: Path
    source: str  # --kd-run | KD_HARNESS_RUN | default
    summary: dict[str, Any]
    data: Any  # harness.tasks.base.Dataset
    sources: dict[str, Any]  # role -> harness.bench.ModelSource (ONNX exported, parity checked)
    threads: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> figures for extra_info

    def source_for(self, role: str):
        if role not in self.sources:
            pytest.skip(f"run {self.run_dir} has no {role} model")
        return self.sources[role]

    def options(self):
        from harness.backends.base import BackendOptions

        return BackendOptions(threads=self.threads)

    def batch(self, batch_size: int):
        import numpy as np

        pool = self.data.X_test
        idx = np.arange(batch_size) % len(pool)
        return np.ascontiguousarray(pool[idx], dtype=np.float32)

    def extra_info(self, role: str, backend: str, batch_size: int, suite: str) -> dict[str, Any]:
        return {"suite": suite, "task": self.task, "role": role, "backend": backend, "batch_size": batch_size,
                "threads": self.threads, **self.models.get(role, {}), "run": str(self.run_dir)}


def _default_train_config():
    from harness.train.trainer import TrainConfig

    return TrainConfig(epochs=DEFAULT_EPOCHS)


def _default_run_ok(run_dir: Path) -> bool:
    from harness.artifacts import run_is_complete

    return run_is_complete(run_dir, _default_train_config().to_dict(), DEFAULT_SEEDS, DEFAULT_TASK)


def _say(config, msg: str) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if tr is None:
        return

    def write():
        if getattr(getattr(tr, "_tw", None), "width_of_current_line", 0):
            tr.write("\n")  # after progress dots
        tr.write_line(f"[kd-suites] {msg}")

    if capman is not None:
        with capman.global_and_fixture_disabled():
            write()
    else:
        write()


def _train_default(config, run_dir: Path) -> None:
    from harness.tasks import get_task
    from harness.train.trio import train_trio

    _say(config, f"training the default suite run ({DEFAULT_TASK}, {DEFAULT_EPOCHS} epochs, seeds {DEFAULT_SEEDS}) "
                 f"into {run_dir}; later sessions reuse it")
    t0 = time.perf_counter()
    data = get_task(DEFAULT_TASK).load(0)
    train_trio(data, _default_train_config(), DEFAULT_SEEDS, run_dir,
               data_ref={"task": DEFAULT_TASK, "data_seed": 0})
    _say(config, f"trained in {time.perf_counter() - t0:.1f}s")


def _role_figures(summary: dict[str, Any], src) -> dict[str, Any]:
    from harness.measure.storage import storage_metrics

    entry = summary["models"].get(src.role, {})
    acc = entry.get("accuracy") or {}
    storage = storage_metrics(checkpoint=src.checkpoint, onnx=src.onnx, params=src.params, macs=src.macs)
    return {
        "accuracy": acc.get("mean"),
        "accuracy_ci95": acc.get("ci95"),
        "params": src.params,
        "macs": src.macs,
        "onnx_bytes": storage["onnx_bytes"],
        "checkpoint_bytes": storage["checkpoint_bytes"],
        "onnx_gzip_bytes": storage["onnx_gzip_bytes"],
        "checkpoint_gzip_bytes": storage["checkpoint_gzip_bytes"],
    }


class Suite:
    """What a suite test needs: the run, one open backend session per (role, backend) shared by every
    suite (closed at session end), and the timing/recording helpers. Fixture: `kd`."""

    def __init__(self, run: SuiteRun, config):
        self.run = run
        self.config = config
        self.batch_sizes = latency_batch_sizes(config)
        self.backends = backends(config)
        self._open: dict[tuple[str, str], Any] = {}
        self._accuracy: dict[tuple[str, str], dict[str, Any]] = {}

    def session(self, role: str, backend: str):
        key = (role, backend)
        if key not in self._open:
            from harness.backends.base import Artifact, get_backend

            src = self.run.source_for(role)
            art = Artifact(role=role, checkpoint=str(src.checkpoint) if src.checkpoint else None, onnx=str(src.onnx))
            self._open[key] = get_backend(backend).open(art, self.run.options())
        return self._open[key]

    def measured_accuracy(self, role: str, backend: str, refresh: bool = False) -> dict[str, Any]:
        """This session's accuracy on the run's test split (kept per role x backend; refresh recomputes)."""
        key = (role, backend)
        if refresh or key not in self._accuracy:
            import numpy as np

            from harness.measure.accuracy import predict

            X = np.asarray(self.run.data.X_test, dtype=np.float32)
            y = np.asarray(self.run.data.y_test).astype(np.int64).ravel()
            pred = predict(self.session(role, backend), X, 64)
            correct = int(np.sum(pred == y))
            self._accuracy[key] = {"measured_accuracy": correct / int(y.size), "correct": correct, "n": int(y.size)}
        return self._accuracy[key]

    def close(self) -> None:
        for s in self._open.values():
            s.close()
        self._open.clear()

    # -- timing helpers ------------------------------------------------------------------------
    @staticmethod
    def warm_up(fn, arg, min_calls: int = 10, min_s: float = 0.05, max_s: float = 2.0) -> float:
        """Call fn(arg) outside timing until min_calls and min_s are reached (at most max_s); s/call."""
        return warm_up_calls(fn, arg, min_calls=min_calls, min_s=min_s, max_s=max_s)

    def throughput_plan(self, per_call_s: float, round_s: float = 0.01) -> tuple[int, int]:
        """(iterations, rounds): back-to-back calls per round (>= round_s of work), rounds to fill
        --benchmark-max-time (default 1 s), at least --benchmark-min-rounds (default 5), at most 1000."""
        per_call_s = max(per_call_s, 1e-7)
        iterations = max(1, math.ceil(round_s / per_call_s))
        max_time = float(self.config.getoption("benchmark_max_time", 1.0) or 1.0)
        min_rounds = int(self.config.getoption("benchmark_min_rounds", 5) or 5)
        rounds = max(min_rounds, min(1000, math.ceil(max_time / (iterations * per_call_s))))
        return iterations, rounds

    @staticmethod
    def median_s(benchmark) -> float | None:
        """The benchmark's median seconds per call (None under --benchmark-disable)."""
        med = getattr(getattr(getattr(benchmark, "stats", None), "stats", None), "median", None)
        return float(med) if med else None

    @staticmethod
    def record(benchmark, record_property, info: dict[str, Any]) -> None:
        """Figures into the benchmark's extra_info (--benchmark-json/-save) and junit properties."""
        benchmark.extra_info.update(info)
        for k, v in info.items():
            record_property(k, v)
