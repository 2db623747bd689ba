"""Where a measurement was taken: machine, software versions, threads, source revision.

`collect(threads=None)` never fails: every item is gathered on its own and a missing or broken
one becomes None, so a results file always has an environment block.

CPU keys: `cpu_model`; `cpu_isa`, the sorted subset of ISA_FLAGS the CPU reports (/proc/cpuinfo,
else py-cpuinfo; None when unknown), which decides the kernels a library picks and so the
floating-point sums a training run makes; `cpu_vector_bits` (512 with AVX-512F, 256 with AVX/AVX2,
else 128); `cpu_mhz` (cpufreq's maximum clock, else /proc/cpuinfo's current "cpu MHz", else None)
with `cpu_mhz_source`.
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
PACKAGES = ("torch", "onnxruntime", "onnx", "onnxscript", "openvino", "numpy", "scipy", "kd-harness")
# vector-ISA flags that decide which kernels numeric libraries pick (and so their rounding)
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
CPUINFO_PATH = "/proc/cpuinfo"
CPUFREQ_MAX_PATH = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - the environment block must never sink a bench
        return None


def _cpu_model() -> str | None:
    try:
        with open(CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    value = line.split(":", 1)[1].strip()
                    if value:
                        return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _proc_cpuinfo_first() -> dict[str, str] | None:
    """The first processor block of /proc/cpuinfo as {key: value}; None where there is none."""
    try:
        with open(CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        if ":" in line:
            k, v = line.split(":", 1)
            out.setdefault(k.strip().lower(), v.strip())
    return out or None


def _norm_flag(flag: str) -> str:
    return flag.strip().lower().replace("_", "").replace(".", "")


def isa_from_flags(flags: Any) -> list[str]:
    """The ISA_FLAGS present in `flags` (an iterable or a space-separated string), sorted.

    Spellings differ between /proc/cpuinfo (avx512_vnni) and py-cpuinfo on other systems
    (avx512vnni), so they are compared without underscores.
    """
    if isinstance(flags, str):
        flags = flags.split()
    have = {_norm_flag(str(f)) for f in flags or ()}
    return sorted(f for f in ISA_FLAGS if _norm_flag(f) in have)


def vector_bits(isa: Any) -> int | None:
    """Widest float SIMD register the flags allow: 512 (AVX-512F), 256 (AVX/AVX2), else 128."""
    if isa is None:
        return None
    isa = set(isa)
    if "avx512f" in isa:
        return 512
    if "avx2" in isa or "avx" in isa:
        return 256
    return 128


def _cpu_flags() -> list[str] | None:
    """Raw CPU flags: /proc/cpuinfo first, py-cpuinfo where that is missing; None when unknown."""
    info = _proc_cpuinfo_first()
    if info is not None:
        flags = info.get("flags") or info.get("features")  # x86 "flags", arm "Features"
        if flags is not None:
            return flags.split()
    try:
        import cpuinfo  # py-cpuinfo (a pytest-benchmark dependency); slow, so only as a fallback
    except ImportError:
        return None
    flags = cpuinfo.get_cpu_info().get("flags")
    return list(flags) if flags else None


def _cpu_isa() -> list[str] | None:
    flags = _cpu_flags()
    return None if flags is None else isa_from_flags(flags)


def _cpu_clock() -> tuple[float | None, str | None]:
    """(MHz, where from): cpufreq's maximum clock, else the current "cpu MHz" in /proc/cpuinfo
    (a VM often shows only this), else (None, None)."""
    try:
        with open(CPUFREQ_MAX_PATH, encoding="ascii") as f:
            khz = float(f.read().strip())
        if khz > 0:
            return khz / 1000.0, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    info = _proc_cpuinfo_first()
    if info is not None:
        try:
            mhz = float(info.get("cpu mhz", ""))
        except ValueError:
            mhz = 0.0
        if mhz > 0:
            return mhz, "/proc/cpuinfo cpu MHz"
    return None, None


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
        "cpu_isa": _safe(_cpu_isa),
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
    env["cpu_vector_bits"] = _safe(lambda: vector_bits(env["cpu_isa"]))
    env["cpu_mhz"], env["cpu_mhz_source"] = _safe(_cpu_clock) or (None, None)
    env.update(torch_info)
    env.update(_safe(_git) or {"git_commit": None, "git_dirty": None})
    return env
