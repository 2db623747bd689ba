"""`kd_session`'s objects: a project's own ONNX files open on the harness's ONNX Runtime backend, ready
for pytest-benchmark. Heavy imports happen when a file is opened, never at import."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.pytest_options import threads
from harness.pytest_suites import warm_up_calls


class OnnxModel:
    """One ONNX file open on the harness's ONNX Runtime backend, ready to time.

    `bind(batch)` converts the batch to ONNX Runtime's feed and warms the session up, both outside
    timing, and returns a zero-argument callable that runs only the inference: pass it to
    pytest-benchmark's `benchmark`. `session` is the harness backend session (`run`, `prepare`,
    `run_prepared`) for anything else."""

    def __init__(self, path: Path, role: str, session, options):
        self.path = path
        self.role = role
        self.session = session
        self.options = options  # harness.backends.base.BackendOptions

    @property
    def threads(self) -> int:
        return self.options.threads

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The model's input shape with the batch axis; None where the model leaves a size open."""
        return self.session.full_input_shape

    def example_batch(self, batch_size: int = 1, shape: tuple[int, ...] | None = None, seed: int = 0):
        """Standard-normal float32 input of `batch_size` samples. `shape` (without the batch axis) is
        needed only where the model leaves a non-batch size open."""
        import numpy as np

        sample = tuple(shape) if shape is not None else self.input_shape[1:]
        if any(d is None for d in sample):
            raise ValueError(f"{self.path.name}: input shape {self.input_shape} has open sizes besides the "
                             f"batch axis; pass shape=(...) without the batch axis")
        return np.random.default_rng(seed).standard_normal((batch_size, *sample), dtype=np.float32)

    def bind(self, batch, warm_up: bool = True) -> Callable[[], Any]:
        prepared = self.session.prepare(batch)
        # partial, not a lambda or a method: the timed call adds no Python frame around ORT's run
        call = functools.partial(self.session.run_prepared, prepared)
        if warm_up:
            warm_up_calls(call)
        return call

    def run(self, batch):
        """Logits for `batch` as numpy (outside timing: checking outputs, comparing models)."""
        return self.session.run(batch)

    def extra_info(self, batch, suite: str = "latency", **more: Any) -> dict[str, Any]:
        """What `harness report` reads from a benchmark's extra_info (role, backend, batch size, threads,
        file size), plus `more` (e.g. task=..., accuracy=...)."""
        batch_size = batch if isinstance(batch, int) else int(batch.shape[0])
        return {"suite": suite, "role": self.role, "backend": "onnxruntime", "batch_size": batch_size,
                "threads": self.threads, "onnx": str(self.path), "onnx_bytes": self.path.stat().st_size, **more}

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, role={self.role!r}, threads={self.threads})"


class OnnxSessionCache:
    """ORT sessions shared by every test of a pytest session: one per (file, options), reopened when
    the file changes on disk; closed at session end."""

    def __init__(self, config):
        self.config = config
        self._open: dict[tuple, OnnxModel] = {}

    def open(self, path: str | os.PathLike, role: str | None = None, **options: Any) -> OnnxModel:
        from harness.backends.base import Artifact, BackendOptions
        # the ONNX Runtime backend module directly: get_backend() would also import the torch backend
        from harness.backends.onnxruntime_backend import OnnxRuntimeBackend
        from harness.errors import HarnessError

        path = Path(path)
        if not path.is_absolute():
            path = Path(self.config.rootpath) / path
        path = path.resolve()
        unknown = sorted(set(options) - set(BackendOptions.__dataclass_fields__))
        if unknown:
            raise TypeError(f"kd_session: unknown option {', '.join(unknown)}; "
                            f"known: {', '.join(BackendOptions.__dataclass_fields__)}")
        if options.get("threads") is None:
            options["threads"] = threads(self.config)
        backend_options = BackendOptions(**options)
        role = role or path.stem
        stat = path.stat() if path.is_file() else None
        key = (str(path), stat and (stat.st_mtime_ns, stat.st_size), role, tuple(sorted(backend_options.key().items())))
        if key not in self._open:
            try:
                session = OnnxRuntimeBackend().open(Artifact(role=role, onnx=str(path)), backend_options)
            except HarnessError as exc:
                pytest.fail(f"kd_session: {exc}", pytrace=False)
            self._open[key] = OnnxModel(path, role, session, backend_options)
        return self._open[key]

    def close(self) -> None:
        for model in self._open.values():
            model.session.close()
        self._open.clear()
