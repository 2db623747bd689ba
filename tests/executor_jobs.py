"""Job functions for tests/test_executor.py: module-level, so spawned and Ray workers can import them."""
import os
import signal
from pathlib import Path


def counted(counter_dir: str, value: int) -> int:
    """Doubles `value`; leaves one file per execution so a test can count how often it ran."""
    d = Path(counter_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{value}-{os.getpid()}-{len(list(d.iterdir()))}").write_text("ran")
    return value * 2


def slow_counted(counter_dir: str, value: int, started: str, killer: str) -> int:
    """`counted` that leaves a `started` marker, then waits (up to a minute) until `die_beside` has
    started on the other worker: so it is surely in flight when that worker dies."""
    import time

    Path(started).write_text("running")
    deadline = time.monotonic() + 60
    while not Path(killer).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    return counted(counter_dir, value)


def die_beside(started: str, killer: str) -> None:
    """kill -9 of its own worker once `slow_counted` is running beside it (within a minute)."""
    import time

    Path(killer).write_text("running")
    deadline = time.monotonic() + 60
    while not Path(started).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


def die_once(marker: str, value: int) -> int:
    """kill -9 of its own worker on the first attempt; returns `value` on the next."""
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def always_die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def fails() -> None:
    raise ValueError("boom")


def threads_seen() -> int:
    import torch

    return torch.get_num_threads()


def kill_pid(pid: int) -> int:
    """kill -9 of another process (a pool's idle worker)."""
    os.kill(pid, signal.SIGKILL)
    return pid


def pid() -> int:
    return os.getpid()
