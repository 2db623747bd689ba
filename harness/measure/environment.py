"""Where a measurement was taken: machine, software versions, threads, source revision.

`collect(threads=None)` never fails: every item is gathered on its own and a missing or broken
one becomes None, so a results file always has an environment block.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any, Callable

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "CUDA_VISIBLE_DEVICES")
PACKAGES = ("torch", "onnxruntime", "onnx", "onnxscript", "numpy", "scipy", "kd-harness")


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - the environment block must never sink a bench
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    value = line.split(":", 1)[1].strip()
                    if value:
                        return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _git(cwd: str | None = None) -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return p.stdout.strip() if p.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def _torch_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": _safe(torch.get_num_interop_threads),
        "torch_mkl": _safe(lambda: bool(torch.backends.mkl.is_available())),
        "torch_mkldnn": _safe(lambda: bool(torch.backends.mkldnn.is_available())),
        "torch_openmp": _safe(lambda: bool(torch.backends.openmp.is_available())),
        "cuda_available": _safe(lambda: bool(torch.cuda.is_available())),
        "cuda_device": None,
    }
    if info["cuda_available"]:
        info["cuda_device"] = _safe(lambda: torch.cuda.get_device_name(0))
        info["cuda_version"] = _safe(lambda: torch.version.cuda)
    return info


def _blas_info() -> list[dict[str, Any]] | None:
    from threadpoolctl import threadpool_info

    return [
        {k: d.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")}
        for d in threadpool_info()
    ]


def _memory_bytes() -> int | None:
    import psutil

    return int(psutil.virtual_memory().total)


def _cores(logical: bool) -> int | None:
    import psutil

    return psutil.cpu_count(logical=logical)


def collect(threads: int | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": _safe(socket.gethostname),
        "cpu_model": _safe(_cpu_model),
        "machine": _safe(platform.machine),
        "physical_cores": _safe(lambda: _cores(False)),
        "logical_cores": _safe(lambda: _cores(True)),
        "affinity_cores": _safe(lambda: len(os.sched_getaffinity(0))),
        "threads": threads,
        "memory_total_bytes": _safe(_memory_bytes),
        "os": _safe(platform.platform),
        "python": _safe(lambda: sys.version.split()[0]),
        "python_implementation": _safe(platform.python_implementation),
        "versions": {pkg: _safe(lambda p=pkg: _version(p)) for pkg in PACKAGES},
        "env_vars": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        "ort_providers": _safe(lambda: __import__("onnxruntime").get_available_providers()),
        "blas": _safe(_blas_info),
    }
    torch_info = _safe(_torch_info) or {
        "torch_num_threads": None,
        "cuda_available": None,
        "cuda_device": None,
    }
    env.update(torch_info)
    env.update(_safe(_git) or {"git_commit": None, "git_dirty": None})
    return env
