"""`--executor ray`: training jobs as Ray tasks (`RayExecutor`), on an existing cluster or a local one.

Ray is optional (`pip install -e '.[ray]'`): it is imported only when a Ray executor is asked for, and
`import_ray` turns its absence into one line for the user.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from harness.errors import OptionError
from harness.executor_base import Executor, ExecutorConfig, Job, run_job

log = logging.getLogger(__name__)


class RayExecutor(Executor):
    """Ray tasks, each declaring `num_cpus` = the job's CPUs; at most `jobs` in flight at once.

    Without an address a local cluster is started with this machine's CPUs. Ray retries a task
    whose worker died (`max_retries`); a job's own exception is not retried.
    """

    def __init__(self, config: ExecutorConfig):
        super().__init__(config)
        self._ray = import_ray()
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


def import_ray():
    # Ray's C++ core logs to stderr on its own; keep it to errors so a failure stays one line.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        import ray
    except ImportError:
        raise OptionError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    return ray
