"""The kd-harness pytest plugin's options (--kd-run, --kd-threads, ...) and how fixtures read them.

Imported by every pytest run once kd-harness is installed: pytest and the standard library only.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

BACKENDS = ("torch", "onnxruntime")
LATENCY_BATCH_SIZES = (1, 8)
THROUGHPUT_BATCH_SIZES = (1, 8, 32)
FOOTPRINT_SUITES = ("memory", "storage", "accuracy")  # figures in extra_info; their time is the measuring itself

# The default run: small enough to train in well under a minute on 2 cores.
DEFAULT_TASK = "gunpoint"
DEFAULT_EPOCHS = 15
DEFAULT_SEEDS = [0]
RUN_ENV = "KD_HARNESS_RUN"
CACHE_ENV = "KD_HARNESS_CACHE"

# -- options ------------------------------------------------------------------------------------
def pytest_addoption(parser):
    g = parser.getgroup("kd-harness", "kd-harness benchmark suites and the kd_session fixture (suites/README.md)")
    g.addoption("--kd-run", default=None, metavar="DIR",
                help=f"`harness train` output folder to benchmark (else ${RUN_ENV}; else a cached small default run)")
    g.addoption("--kd-batch-sizes", default=None, metavar="LIST",
                help="latency batch sizes, comma-separated (default %s)" % ",".join(map(str, LATENCY_BATCH_SIZES)))
    g.addoption("--kd-throughput-batch-sizes", default=None, metavar="LIST",
                help="throughput batch sizes (default %s)" % ",".join(map(str, THROUGHPUT_BATCH_SIZES)))
    g.addoption("--kd-backends", default=None, metavar="LIST",
                help="backends, comma-separated (default %s)" % ",".join(BACKENDS))
    g.addoption("--kd-threads", default=None, metavar="N",
                help="intra-op threads for the suites and for kd_session without threads= (default: physical cores)")
    g.addoption("--kd-suites", action="store_true", default=False,
                help="run the suites even without --benchmark-only or a benchmark output option")


def _int_list(text: str | None, default: tuple[int, ...], name: str) -> list[int]:
    if text is None:
        return list(default)
    try:
        vals = [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        vals = []
    if not vals or any(v < 1 for v in vals):
        raise pytest.UsageError(f"{name} must be a comma-separated list of positive integers, got {text!r}")
    return sorted(set(vals))


def latency_batch_sizes(config) -> list[int]:
    return _int_list(config.getoption("kd_batch_sizes"), LATENCY_BATCH_SIZES, "--kd-batch-sizes")


def throughput_batch_sizes(config) -> list[int]:
    return _int_list(config.getoption("kd_throughput_batch_sizes"), THROUGHPUT_BATCH_SIZES,
                     "--kd-throughput-batch-sizes")


def backends(config) -> list[str]:
    text = config.getoption("kd_backends")
    if text is None:
        return list(BACKENDS)
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in BACKENDS]
    if not names or bad:
        raise pytest.UsageError(f"--kd-backends takes a comma-separated subset of {','.join(BACKENDS)}, got {text!r}")
    return list(dict.fromkeys(names))


def physical_cores() -> int:
    # harness.bench.default_threads computes the same, but importing harness.bench imports torch
    import psutil

    return max(1, psutil.cpu_count(logical=False) or 1)


def threads(config) -> int:
    text = config.getoption("kd_threads")
    if text is None:
        return physical_cores()
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"--kd-threads must be a positive integer, got {text!r}")
    return n


def suites_enabled(config) -> bool:
    opt = config.getoption
    if opt("kd_suites", False) or opt("benchmark_only", False):
        return True
    if opt("benchmark_skip", False) or opt("benchmark_disable", False):
        return False
    return bool(opt("benchmark_json", None) or opt("benchmark_save", None) or opt("benchmark_autosave", False)
                or opt("benchmark_compare", None))


def cache_root(config) -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(config.rootpath) / ".kd-harness-cache"


def run_location(config) -> tuple[Path | None, str]:
    """(run folder, where it came from): option, env, or (None, "default") for the cached default run."""
    opt = config.getoption("kd_run")
    if opt:
        return Path(opt), "--kd-run"
    env = os.environ.get(RUN_ENV)
    if env:
        return Path(env), RUN_ENV
    return None, "default"
