"""What every executor shares: a training `Job` and its content key, the `ResultStore` a rerun resumes
from, `run_job` (a job's body, wherever it runs), `ExecutorConfig`, and the `Executor` base class with
`LocalExecutor` (jobs one after another in this process).

Import these from `harness.executor`, whose docstring gives the rules they follow.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from harness.errors import HarnessError, OptionError
from harness.options import check_choice, check_int

log = logging.getLogger(__name__)

EXECUTORS = ("local", "pool", "ray")


class JobsFailed(HarnessError):
    """Some jobs failed for good; the others finished and were stored."""

    def __init__(self, failed: dict[str, str]):
        self.failed = failed
        names = "; ".join(f"{name} ({why})" for name, why in failed.items())
        super().__init__(f"{len(failed)} job(s) failed, finished ones are kept (rerun to resume): {names}")


# ---------------------------------------------------------------------------------------------------
# Content keys
# ---------------------------------------------------------------------------------------------------

def _canonical(value: Any) -> Any:
    """A JSON-able stand-in for a job argument: arrays and bytes by their digest, dataclasses as dicts."""
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {"ndarray": hashlib.sha256(arr.tobytes()).hexdigest(), "dtype": str(arr.dtype),
                "shape": list(arr.shape)}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": hashlib.sha256(value).hexdigest()}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "fingerprint"):
        return value.fingerprint()
    if hasattr(value, "to_dict"):
        return _canonical(value.to_dict())
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot hash a job argument of type {type(value).__name__}")


def content_key(*parts: Any) -> str:
    """A stable 16-hex digest of the parts (dicts in key order, arrays by their bytes)."""
    text = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """One unit of training work. `fn(**shared, **kwargs)` must be a module-level function; the CPUs it
    runs with are the executor's (`ExecutorConfig.cpus`), the same for every job."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    key: str


# ---------------------------------------------------------------------------------------------------
# Finished results on disk (resume)
# ---------------------------------------------------------------------------------------------------

class ResultStore:
    """Finished job results, one pickle per content key, written atomically by the driver.

    Pickle because results carry model weights (bytes) next to metrics; the store is the harness's
    own cache inside the run folder, never a file exchanged between users.
    """

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pkl"

    def get(self, key: str) -> Any | None:
        if self.folder is None or not self._path(key).exists():
            return None
        try:
            with open(self._path(key), "rb") as fh:
                return pickle.load(fh)
        except Exception as exc:  # a torn or foreign file is recomputed, not trusted
            log.warning(f"ignoring unreadable stored result {self._path(key)}: {exc}")
            return None

    def put(self, key: str, value: Any) -> None:
        if self.folder is None:
            return
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------
# Inside a job
# ---------------------------------------------------------------------------------------------------

def run_job(fn: Callable[..., Any], kwargs: dict[str, Any], shared: dict[str, Any], cpus: int) -> dict[str, Any]:
    """Run one job with torch's threads set to its CPUs; the result says where and how long it ran."""
    import socket

    import torch

    torch.set_num_threads(cpus)
    t0 = time.perf_counter()
    value = fn(**shared, **kwargs)
    return {"value": value, "host": socket.gethostname(), "pid": os.getpid(), "cpus": cpus,
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExecutorConfig:
    """How training jobs run; validated on construction."""

    kind: str = "local"
    jobs: int | None = None              # concurrent jobs (pool/ray); local runs one at a time
    threads_per_job: int | None = None   # torch threads inside each job (None: local keeps today's default)
    ray_address: str | None = None       # an existing cluster; None starts a local one
    retries: int = 2                     # extra attempts for a job whose worker died

    def __post_init__(self) -> None:
        check_choice(self.kind, "--executor", EXECUTORS)
        check_int(self.jobs, "--jobs", minimum=1, optional=True)
        check_int(self.threads_per_job, "--threads-per-job", minimum=1, optional=True)
        check_int(self.retries, "retries", minimum=0)
        if self.ray_address is not None and self.kind != "ray":
            raise OptionError("--ray-address needs --executor ray")
        if self.kind == "local" and self.jobs not in (None, 1):
            raise OptionError("--jobs > 1 needs --executor pool or ray (local runs jobs one at a time)")
        if self.kind == "ray":
            # imported here: harness.executor_ray imports this module
            from harness.executor_ray import import_ray

            import_ray()  # "Ray is not installed" before any work, not after the first task trained

    def cpus(self) -> int:
        """Torch threads (and declared CPUs) per job. Without --threads-per-job: local keeps torch's own
        default (0 here), as before executors existed; pool splits this machine's cores over --jobs (one
        each when --jobs is not given); ray declares one CPU per job, or this machine's cores / --jobs
        for a local cluster (a remote cluster's nodes are checked when connecting)."""
        if self.threads_per_job:
            return self.threads_per_job
        if self.kind == "local":
            return 0
        if self.jobs is None or (self.kind == "ray" and self.ray_address):
            return 1
        return max(1, (os.cpu_count() or 1) // self.jobs)

    def workers(self) -> int | None:
        """Jobs in flight at once: --jobs, else this machine's cores / threads per job (pool); None for
        ray (the cluster's CPUs decide) and 1 for local."""
        if self.jobs:
            return self.jobs
        if self.kind == "pool":
            return max(1, (os.cpu_count() or 1) // self.cpus())
        return None if self.kind == "ray" else 1

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "jobs": self.workers(), "threads_per_job": self.cpus() or None,
                "ray_address": self.ray_address, "retries": self.retries}


@dataclass
class Outcome:
    results: dict[str, dict[str, Any]] = field(default_factory=dict)   # key -> run_job result
    resumed: list[str] = field(default_factory=list)                   # keys found in the store
    failed: dict[str, str] = field(default_factory=dict)               # job name -> why


def _dedupe(jobs: Iterable[Job]) -> list[Job]:
    seen, out = set(), []
    for job in jobs:
        if job.key not in seen:
            seen.add(job.key)
            out.append(job)
    return out


class Executor:
    """Runs jobs; `map` stores each finished result and calls `on_result(job, result)` in the driver."""

    def __init__(self, config: ExecutorConfig):
        self.config = config

    def map(self, jobs: Iterable[Job], *, shared: dict[str, Any] | None = None, store: ResultStore | None = None,
            on_result: Callable[[Job, dict[str, Any]], None] | None = None) -> Outcome:
        shared = shared or {}
        store = store or ResultStore(None)
        outcome = Outcome()
        todo = []
        for job in _dedupe(jobs):
            done = store.get(job.key)
            if done is not None:
                outcome.results[job.key] = done
                outcome.resumed.append(job.key)
                if on_result:
                    on_result(job, done)
            else:
                todo.append(job)
        if outcome.resumed:
            log.info(f"resumed {len(outcome.resumed)} finished job(s) from {store.folder}")

        def finish(job: Job, result: dict[str, Any]) -> None:
            result = {**result, "executor": self.config.kind}
            store.put(job.key, result)
            outcome.results[job.key] = result
            if on_result:
                on_result(job, result)

        if todo:
            self._run(todo, shared, finish, outcome.failed)
        if outcome.failed:
            raise JobsFailed(outcome.failed)
        return outcome

    def _run(self, jobs, shared, finish, failed) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers (a Ray connection, a pool): training must not share the node with timing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """Today's behaviour: one job after another in this process."""

    def _run(self, jobs, shared, finish, failed) -> None:
        import torch

        before = torch.get_num_threads()
        try:
            for job in jobs:
                cpus = self.config.cpus() or before
                finish(job, run_job(job.fn, job.kwargs, shared, cpus))
        finally:
            torch.set_num_threads(before)
