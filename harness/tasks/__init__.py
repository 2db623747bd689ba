"""Task registry: real 1D sets shipped by sktime, generated 3D tasks, and user npz files."""
from harness.tasks.base import Dataset, TaskSpec, get_task, list_tasks, register

__all__ = ["Dataset", "TaskSpec", "get_task", "list_tasks", "register", "load_npz", "load_dataset"]


def load_npz(path):
    from harness.tasks.npz import load_npz as _load

    return _load(path)


def load_dataset(task: str | None = None, data: str | None = None, seed: int = 0, dataset: str | None = None,
                 dataset_kwargs: dict | None = None) -> Dataset:
    """One entry point for the CLI: a registered task by name, a user's npz file, or a dataset factory
    (`pkg.mod:callable`, harness/tasks/factory.py)."""
    from harness.errors import DataError

    if sum(x is not None for x in (task, data, dataset)) > 1:
        raise DataError("give one of a task (--task), a data file (--data FILE.npz) or a dataset factory "
                        "(--dataset pkg.mod:callable)")
    if dataset is not None:
        from harness.tasks.factory import load_dataset_factory

        return load_dataset_factory(dataset, dataset_kwargs)
    if data is not None:
        return load_npz(data)
    if task is None:
        raise DataError("give a task name (--task), a data file (--data FILE.npz) or a dataset factory "
                        "(--dataset pkg.mod:callable)")
    return get_task(task).load(seed)
