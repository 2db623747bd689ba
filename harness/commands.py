"""What each `harness` subcommand does, once cli.py has parsed its options: build configs, call one
library function, print its result. Errors are HarnessErrors; cli.main turns them into one line."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from harness.errors import OptionError
from harness.report_options import report_format, report_target

log = logging.getLogger(__name__)

MAIN_JOB_VARIANTS = ("fp32", "int8")


def cmd_tasks(args) -> int:
    from tabulate import tabulate

    from harness.tasks import list_tasks

    rows = []
    for spec in list_tasks():
        info = spec.load(0).info()
        info["description"] = spec.description
        rows.append(info)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(tabulate([[r["name"], r["kind"], "x".join(map(str, r["input_shape"])), r["classes"], r["n_train"],
                         r["n_test"], r["description"]] for r in rows],
                       headers=["task", "kind", "input", "classes", "train", "test", "description"]))
    return 0


def check_train_options(args) -> None:
    """Bad train options fail before any data is read: against the recipe of a built-in task's kind, or, for an
    npz whose kind is known only once it is read, against live logits (every built-in recipe's)."""
    from harness.tasks import get_task
    from harness.train.recipes import default_recipe
    from harness.train.trainer import TrainConfig

    task = getattr(args, "task", None)
    base = default_recipe(get_task(task).kind) if task and not getattr(args, "data", None) else \
        TrainConfig(kd_logits="live")
    train_config_from_args(args, base=base)


def train_config_from_args(args, base=None):
    from harness.train.recipes import load_recipe
    from harness.train.trainer import TrainConfig

    cfg = base or TrainConfig()
    if getattr(args, "recipe", None):
        cfg = load_recipe(args.recipe, cfg)
    overrides = dict(
        epochs=args.epochs, student_epochs=args.student_epochs, min_epoch_samples=args.min_epoch_samples,
        even_batches=args.even_batches,
        temperature=args.temperature, alpha=args.alpha,
        kd_loss=args.kd_loss, kd_logits=args.kd_logits, at_beta=args.at_beta, augment=args.augment, mixup=args.mixup,
        calibrate_teacher=args.calibrate_teacher, threads=args.threads, normalize=args.normalize,
    )
    augment = args.augment if args.augment is not None else cfg.augment
    mixup = args.mixup if args.mixup is not None else cfg.mixup
    if (augment or (isinstance(mixup, (int, float)) and mixup > 0)) and args.kd_logits is None:
        overrides["kd_logits"] = "live"  # augmented or mixed batches are labelled by the teacher itself
    return cfg.with_overrides(**overrides)


def _model_config(text: str | None, what: str) -> dict | None:
    """A model config from inline JSON or a file, validated before any training starts."""
    if text is None:
        return None
    import kd_models

    from harness.fileio import read_json

    if text.lstrip().startswith("{"):
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OptionError(f"{what} is not valid JSON: {exc.msg}") from None
    else:
        cfg = read_json(text, what=what)
    if not isinstance(cfg, dict):
        raise OptionError(f"{what} must be a JSON object with 'family', 'in_channels', 'num_classes', ...")
    return kd_models.validate_config(cfg)


def _data_and_config(args):
    """The task's data and its training config: the kind's default recipe, then --recipe, then options."""
    from harness.tasks import load_dataset
    from harness.train.recipes import default_recipe

    data = load_dataset(args.task, args.data)
    return data, train_config_from_args(args, base=default_recipe(data.kind))


def executor_config_from_args(args, threads: int | None = None):
    """The executor options, validated; `threads` (train's --threads) is the per-job default."""
    from harness.executor import ExecutorConfig

    return ExecutorConfig(kind=args.executor, jobs=args.jobs, threads_per_job=args.threads_per_job or threads,
                          ray_address=args.ray_address)


def executor_from_args(args, threads: int | None = None):
    """The executor the options ask for, connected (Ray) before any training."""
    from harness.executor import make_executor

    return make_executor(executor_config_from_args(args, threads))


from harness.commands_user import (  # noqa: E402 - your own models and data (commands_user.py)
    _bench_user_models, _cli_data, _run_user_experiment, _train_model_spec)


def cmd_train(args) -> int:
    from harness.api import check_builtin_fits
    from harness.train.recipes import default_recipe
    from harness.train.summary_table import format_summary
    from harness.train.trio import parse_seeds, train_trio

    seeds = parse_seeds(args.seeds)
    check_train_options(args)
    teacher_cfg, student_cfg = _train_model_spec(args, "teacher"), _train_model_spec(args, "student")
    data, data_ref = _cli_data(args)
    cfg = train_config_from_args(args, base=default_recipe(data.kind))
    check_builtin_fits(data, teacher_cfg, student_cfg)
    out = args.out or os.path.join("runs", data.name)
    with executor_from_args(args, args.threads) as executor:
        summary = train_trio(data, cfg, seeds, out, data_ref=data_ref, executor=executor,
                             teacher_config=teacher_cfg, student_config=student_cfg,
                             teacher_checkpoint=args.teacher_checkpoint)
    print(format_summary(summary))
    print(f"\nwrote {os.path.join(out, 'summary.json')}")
    return 0


def cmd_sweep(args) -> int:
    from harness.sweep import SweepGrid, format_row, parse_float_list, run_sweep
    from harness.train.trio import parse_seeds

    if args.student_scale is not None or args.student_widths is not None:
        return cmd_size_sweep(args)
    if args.within_pts is not None:
        raise OptionError("--within-pts belongs to a size sweep (--student-scale or --student-widths)")
    grid = SweepGrid(parse_float_list(args.temperatures, "--temperatures"), parse_float_list(args.alphas, "--alphas"),
                     args.kd_losses)
    seeds = parse_seeds(args.seeds or "0,1,2")
    check_train_options(args)
    data, cfg = _data_and_config(args)
    out = args.out or os.path.join("runs", f"{data.name}-sweep")
    fixed = {k: v for k, v in cfg.to_dict().items() if k not in ("temperature", "alpha", "kd_loss", "threads")}
    log.info("grid over kd_loss x T x alpha; fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    with executor_from_args(args, args.threads) as executor:
        doc = run_sweep(data, cfg, grid, seeds, out, val_fraction=args.val_fraction, executor=executor,
                        on_row=lambda row: print(format_row(row), flush=True))
    check = doc["teacher_fit_check"]
    print(f"\nteacher val acc {100 * doc['teacher_val_accuracy']:.2f}%; fits "
          f"{100 * check['fitted']:.1f}% of its training data"
          + (" (trained without augmentation: with it, it did not fit)" if "effective_base_config" in doc else ""))
    print("chosen: " + format_row({**doc["chosen"], "cell": doc["chosen"]["cell"]}))
    print(f"wrote {os.path.join(out, 'recipe.json')} (use: harness train --recipe {os.path.join(out, 'recipe.json')})")
    return 0


def cmd_panel(args) -> int:
    from harness.panel import format_panel, parse_entries, run_panel
    from harness.train.trio import parse_seeds

    seeds = parse_seeds(args.seeds)
    entries = parse_entries(args.tasks, args.data)
    overrides = {"epochs": args.epochs, "student_epochs": args.student_epochs}
    with executor_from_args(args) as executor:
        doc = run_panel(entries, seeds, args.out, executor=executor, train_overrides=overrides,
                        on_row=lambda row: log.info(
                            f"{row['dataset']}: teacher {100 * row['teacher']['mean']:.2f}%, "
                            f"KD {100 * row['student_kd']['mean']:.2f}% ({row['kd_vs_teacher']['diff_pts']:+.2f} pts), "
                            f"scratch {100 * row['student_scratch']['mean']:.2f}%"))
    print(format_panel(doc, args.format))
    print(f"\nwrote {os.path.join(args.out, 'panel.json')} ({doc['seconds']:.0f} s)")
    return 0


def cmd_size_sweep(args) -> int:
    """`harness sweep --student-scale/--student-widths`: students of several sizes, with and without KD."""
    from harness.size_sweep import GRID_DEFAULTS, format_table, parse_scales, parse_widths, parse_within, run_size_sweep
    from harness.train.trio import parse_seeds

    if args.student_scale is not None and args.student_widths is not None:
        raise OptionError("give --student-scale or --student-widths, not both")
    scales = parse_scales(args.student_scale) if args.student_scale is not None else None
    widths = parse_widths(args.student_widths) if args.student_widths is not None else None
    changed = [f"--{k.replace('_', '-')}" for k, v in GRID_DEFAULTS.items() if getattr(args, k) != v]
    if changed:
        raise OptionError(f"{', '.join(changed)} belong to the recipe sweep; a size sweep trains one recipe "
                          f"(set it with --recipe, --temperature, --alpha, --kd-loss)")
    within = parse_within(1.0 if args.within_pts is None else args.within_pts)
    seeds = parse_seeds(args.seeds or "0,1,2")
    check_train_options(args)
    data, cfg = _data_and_config(args)
    out = args.out or os.path.join("runs", f"{data.name}-size-sweep")
    with executor_from_args(args, args.threads) as executor:
        doc = run_size_sweep(data, cfg, seeds, out, scales=scales, widths=widths, val_fraction=args.val_fraction,
                             within_pts=within, executor=executor)
    print(format_table(doc))
    print(f"\nwrote {os.path.join(out, 'size_sweep.json')} and {os.path.join(out, 'size_sweep.html')} "
          f"({doc['seconds']['total']:.0f} s)")
    return 0


def bench_config_from_args(args, quick_default: bool = False, **fixed):
    """The BenchConfig the options ask for (validated on construction); `fixed` wins over them."""
    from harness.bench import BenchConfig

    given = {"backends": args.backends, "suites": args.suites, "batch_sizes": args.batch_sizes,
             "throughput_batch_sizes": args.throughput_batch_sizes, "threads": args.threads,
             "device": args.device, "graph_optimization": args.graph_optimization, "processes": args.processes,
             "variants": args.variants, "calibration": args.calibration,
             "calibration_samples": args.calibration_samples, "latency_bound_ms": args.latency_bound_ms,
             "serving_max_batch": args.serving_max_batch, "serving_max_wait_ms": args.serving_max_wait_ms,
             "serving_min_duration_ms": args.serving_min_duration_ms,
             "serving_min_queries": args.serving_min_queries, "serving_repeats": args.serving_repeats}
    kwargs = {k: v for k, v in given.items() if v is not None}
    kwargs.update(arena=not args.no_arena, external_data=bool(args.external_data),
                  quick=quick_default or bool(args.quick), profile=bool(getattr(args, "profile", False)))
    if "serving" in (args.suites or ()):  # LoadGen's logs go beside the results file (`run --out` is a folder)
        from harness.bench import loadgen_dir

        out = str(getattr(args, "out", None) or "results.json")
        kwargs["serving_log_dir"] = loadgen_dir(out if out.endswith(".json") else os.path.join(out, "results.json"))
    kwargs.update(fixed)
    return BenchConfig(**kwargs)


def _record_history(args, results_path) -> None:
    if args.no_history:
        return
    from harness import history

    db = args.history or history.DEFAULT_DB
    history.append(results_path, db)


def cmd_bench(args) -> int:
    from harness import bench
    from harness.report import build_report
    from harness.results import write_results
    from harness.tasks import load_npz

    cfg = bench_config_from_args(args)
    if sum(bool(x) for x in (args.onnx, args.run_dir, args.model)) > 1:
        raise OptionError("give one of a training run folder, --onnx files or --model factories")
    if args.model_kwargs and not args.model:
        raise OptionError("--model-kwargs belongs to --model")
    if args.model:
        return _bench_user_models(args, cfg)
    if args.dataset or args.task:
        raise OptionError("--task and --dataset go with --model; a run folder knows its data, --onnx takes --data")
    if args.onnx:
        specs = bench.parse_onnx_specs(args.onnx)
        shape = bench.parse_input_shape(args.input_shape)
        if args.backends is None:
            cfg = replace(cfg, backends=["onnxruntime"])
        out = Path(args.out or "results.json")
        data = load_npz(args.data) if args.data else None
        if data is None and "accuracy" in cfg.suites and args.suites is None:
            cfg = replace(cfg, suites=[s for s in cfg.suites if s != "accuracy"])
        sources = bench.onnx_sources(specs, shape, data, task=data.name if data else "onnx")
        cfg = bench.fit_fixed_batch(cfg, sources, explicit_batch=args.batch_sizes is not None,
                                    explicit_throughput=args.throughput_batch_sizes is not None)
        sources = bench.add_variants(sources, data, cfg)
    elif args.run_dir:
        summary, run_dir = bench.load_run(args.run_dir)
        out = Path(args.out or (run_dir / "results.json"))
        data = bench.run_dataset(summary)
        sources = None
    else:
        raise OptionError("give a training run folder (harness bench RUN_DIR) or --onnx LABEL=FILE.onnx")
    from harness.fileio import ensure_writable_dir

    ensure_writable_dir(out.parent if str(out.parent) else ".")
    if sources is None:
        sources = bench.export_run(summary, run_dir, data, cfg)
    results = bench.bench_models(sources, data, cfg)
    if args.run_dir:
        results.tasks[summary["task"]] = summary
    path = write_results(out, results)
    _record_history(args, path)
    print(build_report(results, report_format(args), report_target(args)))
    print(f"\nwrote {path}")
    return 0


_USER_RUN_OPTIONS = ("teacher", "student", "teacher_kwargs", "student_kwargs", "teacher_checkpoint", "data",
                     "dataset", "dataset_kwargs")


def cmd_run(args) -> int:
    from harness.report import build_report
    from harness.run import main_job
    from harness.train.trio import parse_seeds

    # The main job shows "distill, quantize, or both": int8 variants unless --variants says otherwise.
    cfg = bench_config_from_args(args, quick_default=not args.full,
                                 **({} if args.variants is not None else {"variants": list(MAIN_JOB_VARIANTS)}))
    seeds = parse_seeds(args.seeds)
    if any(getattr(args, k) is not None for k in _USER_RUN_OPTIONS):
        return _run_user_experiment(args, cfg, seeds)
    overrides = {"epochs": args.epochs} if args.epochs else None
    from harness.executor import make_executor

    # --threads is the bench's here; training keeps its own default unless --threads-per-job says.
    exec_cfg = executor_config_from_args(args)
    results, path = main_job(args.out, tasks=args.tasks, seeds=seeds, retrain=args.retrain, bench_cfg=cfg,
                             train_overrides=overrides, recipe=args.recipe,
                             executor_factory=lambda: make_executor(exec_cfg))
    _record_history(args, path)
    print(build_report(results, report_format(args), report_target(args)))
    print(f"\nwrote {path} ({results.config.get('wall_seconds', 0):.0f} s)")
    return 0


def cmd_report(args) -> int:
    from harness.report import FORMATS, format_for_path, write_report

    fmt = format_for_path(args.out, args.format)
    if args.details:
        if fmt not in ("table", "full"):
            raise OptionError(f"--details goes with the terminal table; --format {fmt} already has every table")
        fmt = "full"
    if fmt not in FORMATS:
        raise OptionError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    path = write_report(args.results, fmt, args.out, report_target(args))
    if path is not None:
        log.info(f"wrote {path}")
    return 0


def cmd_merge(args) -> int:
    from harness.fileio import ensure_writable_dir
    from harness.hosts import host_label
    from harness.results import load_results, write_results
    from harness.results_merge import merge_results

    if len(args.results) < 2:
        raise OptionError("merge needs at least two results files")
    out = Path(args.out)
    if out.is_dir():
        raise OptionError(f"--out is a directory, not a file: {out}")
    ensure_writable_dir(out.parent if str(out.parent) else ".")  # fail before reading anything large
    merged = merge_results([load_results(p) for p in args.results])
    path = write_results(out, merged)
    for fp, env in merged.hosts.items():
        n = sum(1 for m in merged.measurements if m.host == fp)
        print(f"host {host_label(env, fp)}: {n} measurements")
    print(f"wrote {path} ({len(args.results)} files, {len(merged.hosts)} host(s))")
    return 0


def cmd_gate(args) -> int:
    from harness import gate
    from harness.gate.ab import speed_basis
    from harness.results import load_results

    rules = gate.load_rules(args.rules) if args.rules else None
    baseline, current = load_results(args.baseline), load_results(args.current)
    basis = speed_basis(baseline, current, mode=args.ab, baseline_models=args.baseline_models,
                        current_models=args.current_models, processes=args.ab_processes, threads=args.ab_threads,
                        batch_sizes=args.ab_batch_sizes)
    verdicts = gate.evaluate_gate(baseline, current, rules, allow_missing=args.allow_missing, ab=basis.ab)
    print(gate.format_gate(verdicts, notes=[basis.note, gate.environment_note(baseline, current)]))
    code = gate.gate_exit_code(verdicts)
    if args.update_baseline:
        gate.update_baseline(args.current, args.baseline)
        log.info(f"baseline updated: {args.baseline}")
    return code


def cmd_compare(args) -> int:
    from harness.compare import CompareConfig, compare, format_compare, parse_roles
    from harness.results import write_results

    cfg = CompareConfig(backends=tuple(args.backends), batch_sizes=tuple(args.ab_batch_sizes or [1]),
                        threads=args.ab_threads, processes=args.ab_processes)
    res = compare(args.baseline, args.current, baseline_models=args.baseline_models,
                  current_models=args.current_models, roles=parse_roles(args.roles), config=cfg)
    print(format_compare(res))
    if args.out:
        path = write_results(args.out, res)
        print(f"wrote {path}")
    return 0


def cmd_history(args) -> int:
    from harness import history

    db = args.db or history.DEFAULT_DB
    if args.append:
        history.append(args.append, db)
    if args.list == "metrics":
        print("\n".join(history.list_metrics(db)))
        return 0
    if args.list == "runs":
        print(history.list_runs(db).to_string(index=False))
        return 0
    df = history.query(db, args.metric, task=args.task, model=args.model, backend=args.backend,
                       batch_size=args.batch_size, suite=args.suite)
    print(history.format_history(df))
    return 0
