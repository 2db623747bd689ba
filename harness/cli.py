"""Thin command line: parse, call one function, turn HarnessError into one line + exit 2."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from harness.errors import HarnessError, OptionError

EXIT_BAD_INPUT = 2


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
        parts = [p.strip() for p in text.split(",")]
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise OptionError(f"{name} must be a comma-separated list of positive integers, got {text!r}") from None
        if not vals or any(v < 1 for v in vals):
            raise OptionError(f"{name} must be a comma-separated list of positive integers, got {text!r}")
        return sorted(set(vals))

    return parse


def _str_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default=None, help="comma-separated student seeds (default 0)")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=None, help="epochs for every role")
    p.add_argument("--student-epochs", type=_positive_int("--student-epochs"), default=None)
    p.add_argument("--temperature", "-T", type=_finite_float("--temperature"), default=None, dest="temperature")
    p.add_argument("--alpha", type=_finite_float("--alpha"), default=None)
    p.add_argument("--kd-loss", default=None, help="hinton (default) or dkd")
    p.add_argument("--kd-logits", default=None, choices=None, help="cached (default) or live")
    p.add_argument("--augment", action="store_true", default=None, help="jitter/scale/shift augmentation (needs live logits)")
    p.add_argument("--calibrate-teacher", action="store_true", default=None, help="temperature-scale the teacher's logits")
    p.add_argument("--recipe", default=None, help="a recipe JSON saved by `harness sweep`")
    p.add_argument("--threads", type=_positive_int("--threads"), default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="kd-harness: what knowledge distillation buys a 1D or 3D CNN")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("tasks", help="list the built-in tasks")
    p.add_argument("--json", action="store_true", help="machine-readable list")

    p = sub.add_parser("train", help="train teacher, scratch student and KD student for a task")
    p.add_argument("--task", default=None)
    p.add_argument("--data", default=None, help="custom data: npz with X_train, y_train, X_test, y_test")
    p.add_argument("--out", default=None, help="run folder (default runs/<task>)")
    p.add_argument("--quiet", action="store_true")
    _add_train_options(p)
    return parser


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
    cfg = cfg.with_overrides(
        epochs=args.epochs, student_epochs=args.student_epochs, temperature=args.temperature, alpha=args.alpha,
        kd_loss=args.kd_loss, kd_logits=args.kd_logits, augment=args.augment,
        calibrate_teacher=args.calibrate_teacher, threads=args.threads,
    )
    if cfg.augment and args.kd_logits is None:
        cfg = cfg.with_overrides(kd_logits="live")
    return cfg.validate()


def cmd_train(args) -> int:
    from harness.tasks import load_dataset
    from harness.train.summary_table import format_summary
    from harness.train.trio import parse_seeds, train_trio

    seeds = parse_seeds(args.seeds)
    cfg = train_config_from_args(args)
    data = load_dataset(args.task, args.data)
    out = args.out or os.path.join("runs", data.name)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    data_ref = {"npz": str(Path(args.data).resolve())} if args.data else {"task": data.name, "data_seed": 0}
    summary = train_trio(data, cfg, seeds, out, show_progress=not args.quiet, log=log, data_ref=data_ref)
    print(format_summary(summary))
    print(f"\nwrote {os.path.join(out, 'summary.json')}")
    return 0


COMMANDS = {"tasks": cmd_tasks, "train": cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_BAD_INPUT
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
