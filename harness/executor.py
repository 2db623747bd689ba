"""Where training work runs: in this process (`local`), in a local process pool (`pool`), or on Ray (`ray`).

Every training unit (a teacher, a scratch or KD student of one seed, one sweep cell) is a `Job`: a
module-level function, its keyword arguments, the CPUs it declares and a key that hashes everything
that decides its result. An executor runs jobs and hands each result back to the driver as it
arrives; only the driver writes checkpoints, summaries, results files and history.

Why these rules:
- Torch's intra-op threads inside a job are set to exactly the job's CPUs. Ray's CPUs are only
  logical (it sets OMP_NUM_THREADS but does not stop a task from using more cores), and a pool
  worker inherits torch's default of one thread per core: either way jobs would fight for cores, and
  the thread count also changes how kernels round, so the same seed would train differently.
- A job's key is a hash of its content, never its name: a rerun skips exactly the jobs whose inputs
  are unchanged (`ResultStore`), and a renamed cell with the same config is still found.
- A worker killed mid-job (kill -9, out of memory) costs that job a retry, up to `retries`; past that
  the job is named in a `JobsFailed` error after every other job has finished and been stored. A death
  with several jobs in flight is charged to none of them: they rerun one at a time (for the rest of
  that `map`), and only a job whose worker dies while it runs alone is charged.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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


_WORKER_SHARED: dict[str, Any] = {}


def _pool_init(shared_blob: bytes, cpus: int) -> None:
    # A fresh worker process: OpenMP reads OMP_NUM_THREADS when torch first starts it.
    os.environ["OMP_NUM_THREADS"] = str(cpus)
    # The shared arguments (the dataset) travel once per worker, not once per job.
    _WORKER_SHARED.clear()
    _WORKER_SHARED.update(pickle.loads(shared_blob))


def _pool_entry(fn: Callable[..., Any], kwargs: dict[str, Any], cpus: int) -> dict[str, Any]:
    return run_job(fn, kwargs, _WORKER_SHARED, cpus)


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
            _import_ray()  # "Ray is not installed" before any work, not after the first task trained

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


def _broken(fut) -> bool:
    """True when a done future failed because its pool broke (a worker died), not by its own error."""
    return fut.done() and not fut.cancelled() and isinstance(fut.exception(), BrokenProcessPool)


class PoolExecutor(Executor):
    """A local pool of `jobs` spawned worker processes, each job's torch threads pinned to its CPUs.

    A worker killed mid-job breaks the whole `ProcessPoolExecutor` and fails every job in flight. Those
    jobs rerun one at a time on a fresh pool, so that only the job that really kills its worker is
    charged attempts; finished results are already stored.
    """

    def __init__(self, config: ExecutorConfig):
        super().__init__(config)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_shared: bytes | None = None

    def _workers(self, blob: bytes) -> ProcessPoolExecutor:
        """The live pool, reused across `map` calls (worker start-up imports torch: seconds) unless the
        shared arguments changed or a worker died."""
        import multiprocessing

        if self._pool is None or self._pool_shared != blob:
            self.close()
            ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state in workers
            pool = ProcessPoolExecutor(max_workers=self.config.workers(), mp_context=ctx,
                                       initializer=_pool_init, initargs=(blob, self.config.cpus()))
            # Start every worker now. CPython spawns workers lazily, one per submit, and its manager
            # thread only watches the workers alive when it last woke: a worker spawned after that
            # could die unnoticed until another job finished, and the death would be blamed on
            # whichever job was in flight then. One no-op per worker, submitted together, spawns all.
            try:
                for fut in [pool.submit(int) for _ in range(self.config.workers())]:
                    fut.result()
            except BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                raise HarnessError("the worker processes died while starting, before any job ran") from None
            self._pool, self._pool_shared = pool, blob
        return self._pool

    def _run(self, jobs, shared, finish, failed) -> None:
        blob = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        attempts = {job.key: 0 for job in jobs}
        # When a worker dies the pool fails every future in flight, so with two jobs running nobody can
        # tell which one killed it. Those jobs become suspects and rerun one at a time: an attempt is
        # charged only to a job that broke the pool while running alone, never to a bystander.
        suspects: set[str] = set()
        deaths = {job.key: 0 for job in jobs}  # every death in flight, charged or not
        queue = list(jobs)
        limit = self.config.workers()
        idle_breaks = 0  # fresh pools in a row that broke before any job started
        while queue:
            pool = self._workers(blob)
            running: dict[Any, Job] = {}  # at most one job per worker in flight
            lost: list[Job] = []
            broke = False
            while (queue or running) and not lost:
                while queue and len(running) < limit:
                    alone = queue[0].key in suspects or any(j.key in suspects for j in running.values())
                    if running and alone:
                        break
                    job = queue.pop(0)
                    try:
                        running[pool.submit(_pool_entry, job.fn, job.kwargs, self.config.cpus())] = job
                    except BrokenProcessPool:  # a worker died while idle: this job never started
                        queue.insert(0, job)
                        broke = True
                        break
                if not running:  # the pool broke before anything started: a fresh one
                    idle_breaks += 1
                    if idle_breaks >= 3:
                        raise HarnessError("worker processes keep dying before any job starts "
                                           f"({idle_breaks} fresh pools in a row)")
                    break
                idle_breaks = 0
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                # After a break, collect every finished future too: one that completed beside the
                # dying worker keeps its result.
                for fut in list(done) + ([f for f in running if f.done() and f not in done]
                                          if any(_broken(f) for f in done) else []):
                    job = running.pop(fut)
                    if _broken(fut):
                        lost.append(job)
                        continue
                    try:
                        result = fut.result()
                    except Exception as exc:  # the job's own error: not retried, it would fail again
                        failed[job.name] = f"{type(exc).__name__}: {exc}"
                        continue
                    finish(job, result)  # the driver's own errors (a full disk) are not the job's
            if lost:
                broke = True
                lost.extend(running.values())  # still in flight: they died with the pool
                for job in lost:
                    deaths[job.key] += 1
                if len(lost) > 1:
                    log.warning(f"a worker died with {len(lost)} jobs in flight "
                                f"({', '.join(j.name for j in lost)}); rerunning them one at a time")
                    suspects.update(j.key for j in lost)
                    queue[:0] = lost
                else:
                    (job,) = lost
                    suspects.add(job.key)
                    attempts[job.key] += 1
                    if attempts[job.key] > self.config.retries:
                        shared = deaths[job.key] - attempts[job.key]
                        failed[job.name] = (f"worker died {attempts[job.key]} times running alone"
                                            + (f", {shared} more beside other jobs" if shared else ""))
                    else:
                        log.warning(f"a worker died while running {job.name}; retrying "
                                    f"({attempts[job.key]}/{self.config.retries})")
                        queue.insert(0, job)
            if broke:  # a worker died: never reuse that pool (the next round or map starts a fresh one)
                self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._pool_shared = None


class RayExecutor(Executor):
    """Ray tasks, each declaring `num_cpus` = the job's CPUs; at most `jobs` in flight at once.

    Without an address a local cluster is started with this machine's CPUs. Ray retries a task
    whose worker died (`max_retries`); a job's own exception is not retried.
    """

    def __init__(self, config: ExecutorConfig):
        super().__init__(config)
        self._ray = _import_ray()
        self._started = False
        self._connect()

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                                  "configure_logging": False}
        if self.config.ray_address:
            _probe(self.config.ray_address)
            kwargs["address"] = self.config.ray_address
        else:
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            with _quiet_stderr():
                ray.init(**kwargs)
        except Exception as exc:  # ConnectionError, a timeout, a bad address: one line for the user
            from harness.errors import first_line

            where = self.config.ray_address or "a local cluster"
            raise OptionError(f"cannot connect to Ray at {where}: {first_line(exc)}") from None
        self._started = True

    def _run(self, jobs, shared, finish, failed) -> None:
        ray = self._ray
        cpus = self.config.cpus()
        remote = ray.remote(num_cpus=cpus, max_retries=self.config.retries,
                            retry_exceptions=False)(run_job)
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        if cpus > largest:  # Ray would queue the task forever
            raise OptionError(f"a job needs {cpus} CPUs but the largest Ray node has {largest:g}; "
                              f"lower --threads-per-job")
        shared_ref = ray.put(shared)
        limit = self.config.jobs or max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus)
        queue = list(jobs)
        running: dict[Any, Job] = {}
        while queue or running:
            while queue and len(running) < limit:
                job = queue.pop(0)
                running[remote.remote(job.fn, job.kwargs, shared_ref, cpus)] = job
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.WorkerCrashedError:
                    failed[job.name] = f"worker died {self.config.retries + 1} times"
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    failed[job.name] = f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1][:200]}"
                except ray.exceptions.RayError as exc:
                    failed[job.name] = f"{type(exc).__name__}"
                else:
                    finish(job, result)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False


class _quiet_stderr:
    """Silence file descriptor 2 (Ray's C++ core writes there directly, past Python's logging) while
    connecting; what it wrote goes to the debug log."""

    def __enter__(self):
        import tempfile

        self._saved = os.dup(2)
        self._tmp = tempfile.TemporaryFile()
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        text = self._tmp.read().decode(errors="replace").strip()
        self._tmp.close()
        if text:
            log.debug(f"ray.init stderr:\n{text[-4000:]}")


def _probe(address: str, timeout: float = 3.0) -> None:
    """A TCP connect to HOST:PORT first: an unreachable head fails in seconds with one line, instead
    of Ray's retry loop (tens of seconds of C++ log lines on stderr)."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise OptionError(f"--ray-address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise OptionError(f"cannot reach Ray at {address}: {exc.strerror or type(exc).__name__}") from None


def _import_ray():
    # Ray's C++ core logs to stderr on its own; keep it to errors so a failure stays one line.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        import ray
    except ImportError:
        raise OptionError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    return ray


def make_executor(config: ExecutorConfig | None = None) -> Executor:
    config = config or ExecutorConfig()
    return {"local": LocalExecutor, "pool": PoolExecutor, "ray": RayExecutor}[config.kind](config)


# ---------------------------------------------------------------------------------------------------
# Model weights across processes
# ---------------------------------------------------------------------------------------------------

def state_bytes(model) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def model_from_state(config: dict, blob: bytes):
    import torch

    import kd_models

    model = kd_models.build_model(config)
    model.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
    model.eval()
    return model


def state_digest(model) -> str:
    """sha256 of a model's weights in state-dict order: equal digests mean bit-identical training."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
