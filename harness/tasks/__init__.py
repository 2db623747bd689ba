"""Task registry: real 1D sets shipped by sktime, generated 3D tasks, and user npz files."""
from harness.tasks.base import Dataset, TaskSpec, get_task, list_tasks, register

__all__ = ["Dataset", "TaskSpec", "get_task", "list_tasks", "register", "load_npz", "load_dataset"]


def load_npz(path):
    from harness.tasks.npz import load_npz as _load

    return _load(path)


def load_dataset(task: str | None = None, data: str | None = None, seed: int = 0) -> Dataset:
    """One entry point for the CLI: a registered task by name, or a user's npz file."""
    if data is not None:
        return load_npz(data)
    if task is None:
        from harness.errors import DataError

        raise DataError("give a task name (--task) or a data file (--data FILE.npz)")
    return get_task(task).load(seed)
