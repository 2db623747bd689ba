"""`--config experiment.toml`: an experiment in one reviewable file, read through the CLI's own options.

Each key is a long option of the command (`epochs = 30` is `--epochs 30`; dashes or underscores), so an
option is defined once, in cli.py, with its type, choices and checks, and the file and the command line
cannot drift apart. Keys may sit at the top level or in a table named after the command
(`[train]`, `[bench]`, `[run]`); a command's table wins over the top level, and options given on the
command line win over the file. Values: a string or number, true/false for a flag (false: its --no-
form, or left out), a list (joined with commas, or one option per item for a repeatable option such as
`model`), a table (JSON, for `*-kwargs`).

    # experiment.toml
    task = "gunpoint"
    teacher = "mypkg.nets:teacher"
    student = "mypkg.nets:student"
    [train]
    epochs = 30
    seeds = [0, 1, 2]
    teacher_kwargs = {dim = 64}
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.errors import OptionError

COMMAND_TABLES = ("train", "bench", "run", "sweep", "panel")


def read_config(path: str | Path) -> dict[str, Any]:
    """The file's keys: TOML (.toml) or JSON (.json)."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise OptionError(f"--config file not found: {path}")
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_text())
        else:
            doc = tomllib.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise OptionError(f"--config {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    if not isinstance(doc, dict):
        raise OptionError(f"--config {path} must hold a table of options")
    return doc


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Option name (without dashes, underscores as dashes) -> its action, for every long option."""
    out = {}
    for action in parser._actions:  # argparse keeps no public list; this is its stable attribute
        for opt in action.option_strings:
            if opt.startswith("--") and opt not in ("--help", "--config"):
                out[opt[2:]] = action
    return out


def config_tokens(doc: dict[str, Any], command: str, parser: argparse.ArgumentParser, where: str) -> list[str]:
    """Command-line tokens for the file's options of `command`, checked against its parser's options."""
    keys = {k: v for k, v in doc.items() if not (k in COMMAND_TABLES and isinstance(v, dict))}
    keys.update(doc.get(command) or {})
    actions = _actions(parser)
    positional = [a for a in parser._actions if not a.option_strings and a.dest != "help"]
    tokens: list[str] = []
    for key, value in keys.items():
        name = str(key).replace("_", "-")
        if name in [a.dest.replace("_", "-") for a in positional]:
            tokens.append(str(value))
            continue
        action = actions.get(name)
        if action is None:
            known = ", ".join(sorted(actions))
            raise OptionError(f"{where}: unknown option {key!r} for `harness {command}`; options: {known}")
        flag = f"--{name}"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):
                raise OptionError(f"{where}: {key} is a flag: true or false, got {value!r}")
            tokens += [flag] if value else []
        elif isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                raise OptionError(f"{where}: {key} is a flag: true or false, got {value!r}")
            tokens.append(flag if value else f"--no-{name}")
        elif isinstance(action, argparse._AppendAction):
            for item in value if isinstance(value, list) else [value]:
                tokens += [flag, _text(item)]
        else:
            tokens += [flag, _text(value)]
    return tokens


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expand_config(argv: list[str], subparsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    """argv with `--config FILE` replaced by the file's options, placed before the command line's own so
    those win (a later value of an option replaces an earlier one)."""
    if "--config" not in argv and not any(a.startswith("--config=") for a in argv):
        return argv
    if not argv or argv[0] not in subparsers:
        raise OptionError("--config goes after a command: harness train|bench|run|sweep|panel --config FILE")
    rest, path = [], None
    it = iter(argv[1:])
    for arg in it:
        if arg == "--config":
            path = next(it, None)
            if path is None:
                raise OptionError("--config needs a file")
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    doc = read_config(path)
    return [argv[0], *config_tokens(doc, argv[0], subparsers[argv[0]], f"--config {path}"), *rest]
