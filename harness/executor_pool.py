"""`--executor pool`: a local pool of spawned worker processes (`PoolExecutor`), and what runs inside
each worker. A worker killed mid-job is retried or named as `harness.executor`'s docstring describes.
"""
from __future__ import annotations

import logging
import os
import pickle
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from harness.errors import HarnessError
from harness.executor_base import Executor, ExecutorConfig, Job, run_job

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------
# Inside a pool worker
# ---------------------------------------------------------------------------------------------------

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
# The pool
# ---------------------------------------------------------------------------------------------------

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

