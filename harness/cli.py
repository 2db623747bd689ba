"""Thin command line: parse, call one function, turn HarnessError into one line + exit 2."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from harness.errors import HarnessError, OptionError
from harness.options import parse_list

EXIT_BAD_INPUT = 2

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        raise OptionError(f"{self.prog}: {message}")


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise OptionError(f"{name} must be a positive integer, got {text!r}") from None
        if v < 1:
            raise OptionError(f"{name} must be a positive integer, got {text!r}")
        return v

    return parse


def _finite_float(name: str):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise OptionError(f"{name} must be a number, got {text!r}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise OptionError(f"{name} must be finite, got {text!r}")
        return v

    return parse


def _int_list(name: str):
    def parse(text: str) -> list[int]:
        vals = parse_list(text, name, int, "positive integers")
        if any(v < 1 for v in vals):
            raise OptionError(f"{name} must be a comma-separated list of positive integers, got {text!r}")
        return sorted(set(vals))

    return parse


def _str_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _verbosity_parser() -> argparse.ArgumentParser:
    """--quiet / --verbose, shared by the commands that report progress."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", "-q", action="store_true", help="warnings and errors only, no progress")
    g.add_argument("--verbose", "-v", action="store_true", help="also print debug detail")
    return p


class _CliFormatter(logging.Formatter):
    """Plain lines: `[bench] message` (the module's short name), the CLI's own lines bare, a warning marked."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg = f"{msg}\n{self.formatException(record.exc_info)}"
        if record.levelno >= logging.WARNING:
            msg = f"{record.levelname.lower()}: {msg}"
        if record.name != __name__:
            msg = f"[{record.name.rsplit('.', 1)[-1]}] {msg}"
        return msg


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (so redirected or captured stderr gets the lines)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(args) -> tuple[logging.Handler, int]:
    """The `harness` loggers' level from --quiet/--verbose (default INFO), one handler to stderr.
    Returns what `restore_logging` needs to undo it (main() may run more than once in one process)."""
    level = logging.WARNING if getattr(args, "quiet", False) else (
        logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    root = logging.getLogger("harness")
    handler = _StderrHandler()
    handler.setFormatter(_CliFormatter())
    previous = root.level
    root.setLevel(level)
    root.addHandler(handler)
    return handler, previous


def restore_logging(state: tuple[logging.Handler, int]) -> None:
    handler, previous = state
    root = logging.getLogger("harness")
    root.removeHandler(handler)
    root.setLevel(previous)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default=None, help="comma-separated student seeds (default 0)")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=None, help="epochs for every role")
    p.add_argument("--student-epochs", type=_positive_int("--student-epochs"), default=None)
    p.add_argument("--temperature", "-T", type=_finite_float("--temperature"), default=None, dest="temperature")
    p.add_argument("--alpha", type=_finite_float("--alpha"), default=None)
    p.add_argument("--kd-loss", default=None, help="hinton (default) or dkd")
    p.add_argument("--kd-logits", default=None, choices=None, help="cached (default) or live")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="jitter/scale/shift augmentation (needs live logits); --no-augment turns a recipe's off")
    p.add_argument("--mixup", type=_finite_float("--mixup"), default=None,
                   help="mixup Beta(m, m) concentration, e.g. 0.4 (0 = off; needs live logits)")
    p.add_argument("--normalize", default=None, choices=("auto", "dataset", "sample", "none"),
                   help="input normalisation inside the model (default auto: per sample when series scales "
                        "differ by more than 100x on the training split, else per-channel dataset statistics)")
    p.add_argument("--calibrate-teacher", action=argparse.BooleanOptionalAction, default=None,
                   help="temperature-scale the teacher's logits")
    p.add_argument("--recipe", default=None, help="a recipe JSON saved by `harness sweep`")
    p.add_argument("--threads", type=_positive_int("--threads"), default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="kd-harness: what knowledge distillation buys a 1D or 3D CNN")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    verbosity = [_verbosity_parser()]

    p = sub.add_parser("tasks", help="list the built-in tasks")
    p.add_argument("--json", action="store_true", help="machine-readable list")

    p = sub.add_parser("train", parents=verbosity, help="train teacher, scratch student and KD student for a task")
    p.add_argument("--task", default=None)
    p.add_argument("--data", default=None, help="custom data: npz with X_train, y_train, X_test, y_test")
    p.add_argument("--out", default=None, help="run folder (default runs/<task>)")
    p.add_argument("--teacher-config", default=None, help="teacher model config: JSON text or a .json file")
    p.add_argument("--student-config", default=None, help="student model config: JSON text or a .json file")
    _add_train_options(p)

    p = sub.add_parser("sweep", parents=verbosity,
                       help="grid-search the KD recipe on a validation split of the training data")
    p.add_argument("--task", default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--temperatures", default="1,2,4,8")
    p.add_argument("--alphas", default="0.1,0.5,0.9")
    p.add_argument("--kd-losses", type=_str_list, default=["hinton"], help="hinton and/or dkd")
    p.add_argument("--val-fraction", type=_finite_float("--val-fraction"), default=0.2)
    p.add_argument("--out", default=None, help="folder for sweep.json and recipe.json (default runs/<task>-sweep)")
    _add_train_options(p)

    p = sub.add_parser("bench", parents=verbosity, help="measure a training run's models, or ONNX files you bring")
    p.add_argument("run_dir", nargs="?", default=None, help="a `harness train` output folder")
    p.add_argument("--onnx", action="append", default=[], metavar="LABEL=FILE.onnx",
                   help="measure ONNX files instead of a run (repeat: --onnx teacher=t.onnx --onnx student=s.onnx)")
    p.add_argument("--data", default=None, help="npz with X_test/y_test for the accuracy suite (--onnx mode)")
    p.add_argument("--input-shape", default=None, help="sample shape without batch axis, e.g. 1,427 (dynamic models)")
    _add_bench_options(p)
    p.add_argument("--out", default=None, help="results JSON (default RUN_DIR/results.json or results.json)")

    p = sub.add_parser("run", parents=verbosity,
                       help="the main job: train (or reuse) the default 1D and 3D trios, bench, compare")
    p.add_argument("--out", default="runs/default", help="folder for runs and results.json (default runs/default)")
    p.add_argument("--retrain", action="store_true", help="train again even if a matching run exists")
    p.add_argument("--tasks", type=_str_list, default=None, help="comma-separated tasks (default osuleaf,moving-digits)")
    p.add_argument("--seeds", default=None, help="student seeds (default 0)")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=None)
    p.add_argument("--full", action="store_true", help="full-length timing windows (default: quick windows)")
    p.add_argument("--recipe", default=None, help="a recipe JSON from `harness sweep` (default: built-in recipes)")
    _add_bench_options(p)

    p = sub.add_parser("report", help="compare teacher, scratch and KD students from results files")
    p.add_argument("results", nargs="+", help="harness results JSON or pytest-benchmark JSON files")
    p.add_argument("--format", default=None, help="table (default), md, csv, html or json")
    p.add_argument("--out", default=None, help="write to this file (format from suffix if --format not given)")

    p = sub.add_parser("gate", help="fail (exit 1) when the current results regress against a baseline")
    p.add_argument("--baseline", required=True)
    p.add_argument("--current", required=True)
    p.add_argument("--rules", default=None, help="rules file (JSON or TOML); see docs/gate-rules.md")
    p.add_argument("--update-baseline", action="store_true", help="after gating, copy current over baseline")
    p.add_argument("--allow-missing", action="store_true",
                   help="baseline rows the current file lacks (renamed or dropped task, model, backend, batch size) "
                        "are skipped with a note instead of failing the gate")

    p = sub.add_parser("history", help="a metric's trend over benches (SQLite)")
    p.add_argument("--db", default=None, help="history database (default results/history.sqlite)")
    p.add_argument("--metric", default="p50_ms")
    p.add_argument("--task", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default=None)
    p.add_argument("--suite", default=None)
    p.add_argument("--batch-size", type=_positive_int("--batch-size"), default=None)
    p.add_argument("--append", default=None, metavar="RESULTS", help="append a results file first")
    return parser


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backends", type=_str_list, default=None, help="torch,onnxruntime (default both)")
    p.add_argument("--suites", type=_str_list, default=None,
                   help="accuracy,latency,paired,throughput,memory,storage,cold_start,roofline (default all)")
    p.add_argument("--batch-sizes", type=_int_list("--batch-sizes"), default=None, help="latency/paired batch sizes (default 1,8)")
    p.add_argument("--throughput-batch-sizes", type=_int_list("--throughput-batch-sizes"), default=None)
    p.add_argument("--threads", type=_positive_int("--threads"), default=None, help="intra-op threads (default: physical cores)")
    p.add_argument("--device", default=None, choices=None, help="cpu (default) or cuda")
    p.add_argument("--graph-optimization", default=None, help="onnxruntime: disable|basic|extended|all")
    p.add_argument("--no-arena", action="store_true", help="onnxruntime: disable the CPU memory arena")
    p.add_argument("--external-data", action="store_true", help="export ONNX weights to a side .data file")
    p.add_argument("--quick", action="store_true", help="short timing windows (CI smoke runs)")
    p.add_argument("--processes", type=_positive_int("--processes"), default=None,
                   help="fresh worker process sets the timed suites run in; CIs span them (default 3, quick 2)")
    p.add_argument("--history", default=None, help="append to this SQLite history (default results/history.sqlite)")
    p.add_argument("--no-history", action="store_true", help="do not append to the history database")


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


def train_config_from_args(args, base=None):
    from harness.train.recipes import load_recipe
    from harness.train.trainer import TrainConfig

    cfg = base or TrainConfig()
    if getattr(args, "recipe", None):
        cfg = load_recipe(args.recipe, cfg)
    overrides = dict(
        epochs=args.epochs, student_epochs=args.student_epochs, temperature=args.temperature, alpha=args.alpha,
        kd_loss=args.kd_loss, kd_logits=args.kd_logits, augment=args.augment, mixup=args.mixup,
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


def cmd_train(args) -> int:
    from harness.train.summary_table import format_summary
    from harness.train.trio import parse_seeds, train_trio

    seeds = parse_seeds(args.seeds)
    train_config_from_args(args)  # bad options fail before the data is read
    teacher_cfg = _model_config(args.teacher_config, "--teacher-config")
    student_cfg = _model_config(args.student_config, "--student-config")
    data, cfg = _data_and_config(args)
    for what, mc in (("--teacher-config", teacher_cfg), ("--student-config", student_cfg)):
        if mc and (mc["in_channels"] != data.in_channels or mc["num_classes"] != data.classes):
            raise OptionError(f"{what} has in_channels={mc['in_channels']}, num_classes={mc['num_classes']}; "
                              f"the data has {data.in_channels} channels and {data.classes} classes")
    out = args.out or os.path.join("runs", data.name)
    data_ref = {"npz": str(Path(args.data).resolve())} if args.data else {"task": data.name, "data_seed": 0}
    summary = train_trio(data, cfg, seeds, out, data_ref=data_ref,
                         teacher_config=teacher_cfg, student_config=student_cfg)
    print(format_summary(summary))
    print(f"\nwrote {os.path.join(out, 'summary.json')}")
    return 0


def cmd_sweep(args) -> int:
    from harness.sweep import SweepGrid, format_row, parse_float_list, run_sweep
    from harness.train.trio import parse_seeds

    grid = SweepGrid(parse_float_list(args.temperatures, "--temperatures"), parse_float_list(args.alphas, "--alphas"),
                     args.kd_losses)
    seeds = parse_seeds(args.seeds or "0,1,2")
    train_config_from_args(args)  # bad options fail before the data is read
    data, cfg = _data_and_config(args)
    out = args.out or os.path.join("runs", f"{data.name}-sweep")
    fixed = {k: v for k, v in cfg.to_dict().items() if k not in ("temperature", "alpha", "kd_loss", "threads")}
    log.info("grid over kd_loss x T x alpha; fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    doc = run_sweep(data, cfg, grid, seeds, out, val_fraction=args.val_fraction,
                    on_row=lambda row: print(format_row(row), flush=True))
    print(f"\nteacher val acc {100 * doc['teacher_val_accuracy']:.2f}%")
    print("chosen: " + format_row({**doc["chosen"], "cell": doc["chosen"]["cell"]}))
    print(f"wrote {os.path.join(out, 'recipe.json')} (use: harness train --recipe {os.path.join(out, 'recipe.json')})")
    return 0


def bench_config_from_args(args, quick_default: bool = False, **fixed):
    """The BenchConfig the options ask for (validated on construction); `fixed` wins over them."""
    from harness.bench import BenchConfig

    given = {"backends": args.backends, "suites": args.suites, "batch_sizes": args.batch_sizes,
             "throughput_batch_sizes": args.throughput_batch_sizes, "threads": args.threads,
             "device": args.device, "graph_optimization": args.graph_optimization, "processes": args.processes}
    kwargs = {k: v for k, v in given.items() if v is not None}
    kwargs.update(arena=not args.no_arena, external_data=bool(args.external_data),
                  quick=quick_default or bool(args.quick))
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
    if args.onnx and args.run_dir:
        raise OptionError("give either a training run folder or --onnx files, not both")
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
    print(build_report(results, "table"))
    print(f"\nwrote {path}")
    return 0


def cmd_run(args) -> int:
    from harness.report import build_report
    from harness.run import main_job
    from harness.train.trio import parse_seeds

    cfg = bench_config_from_args(args, quick_default=not args.full)
    seeds = parse_seeds(args.seeds)
    overrides = {"epochs": args.epochs} if args.epochs else None
    results, path = main_job(args.out, tasks=args.tasks, seeds=seeds, retrain=args.retrain, bench_cfg=cfg,
                             train_overrides=overrides, recipe=args.recipe)
    _record_history(args, path)
    print(build_report(results, "table"))
    print(f"\nwrote {path} ({results.config.get('wall_seconds', 0):.0f} s)")
    return 0


def cmd_report(args) -> int:
    from harness.report import FORMATS, format_for_path, write_report

    fmt = format_for_path(args.out, args.format)
    if fmt not in FORMATS:
        raise OptionError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    path = write_report(args.results, fmt, args.out)
    if path is not None:
        log.info(f"wrote {path}")
    return 0


def cmd_gate(args) -> int:
    from harness import gate
    from harness.results import load_results

    rules = gate.load_rules(args.rules) if args.rules else None
    baseline, current = load_results(args.baseline), load_results(args.current)
    verdicts = gate.evaluate_gate(baseline, current, rules, allow_missing=args.allow_missing)
    print(gate.format_gate(verdicts, notes=[gate.environment_note(baseline, current)]))
    code = gate.gate_exit_code(verdicts)
    if args.update_baseline:
        gate.update_baseline(args.current, args.baseline)
        log.info(f"baseline updated: {args.baseline}")
    return code


def cmd_history(args) -> int:
    from harness import history

    db = args.db or history.DEFAULT_DB
    if args.append:
        history.append(args.append, db)
    df = history.query(db, args.metric, task=args.task, model=args.model, backend=args.backend,
                       batch_size=args.batch_size, suite=args.suite)
    print(history.format_history(df))
    return 0


COMMANDS = {"tasks": cmd_tasks, "train": cmd_train, "sweep": cmd_sweep, "bench": cmd_bench, "run": cmd_run, "report": cmd_report,
            "gate": cmd_gate, "history": cmd_history}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_BAD_INPUT
        state = configure_logging(args)
        try:
            return COMMANDS[args.command](args)
        finally:
            restore_logging(state)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
