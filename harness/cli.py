"""Thin command line: parse, call one function, turn HarnessError into one line + exit 2."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from harness.report_options import add_report_options
from harness.errors import HarnessError, OptionError
from harness.options import parse_list

EXIT_BAD_INPUT = 2

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        raise OptionError(f"{self.prog}: {message}")


def _positive_int(name: str, minimum: int = 1):
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise OptionError(f"{name} must be {what}, got {text!r}") from None
        if v < minimum:
            raise OptionError(f"{name} must be {what}, got {text!r}")
        return v

    return parse


def _nonneg_int(name: str):
    return _positive_int(name, minimum=0)


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


def _config_parser() -> argparse.ArgumentParser:
    """--config FILE: the command's options from a TOML or JSON file (harness/experiment.py)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="read options from a TOML/JSON experiment file (keys are this command's long options; "
                        "the command line wins)")
    return p


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
    p.add_argument("--min-epoch-samples", type=_nonneg_int("--min-epoch-samples"), default=None,
                   help="an epoch draws at least this many samples: a smaller training set is passed over "
                        "several times per epoch (0 = one pass)")
    p.add_argument("--even-batches", action=argparse.BooleanOptionalAction, default=None,
                   help="split each epoch into batches differing in size by at most one (36 samples at batch 32: "
                        "18+18, not 32+4); --no-even-batches turns a recipe's off")
    p.add_argument("--temperature", "-T", type=_finite_float("--temperature"), default=None, dest="temperature")
    p.add_argument("--alpha", type=_finite_float("--alpha"), default=None)
    p.add_argument("--kd-loss", default=None,
                   help="hinton (default), dkd, or at (Hinton + attention transfer on the last feature maps; live logits)")
    p.add_argument("--kd-logits", default=None, choices=None, help="cached (default) or live")
    p.add_argument("--at-beta", type=_finite_float("--at-beta"), default=None,
                   help="weight of the attention-transfer term (--kd-loss at; default 10)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="jitter/scale/shift augmentation (needs live logits); --no-augment turns a recipe's off")
    p.add_argument("--mixup", type=_finite_float("--mixup"), default=None,
                   help="mixup Beta(m, m) concentration, e.g. 0.4 (0 = off; needs live logits)")
    p.add_argument("--normalize", default=None, choices=("auto", "dataset", "sample", "sample_scale", "none"),
                   help="input normalisation inside the model (default auto: sample_scale when series scales "
                        "differ by more than 100x on the training split, else per-channel dataset statistics; "
                        "sample: z-normalise each sample; sample_scale: that, plus each sample's log-scale as "
                        "an extra channel)")
    p.add_argument("--calibrate-teacher", action=argparse.BooleanOptionalAction, default=None,
                   help="temperature-scale the teacher's logits")
    p.add_argument("--recipe", default=None, help="a recipe JSON saved by `harness sweep`")
    p.add_argument("--threads", type=_positive_int("--threads"), default=None)


# `harness run` trains in a pool of single-thread workers wherever there is more than one core.
MAIN_JOB_EXECUTOR = "pool" if (os.cpu_count() or 1) >= 2 else "local"


def _add_executor_options(p: argparse.ArgumentParser, default: str = "local") -> None:
    g = p.add_argument_group("where training jobs run (each model of each seed and cell is one job)")
    g.add_argument("--executor", default=default, choices=("local", "pool", "ray"),
                   help="local: one job after another in this process; pool: --jobs local worker "
                        "processes; ray: a Ray cluster (--ray-address, or a local one)"
                        + (" (default local)" if default == "local" else
                           " (default pool, one single-thread job per core; local on a 1-core machine)"))
    g.add_argument("--jobs", type=_positive_int("--jobs"), default=None,
                   help="jobs in flight at once (pool default: cores / threads-per-job; ray default: cluster CPUs)")
    g.add_argument("--threads-per-job", type=_positive_int("--threads-per-job"), default=None,
                   help="torch threads (and declared CPUs) per job; default --threads, else cores / jobs")
    g.add_argument("--ray-address", default=None, help="an existing Ray cluster, e.g. ray://head:10001 or auto")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="kd-harness: what knowledge distillation buys a 1D or 3D CNN")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    parser.set_defaults(subcommands=sub.choices)
    verbosity = [_verbosity_parser(), _config_parser()]

    p = sub.add_parser("tasks", help="list the built-in tasks")
    p.add_argument("--json", action="store_true", help="machine-readable list")

    p = sub.add_parser("train", parents=verbosity, help="train teacher, scratch student and KD student for a task")
    _add_data_options(p)
    p.add_argument("--out", default=None, help="run folder (default runs/<task>)")
    _add_model_options(p)
    p.add_argument("--teacher-config", default=None, help="built-in teacher config: JSON text or a .json file")
    p.add_argument("--student-config", default=None, help="built-in student config: JSON text or a .json file")
    _add_train_options(p)
    _add_executor_options(p)

    p = sub.add_parser("sweep", parents=verbosity,
                       help="grid-search the KD recipe on a validation split of the training data")
    p.add_argument("--task", default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--temperatures", default="1,2,4,8")
    p.add_argument("--alphas", default="0.1,0.5,0.9")
    p.add_argument("--kd-losses", type=_str_list, default=["hinton"], help="hinton, dkd and/or at")
    p.add_argument("--val-fraction", type=_finite_float("--val-fraction"), default=0.2)
    p.add_argument("--out", default=None, help="folder for sweep.json and recipe.json (default runs/<task>-sweep)")
    p.add_argument("--student-scale", default=None, metavar="0.25,0.5,1,2",
                   help="size sweep instead: students at these multiples of the default student's widths")
    p.add_argument("--student-widths", default=None, metavar="6-12,12-24",
                   help="size sweep instead: students with these widths (sizes by commas, layers by hyphens)")
    p.add_argument("--within-pts", type=_finite_float("--within-pts"), default=None,
                   help="size sweep: name the smallest student within this many points of the teacher (default 1)")
    _add_train_options(p)
    _add_executor_options(p)

    p = sub.add_parser("panel", parents=verbosity,
                       help="the default recipe over many datasets x seeds, against published accuracies")
    p.add_argument("--tasks", type=_str_list, default=None,
                   help="built-in tasks (default: osuleaf,gunpoint,arrowhead,acsf1,italypowerdemand,basicmotions,"
                        "japanesevowels,plaid unless --data is given)")
    p.add_argument("--data", action="append", default=None, metavar="[NAME=]FILE.npz",
                   help="a dataset of your own (repeatable)")
    p.add_argument("--seeds", default="0,1,2", help="student seeds (default 0,1,2)")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=None, help="epochs for every role")
    p.add_argument("--student-epochs", type=_positive_int("--student-epochs"), default=None)
    p.add_argument("--format", default="simple", choices=("simple", "github"), help="table style (github: markdown)")
    p.add_argument("--out", default="runs/panel", help="folder: one run per dataset + panel.json (default runs/panel)")
    _add_executor_options(p)

    p = sub.add_parser("bench", parents=verbosity, help="measure a training run's models, or ONNX files you bring")
    p.add_argument("run_dir", nargs="?", default=None, help="a `harness train` output folder")
    p.add_argument("--onnx", action="append", default=[], metavar="LABEL=FILE.onnx",
                   help="measure ONNX files instead of a run (repeat: --onnx teacher=t.onnx --onnx student=s.onnx)")
    p.add_argument("--model", action="append", default=[], metavar="ROLE=PKG.MOD:FACTORY[@CHECKPOINT]",
                   help="measure your trained PyTorch models (repeat: --model teacher=pkg.m:big@t.pt --model "
                        "student_kd=pkg.m:small@s.pt); other role names are judged as students against teacher")
    p.add_argument("--model-kwargs", action="append", default=[], metavar="ROLE=JSON",
                   help="keyword arguments for a --model factory (repeatable)")
    _add_data_options(p, "npz with X_train/y_train/X_test/y_test (accuracy, parity, int8 calibration)")
    p.add_argument("--input-shape", default=None, help="sample shape without batch axis, e.g. 1,427 (dynamic models)")
    _add_bench_options(p)
    p.add_argument("--out", default=None, help="results JSON (default RUN_DIR/results.json or results.json)")
    add_report_options(p)

    p = sub.add_parser("run", parents=verbosity,
                       help="the main job: train (or reuse) the default 1D and 3D trios, bench, compare")
    p.add_argument("--out", default="runs/default", help="folder for runs and results.json (default runs/default)")
    p.add_argument("--retrain", action="store_true", help="train again even if a matching run exists")
    p.add_argument("--tasks", type=_str_list, default=None, help="comma-separated tasks (default osuleaf,moving-digits)")
    p.add_argument("--seeds", default=None, help="student seeds (default 0)")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=None)
    p.add_argument("--full", action="store_true", help="full-length timing windows (default: quick windows)")
    p.add_argument("--recipe", default=None, help="a recipe JSON from `harness sweep` (default: built-in recipes)")
    g = p.add_argument_group("your own models and data instead of the default trios (one data source)")
    _add_model_options(g)
    g.add_argument("--data", default=None, help="your data: npz with X_train, y_train, X_test, y_test")
    g.add_argument("--dataset", default=None, metavar="PKG.MOD:FACTORY",
                   help="your data: a callable returning (train, test[, class_names]) torch Datasets")
    g.add_argument("--dataset-kwargs", default=None, metavar="JSON", help="keyword arguments for --dataset")
    _add_bench_options(p)
    add_report_options(p)
    # The main job's independent training jobs (two tasks' teachers and students) fill every core: on 2 cores
    # its training took 184 s in a pool against 241 s serially with 2 torch threads.
    _add_executor_options(p, default=MAIN_JOB_EXECUTOR)

    p = sub.add_parser("report", help="compare teacher, scratch and KD students from results files")
    p.add_argument("results", nargs="+", help="harness results JSON or pytest-benchmark JSON files")
    p.add_argument("--format", default=None,
                   help="table (default: one screen per task), full (every table), md, csv, html or json")
    p.add_argument("--out", default=None, help="write to this file (format from suffix if --format not given)")
    add_report_options(p)

    p = sub.add_parser("merge", help="combine results files from several hosts into one (hosts kept apart)")
    p.add_argument("results", nargs="+", help="harness results JSON files (two or more)")
    p.add_argument("--out", required=True, help="the merged results JSON (written atomically)")

    p = sub.add_parser("gate", help="fail (exit 1) when the current results regress against a baseline")
    p.add_argument("--baseline", required=True)
    p.add_argument("--current", required=True)
    p.add_argument("--rules", default=None, help="rules file (JSON or TOML); see docs/gate-rules.md")
    p.add_argument("--update-baseline", action="store_true", help="after gating, copy current over baseline")
    p.add_argument("--allow-missing", action="store_true",
                   help="baseline rows the current file lacks (renamed or dropped task, model, backend, batch size) "
                        "are skipped with a note instead of failing the gate")

    p.add_argument("--ab", dest="ab", action="store_const", const="on", default="auto",
                   help="judge speed by A/B timing of the baseline's models beside the current ones (default: "
                        "when the baseline's ONNX files are available and unchanged; else the ratio of speedups)")
    p.add_argument("--no-ab", dest="ab", action="store_const", const="off", help="judge speed by the ratio of speedups")
    _add_ab_options(p, "A/B timing")

    p = sub.add_parser("compare", help="time each role's baseline build beside its current build (A/B, same processes)")
    p.add_argument("baseline", help="baseline results file or run folder (its results.json records the ONNX files)")
    p.add_argument("current", help="current results file or run folder")
    p.add_argument("--roles", default=None, help="only these roles (comma-separated; default: every common role)")
    p.add_argument("--backends", type=_str_list, default=["onnxruntime"], help="ONNX backends (default onnxruntime)")
    _add_ab_options(p, "timing")
    p.add_argument("--out", default=None, help="write the A/B measurements as a results JSON")

    from harness.profile_cli import add_profile_parser

    add_profile_parser(sub, _positive_int)

    p = sub.add_parser("history", help="a metric's trend over benches (SQLite)")
    p.add_argument("--db", default=None, help="history database (default results/history.sqlite)")
    p.add_argument("--metric", default="p50_ms")
    p.add_argument("--task", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default=None)
    p.add_argument("--suite", default=None)
    p.add_argument("--batch-size", type=_positive_int("--batch-size"), default=None)
    p.add_argument("--append", default=None, metavar="RESULTS", help="append a results file first")
    p.add_argument("--list", choices=("metrics", "runs"), default=None,
                   help="what the database holds instead of a trend: the metric names, or the benches stored")
    return parser


def _add_ab_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--baseline-models", default=None, metavar="DIR",
                   help="the baseline's ONNX files, by file name, instead of the paths its results record")
    p.add_argument("--current-models", default=None, metavar="DIR", help="the same for the current results")
    p.add_argument("--ab-processes", type=_positive_int("--ab-processes"), default=3,
                   help=f"{what}: fresh worker process sets (default 3)")
    p.add_argument("--ab-threads", type=_positive_int("--ab-threads"), default=None,
                   help=f"{what}: intra-op threads (default: the current file's paired runs', else physical cores)")
    p.add_argument("--ab-batch-sizes", type=_int_list("--ab-batch-sizes"), default=None,
                   help=f"{what}: batch sizes (default: the current file's paired batch sizes, else 1)")


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
    p.add_argument("--quick", action="store_true", help="short timing windows (CI smoke runs); paired only at the first batch size, "
                   "throughput at the latency batch sizes (read from its calls)")
    p.add_argument("--processes", type=_positive_int("--processes"), default=None,
                   help="fresh worker process sets the timed suites run in; CIs span them (default 3, quick 2)")
    p.add_argument("--variants", type=_str_list, default=None, metavar="fp32,int8,int8-nncf,int8-dynamic",
                   help="ONNX variants measured beside each model, role <role>@<variant> (bench: fp32; run: fp32,int8): "
                        "int8 = ONNX Runtime's static QDQ per-channel, calibrated on training data; int8-nncf = NNCF's "
                        "post-training quantisation (.[openvino]), same calibration rows; int8-dynamic = quantize_dynamic")
    p.add_argument("--calibration", default=None, help="int8 calibration: minmax (default), entropy or percentile")
    p.add_argument("--calibration-samples", type=_positive_int("--calibration-samples"), default=None,
                   help="stratified training samples int8 calibrates on (default 256, capped at the training size)")
    p.add_argument("--latency-bound-ms", type=_finite_float("--latency-bound-ms"), default=None,
                   help="serving suite: the Server scenario's p99 bound (default: 10 x the fp32 teacher's LoadGen "
                        "SingleStream p99 on each backend)")
    p.add_argument("--serving-max-batch", type=_positive_int("--serving-max-batch"), default=None,
                   help="serving suite: dynamic batching's largest batch (default 8)")
    p.add_argument("--serving-max-wait-ms", type=_finite_float("--serving-max-wait-ms"), default=None,
                   help="serving suite: how long a batch waits to fill (default: the model's SingleStream p50)")
    p.add_argument("--serving-min-duration-ms", type=_positive_int("--serving-min-duration-ms"), default=None,
                   help="serving suite: LoadGen's min_duration per run (default 1000)")
    p.add_argument("--serving-min-queries", type=_positive_int("--serving-min-queries"), default=None,
                   help="serving suite: LoadGen's min_query_count per run (default 1024)")
    p.add_argument("--serving-repeats", type=_positive_int("--serving-repeats"), default=None,
                   help="serving suite: Server max-QPS searches per model and batching (default 1); the report "
                        "gives their median and spread")
    p.add_argument("--profile", action="store_true",
                   help="after the timed suites, profile every model per operator on onnxruntime/openvino (a pass "
                        "of its own) and say in the report why an int8 model or a runtime is slower")
    p.add_argument("--history", default=None, help="append to this SQLite history (default results/history.sqlite)")
    p.add_argument("--no-history", action="store_true", help="do not append to the history database")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", default=None, metavar="PKG.MOD:FACTORY",
                   help="your teacher: a callable returning an nn.Module (default: the built-in teacher)")
    p.add_argument("--student", default=None, metavar="PKG.MOD:FACTORY",
                   help="your student: a callable returning an nn.Module (default: the built-in student)")
    p.add_argument("--teacher-kwargs", default=None, metavar="JSON", help="keyword arguments for --teacher")
    p.add_argument("--student-kwargs", default=None, metavar="JSON", help="keyword arguments for --student")
    p.add_argument("--teacher-checkpoint", default=None, metavar="FILE",
                   help="your trained teacher's state_dict (weights only): the teacher is not trained, only measured")


def _add_data_options(p: argparse.ArgumentParser, npz_help: str = "npz with X_train, y_train, X_test, y_test"
                      ) -> None:
    p.add_argument("--task", default=None, help="a built-in task (harness tasks)")
    p.add_argument("--data", default=None, help=f"your data: {npz_help}")
    p.add_argument("--dataset", default=None, metavar="PKG.MOD:FACTORY",
                   help="your data: a callable returning (train, test[, class_names]) torch Datasets")
    p.add_argument("--dataset-kwargs", default=None, metavar="JSON", help="keyword arguments for --dataset")


def _cmd_profile(args) -> int:
    from harness.profile_cli import cmd_profile

    return cmd_profile(args)


def _commands() -> dict:
    from harness import commands as c

    return {"tasks": c.cmd_tasks, "train": c.cmd_train, "sweep": c.cmd_sweep, "bench": c.cmd_bench,
            "run": c.cmd_run, "panel": c.cmd_panel, "report": c.cmd_report, "merge": c.cmd_merge, "gate": c.cmd_gate,
            "compare": c.cmd_compare, "profile": _cmd_profile, "history": c.cmd_history}


def main(argv: Sequence[str] | None = None) -> int:
    from harness.experiment import expand_config

    parser = build_parser()
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        argv = expand_config(argv, parser.get_default("subcommands"))
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_BAD_INPUT
        state = configure_logging(args)
        try:
            return _commands()[args.command](args)
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
