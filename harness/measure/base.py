"""What every suite receives: opened sessions with their key, and prepared inputs.

Suite contract: `measure(handles, inputs, config) -> list[Measurement]` where
- `handles` is a list of SessionHandle (one per model x backend x options),
- `inputs` maps batch size -> numpy batch (float32, already shaped for the model),
- `config` is the suite's own dataclass (e.g. LatencyConfig).
Timed suites call `handle.timer` (in this process, or a worker process of the handle's own), never
the session directly, so the same suite code runs in-process (tests, pytest-benchmark) and in
`harness bench`'s worker processes.
Suites know how to measure; they know nothing about files or reports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.backends.base import BackendOptions, Session


def wrap_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """`n` samples made of `rows` repeated, wrapping (a batch of exactly n from fewer rows): the timing
    inputs of a batch size, and the padding of a short last chunk for a model with a fixed batch axis."""
    return np.ascontiguousarray(np.take(rows, np.arange(n) % rows.shape[0], axis=0))


@dataclass
class SessionHandle:
    task: str
    role: str  # teacher | student_scratch | student_kd (or a user's label for --onnx pairs)
    backend: str  # torch | onnxruntime
    options: BackendOptions
    session: Session | None
    macs: int | None = None  # per sample, for achieved GFLOP/s
    extra: dict[str, Any] = field(default_factory=dict)
    timer: Any = None  # where timed calls run (harness/measure/timers.py); default: this process
    # Timed runs this handle already made, by batch size: (TimingConfig, TimingResult) from the latency
    # suite. The throughput suite times the same hot loop, so at a batch size timed here with windows at
    # least as long as its own it reads these calls instead of running the loop again.
    timed_runs: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timer is None:
            if self.session is None:
                raise ValueError("a SessionHandle needs a session or a timer")
            from harness.measure.timers import LocalTimer

            self.timer = LocalTimer(self.session)
