"""Timing worker processes: one model x backend per process, driven over a pipe.

Why a process per model. Each ONNX Runtime session owns an intra-op thread pool whose threads
spin after a run; two sessions in one process on a 2-core machine steal each other's core, and a
teacher timed next to its student measured the student 57% slower than on its own. torch's
OpenMP pool is process-wide, so in one process every model shares (and re-sizes) one pool. With
one session per process, the model being timed is the only busy thing in the harness; the other
workers sit blocked on their pipe, and the paired suite leaves a short settle gap between blocks
so that the previous model's pool has stopped spinning before the next block starts.

Why fresh processes, several of them. A process lands in one of several speed states (memory
placement, which core the pool threads sit on, allocator layout); four benches of one unchanged
pair gave paired speedups of 5.3x and 8.0x with tight within-run CIs. `harness bench --processes N`
repeats the timed suites in N fresh sets of workers and the CIs resample processes as well as the
samples within them (pyperf's reason for worker processes).

Start method: forkserver with numpy, torch and onnxruntime preloaded (a fresh worker costs tens of
milliseconds instead of an interpreter start plus imports); spawn where forkserver does not exist.
The children never inherit a thread pool: the fork server imports libraries but runs nothing.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.measure.timing import TimingConfig, TimingResult

_PRELOAD = ["numpy", "torch", "onnxruntime", "harness.backends.base", "harness.measure.timers"]
_CONTEXT = None


def process_context():
    """The start method for timing workers and other helper processes: forkserver with the heavy
    imports preloaded where the platform has it (a child does not import torch again), else spawn."""
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
        else:
            ctx = mp.get_context("spawn")
        _CONTEXT = ctx
    return _CONTEXT


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _serve(conn, backend: str, artifact, options) -> None:
    """The worker's loop: open one session, then answer requests until "close" or the pipe ends."""
    from harness.backends.base import get_backend
    from harness.measure.timers import LocalTimer

    def fail(exc: BaseException) -> None:
        # HarnessErrors travel as themselves (the driver re-raises the same class); anything else as one line
        conn.send(("error", exc if isinstance(exc, HarnessError) else HarnessError(_one_line(exc))))

    try:
        session = get_backend(backend).open(artifact, options)
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, which raises it
        fail(exc)
        return
    conn.send(("ok", {"pid": os.getpid()}))
    timer = LocalTimer(session)
    batches: dict[int, np.ndarray] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        op = msg[0]
        if op == "close":
            break
        try:
            if op == "batch":
                batches[msg[1]] = msg[2]
                result: Any = None
            elif op == "time":
                result = timer.time(batches[msg[1]], msg[2])
            elif op == "warm_up":
                result = timer.warm_up(batches[msg[1]], msg[2])
            elif op == "block":
                result = timer.block(batches[msg[1]], msg[2], msg[3])
            elif op == "overhead":
                result = timer.overhead()
            else:
                raise HarnessError(f"timing worker: unknown request {op!r}")
        except BaseException as exc:  # noqa: BLE001
            fail(exc)
            continue
        conn.send(("ok", result))
    session.close()
    conn.close()


class WorkerTimer:
    """A timer (see harness/measure/timers.py) whose calls run in a worker process of their own."""

    def __init__(self, backend: str, artifact, options, label: str):
        ctx = process_context()
        self.label = label
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, backend, artifact, options), daemon=True,
                                name=f"kd-harness timing {label}")
        self.proc.start()
        child.close()
        self._batches: dict[int, np.ndarray] = {}
        self._overhead: dict[str, Any] | None = None
        self._ready = False

    # -- plumbing -----------------------------------------------------------------------------
    def _died(self) -> HarnessError:
        self.proc.join(timeout=2)
        return HarnessError(f"timing worker for {self.label} died (exit code {self.proc.exitcode})")

    def _reply(self) -> Any:
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if status == "error":
            raise payload
        return payload

    def wait_ready(self) -> None:
        if not self._ready:
            self._reply()
            self._ready = True

    def _request(self, *msg) -> Any:
        self.wait_ready()
        try:
            self._conn.send(msg)
        except OSError:  # broken pipe: the worker is gone
            raise self._died() from None
        return self._reply()

    def _send_batch(self, batch: np.ndarray) -> int:
        bs = int(batch.shape[0])
        if self._batches.get(bs) is not batch:
            self._request("batch", bs, batch)
            self._batches[bs] = batch
        return bs

    # -- the timer interface ------------------------------------------------------------------
    def time(self, batch: np.ndarray, cfg: TimingConfig) -> TimingResult:
        return self._request("time", self._send_batch(batch), cfg)

    def warm_up(self, batch: np.ndarray, cfg: TimingConfig) -> list[int]:
        return self._request("warm_up", self._send_batch(batch), cfg)

    def block(self, batch: np.ndarray, k: int, warmup_calls: int = 0) -> np.ndarray:
        return self._request("block", self._send_batch(batch), int(k), int(warmup_calls))

    def overhead(self) -> dict[str, Any]:
        if self._overhead is None:
            self._overhead = self._request("overhead")
        return dict(self._overhead)

    def where(self) -> dict[str, Any]:
        return {"process": "worker", "pid": self.proc.pid}

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                self._conn.send(("close",))
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self._conn.close()


def start_workers(specs: list[tuple[str, Any, Any, str]]) -> list[WorkerTimer]:
    """Start one worker per (backend, artifact, options, label) and wait until every session is open.

    The sessions open in parallel (nothing is being timed yet); on any failure every worker is closed.
    """
    workers: list[WorkerTimer] = []
    try:
        for backend, artifact, options, label in specs:
            workers.append(WorkerTimer(backend, artifact, options, label))
        for w in workers:
            w.wait_ready()
    except BaseException:
        for w in workers:
            w.close()
        raise
    return workers
