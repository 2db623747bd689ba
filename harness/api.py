"""The Python API: distil, measure and report from code, with the CLI's behaviour and no printing.

    from harness import api
    summary = api.distill(teacher="mypkg.nets:teacher", student="mypkg.nets:student",
                          data="runs/my.npz", out="runs/mine", epochs=20)
    results = api.bench("runs/mine", backends=["torch", "onnxruntime"], quick=True)
    print(api.report(results, format="md"))

Every function raises `harness.HarnessError` (one line a user can act on) on bad input and returns
objects: a training summary dict, a `Results`, a report string. The CLI calls these same functions.
Models are given as an import path 'pkg.mod:factory', a module-level callable, a spec dict
({"factory": ..., "kwargs": ...} or a built-in family config), or None for the built-in default.
Data is a built-in task name, an .npz path, a dataset factory 'pkg.mod:callable', or a `Dataset`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from harness.errors import DataError, HarnessError, OptionError
from harness.results import Results
from harness.tasks.base import Dataset

log = logging.getLogger(__name__)

ModelLike = str | dict | Callable | None
DataLike = str | Path | Dataset | None

__all__ = ["HarnessError", "bench", "distill", "load_data", "model_spec", "report"]


def model_spec(model: ModelLike, kwargs: dict[str, Any] | None = None, what: str = "model") -> dict | None:
    """A model spec from any of the accepted forms (checked for syntax; the factory runs later)."""
    import kd_models

    if model is None:
        if kwargs:
            raise OptionError(f"{what} keyword arguments need a {what} factory")
        return None
    if isinstance(model, dict):
        if kd_models.is_factory_spec(model):
            return kd_models.factory_spec(model["factory"], {**model.get("kwargs", {}), **(kwargs or {})}, what)
        return kd_models.validate_config(model)
    if isinstance(model, str):
        return kd_models.factory_spec(model, kwargs, what)
    if callable(model):
        module, name = getattr(model, "__module__", None), getattr(model, "__qualname__", "")
        if not module or module == "__main__" or "<locals>" in name:
            raise OptionError(f"{what} {name or model!r} must be importable (a module-level callable of an "
                              f"importable module), so that worker processes and later benches can rebuild it")
        return kd_models.factory_spec(f"{module}:{name}", kwargs, what)
    raise OptionError(f"{what} must be an import path 'pkg.mod:factory', a callable or a spec dict, "
                      f"got {type(model).__name__}")


def load_data(data: DataLike, dataset_kwargs: dict[str, Any] | None = None) -> tuple[Dataset, dict[str, Any]]:
    """(Dataset, the reference a run records to reload it) from a task name, an .npz path, a dataset
    factory 'pkg.mod:callable' or a Dataset."""
    from harness.tasks import load_dataset
    from kd_models.factory import check_kwargs

    if isinstance(data, Dataset):
        return data, {"in_memory": data.name, "fingerprint": data.fingerprint()}
    if not isinstance(data, (str, Path)) or not str(data).strip():
        raise DataError(f"data must be a task name, an .npz path, 'pkg.mod:callable' or a Dataset, got {data!r}")
    text = str(data)
    if text.endswith(".npz") or Path(text).is_file():
        return load_dataset(data=text), {"npz": str(Path(text).resolve())}
    if ":" in text:
        kwargs = check_kwargs(dataset_kwargs, "dataset factory")
        data = load_dataset(dataset=text, dataset_kwargs=kwargs)
        return data, {"dataset": text, "kwargs": kwargs, "import_root": data.X_train.source.import_root}
    return load_dataset(task=text), {"task": text.strip().lower(), "data_seed": 0}


def distill(teacher: ModelLike = None, student: ModelLike = None, data: DataLike = None, *,
            teacher_kwargs: dict | None = None, student_kwargs: dict | None = None,
            teacher_checkpoint: str | Path | None = None, recipe: str | None = None, seeds: list[int] | None = None,
            out: str | Path | None = None, executor=None, dataset_kwargs: dict | None = None,
            **train_options: Any) -> dict[str, Any]:
    """Train the trio (teacher unless `teacher_checkpoint` gives it, scratch student, KD student) and write
    OUT/summary.json with the checkpoints; returns the summary. `train_options` are TrainConfig fields
    (epochs, temperature, alpha, kd_loss, kd_logits, augment, mixup, ...) over the data kind's recipe."""
    from harness.train.recipes import default_recipe, load_recipe
    from harness.train.trio import train_trio

    t_spec = model_spec(teacher, teacher_kwargs, "teacher")
    s_spec = model_spec(student, student_kwargs, "student")
    if data is None:
        raise DataError("give data: a task name, an .npz path, a dataset factory 'pkg.mod:callable' or a Dataset")
    dataset, data_ref = load_data(data, dataset_kwargs)
    cfg = default_recipe(dataset.kind)
    if recipe:
        cfg = load_recipe(recipe, cfg)
    try:
        cfg = cfg.with_overrides(**train_options)
    except TypeError as exc:
        raise OptionError(f"unknown training option: {exc}") from None
    check_builtin_fits(dataset, t_spec, s_spec)
    out = Path(out) if out is not None else Path("runs") / dataset.name
    return train_trio(dataset, cfg, seeds or [0], out, teacher_config=t_spec, student_config=s_spec,
                      data_ref=data_ref, executor=executor, teacher_checkpoint=teacher_checkpoint)


def check_builtin_fits(data: Dataset, *specs: dict | None) -> None:
    """A built-in family's config must name the data's channels and classes (a factory is checked by running it)."""
    for spec in specs:
        if spec and "family" in spec and (spec["in_channels"] != data.in_channels or spec["num_classes"] != data.classes):
            raise OptionError(f"the {spec['family']} config has in_channels={spec['in_channels']}, num_classes="
                              f"{spec['num_classes']}; the data has {data.in_channels} channels and {data.classes} classes")


def bench(run: str | Path | None = None, *, models: dict[str, Any] | list | None = None, data: DataLike = None,
          input_shape: tuple[int, ...] | None = None, out: str | Path | None = None, dataset_kwargs=None,
          **bench_options: Any) -> Results:
    """Measure a training run's models (`run`, a folder) or already-trained PyTorch models (`models`:
    role -> model or (model, checkpoint path), model as for `distill`; or a list of
    `harness.user_models.UserModel`), on every backend and suite the BenchConfig fields in `bench_options`
    ask for. Writes the results JSON to `out` (default RUN/results.json, or results.json) and returns the
    Results. `models` are first written as a run folder beside `out` (OUT_STEM-models/), removed again
    if the bench fails."""
    from dataclasses import replace

    from harness import bench as bench_mod

    cfg = bench_mod.BenchConfig(**bench_options)
    if (run is None) == (models is None):
        raise OptionError("give a training run folder or models, not both and not neither")
    dataset = load_data(data, dataset_kwargs) if data is not None else None
    if models is None:
        return _bench_run(Path(run), dataset[0] if dataset else None, cfg, out)
    from harness.user_models import materialize_run

    out = Path(out) if out else Path("results.json")
    folder = out.parent / f"{out.stem}-models"
    fresh = not folder.exists()
    try:
        run_dir = materialize_run(_user_models(models), dataset[0] if dataset else None, input_shape, folder,
                                  data_ref=dataset[1] if dataset else None)
        if dataset is None and "accuracy" in cfg.suites:
            cfg = replace(cfg, suites=[s for s in cfg.suites if s != "accuracy"])
        return _bench_run(run_dir, dataset[0] if dataset else None, cfg, out)
    except BaseException:
        if fresh and folder.exists():  # a failed bench leaves nothing behind
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        raise


def _user_models(models: dict[str, Any] | list) -> list:
    from harness.roles import user_role
    from harness.user_models import UserModel

    if isinstance(models, list):
        return models
    users = []
    for role, given in models.items():
        model, ckpt = given if isinstance(given, tuple) else (given, None)
        spec = model_spec(model, None, f"model {role}")
        if spec is None:
            raise OptionError(f"model {role}: give a factory")
        users.append(UserModel(user_role(role), spec, Path(ckpt) if ckpt else None))
    return users


def _bench_run(run: Path, dataset: Dataset | None, cfg, out: str | Path | None) -> Results:
    from harness import bench as bench_mod
    from harness.results import write_results

    summary, run_dir = bench_mod.load_run(run)
    if dataset is None and summary.get("data_ref"):
        dataset = bench_mod.run_dataset(summary)
    out_path = Path(out) if out else run_dir / "results.json"
    if "serving" in cfg.suites and cfg.serving_log_dir is None:  # LoadGen's logs beside the results file
        from dataclasses import replace

        cfg = replace(cfg, serving_log_dir=bench_mod.loadgen_dir(out_path))
    sources = bench_mod.export_run(summary, run_dir, dataset, cfg)
    results = bench_mod.bench_models(sources, dataset, cfg)
    results.tasks[summary["task"]] = summary
    write_results(out_path, results)
    return results


def report(results: Results | str | Path | list, format: str = "table", target: float = 0.99) -> str:
    """The report of one or more results (objects or files) in `format`: table (one screen per task),
    full (every table), md, csv, html or json. `target`: the quality target the verdict chooses what to
    deploy by, a fraction of the fp32 teacher's accuracy (MLPerf's 0.99 by default)."""
    from harness.report import FORMATS, build_report

    if format not in FORMATS:
        raise OptionError(f"unknown report format {format!r}; choose one of: {', '.join(FORMATS)}")
    return build_report(results, format, target)
