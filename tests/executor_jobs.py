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
