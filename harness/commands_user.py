"""The command-line steps for your own models and data: factories and kwargs from options, data from
--task/--data/--dataset, `harness bench --model`, and `harness run` with your models (via harness.api)."""
from __future__ import annotations

from harness.report_options import report_format, report_target

from pathlib import Path

from harness.errors import OptionError


def _train_model_spec(args, role: str) -> dict | None:
    """--teacher/--student (a factory, with --*-kwargs) or --teacher-config/--student-config (a built-in family)."""
    from harness.api import model_spec
    from harness.user_models import parse_json_object

    factory, config = getattr(args, role), getattr(args, f"{role}_config", None)  # run has no --*-config
    kwargs = parse_json_object(getattr(args, f"{role}_kwargs"), f"--{role}-kwargs")
    if factory and config:
        raise OptionError(f"give --{role} (a factory) or --{role}-config (a built-in family), not both")
    if config:
        if kwargs is not None:
            raise OptionError(f"--{role}-kwargs belongs to --{role} (a factory); put keys in --{role}-config")
        return _builtin_config(config, f"--{role}-config")
    return model_spec(factory, kwargs, role)


def _cli_data(args):
    """(Dataset, data_ref) from --task, --data or --dataset (+ --dataset-kwargs)."""
    from harness.api import load_data
    from harness.errors import DataError
    from harness.user_models import parse_json_object

    given = [x for x in (args.task, args.data, args.dataset) if x is not None]
    if len(given) != 1:
        raise DataError("give one of --task NAME, --data FILE.npz or --dataset pkg.mod:callable")
    if args.dataset_kwargs is not None and args.dataset is None:
        raise OptionError("--dataset-kwargs belongs to --dataset")
    if args.data is not None:
        from harness.tasks import load_npz

        return load_npz(args.data), {"npz": str(Path(args.data).resolve())}
    if args.dataset is not None:
        return load_data(args.dataset, parse_json_object(args.dataset_kwargs, "--dataset-kwargs"))
    return load_data(args.task)


def _bench_user_models(args, cfg) -> int:
    """`harness bench --model ROLE=pkg.mod:factory[@CHECKPOINT] ...`: through harness.api.bench."""
    from harness import api, bench
    from harness.fileio import ensure_writable_dir
    from harness.user_models import parse_json_object, parse_model_args

    users = parse_model_args(args.model, args.model_kwargs)
    shape = bench.parse_input_shape(args.input_shape)
    given = [x for x in (args.task, args.data, args.dataset) if x is not None]
    if len(given) > 1:
        raise OptionError("give one of --task NAME, --data FILE.npz or --dataset pkg.mod:callable")
    if args.dataset_kwargs is not None and args.dataset is None:
        raise OptionError("--dataset-kwargs belongs to --dataset")
    out = Path(args.out or "results.json")
    ensure_writable_dir(out.parent if str(out.parent) else ".")
    results = api.bench(models=users, data=given[0] if given else None, input_shape=shape, out=out,
                        dataset_kwargs=parse_json_object(args.dataset_kwargs, "--dataset-kwargs"), **cfg.to_dict())
    _history(args, out)
    print(api.report(results, report_format(args), report_target(args)))
    print(f"\nwrote {out} (models in {out.parent / (out.stem + '-models')})")
    return 0


def _run_user_experiment(args, cfg, seeds) -> int:
    """`harness run` with your own models or data: train the trio on one data source, then bench it."""
    from harness import api
    from harness.api import check_builtin_fits
    from harness.executor import make_executor
    from harness.train.recipes import default_recipe, load_recipe
    from harness.train.trio import train_trio

    if args.tasks and len(args.tasks) > 1:
        raise OptionError("your own models train on one data source: give one --tasks name, --data or --dataset")
    args.task = args.tasks[0] if args.tasks else None
    if args.task is None and args.data is None and args.dataset is None:
        raise OptionError("your own models need data: --tasks NAME, --data FILE.npz or --dataset pkg.mod:callable")
    teacher, student = _train_model_spec(args, "teacher"), _train_model_spec(args, "student")
    data, data_ref = _cli_data(args)
    train_cfg = default_recipe(data.kind, data.name)
    if args.recipe:
        train_cfg = load_recipe(args.recipe, train_cfg)
    train_cfg = train_cfg.with_overrides(epochs=args.epochs)
    check_builtin_fits(data, teacher, student)
    run_dir = Path(args.out) / data.name
    with make_executor(_executor_config(args)) as executor:
        train_trio(data, train_cfg, seeds, run_dir, teacher_config=teacher, student_config=student,
                   data_ref=data_ref, executor=executor, teacher_checkpoint=args.teacher_checkpoint)
    path = Path(args.out) / "results.json"
    results = api.bench(run_dir, data=data, out=path, **cfg.to_dict())
    _history(args, path)
    print(api.report(results, report_format(args), report_target(args)))
    print(f"\nwrote {path}")
    return 0




def _builtin_config(text, what):
    from harness.commands import _model_config

    return _model_config(text, what)


def _history(args, path) -> None:
    from harness.commands import _record_history

    _record_history(args, path)


def _executor_config(args):
    from harness.commands import executor_config_from_args

    return executor_config_from_args(args)
