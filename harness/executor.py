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

The code lives in modules of its own, re-exported here (import from `harness.executor`):
`harness.executor_base` (jobs, keys, the result store, the config, `Executor` and `LocalExecutor`),
`harness.executor_pool` (`PoolExecutor`), `harness.executor_ray` (`RayExecutor`) and
`harness.model_state` (model weights across processes).
"""
from __future__ import annotations

from harness.executor_base import (EXECUTORS, Executor, ExecutorConfig, Job, JobsFailed, LocalExecutor, Outcome,
                                   ResultStore, content_key, run_job)
from harness.executor_pool import PoolExecutor
from harness.executor_ray import RayExecutor
from harness.model_state import model_from_state, state_bytes, state_digest

__all__ = ["EXECUTORS", "Executor", "ExecutorConfig", "Job", "JobsFailed", "LocalExecutor", "Outcome", "PoolExecutor",
           "RayExecutor", "ResultStore", "content_key", "make_executor", "model_from_state", "run_job", "state_bytes",
           "state_digest"]


def make_executor(config: ExecutorConfig | None = None) -> Executor:
    config = config or ExecutorConfig()
    return {"local": LocalExecutor, "pool": PoolExecutor, "ray": RayExecutor}[config.kind](config)
