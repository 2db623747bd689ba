"""The README is a user's front door: short, and every command in it runs as written.

Each `harness ...` command in the README's code blocks (continuation lines joined, comments dropped, the
`harness` part of a `... && harness run` chain) must parse with the CLI's own parser, including the
options an experiment file brings in; each command named in its tables must exist; every relative link
(README and docs/) must point at a file that exists.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.experiment import expand_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _code_commands(text: str) -> list[str]:
    """The `harness` commands of the indented code blocks, one string each."""
    commands, current = [], None
    for line in text.splitlines():
        if not line.startswith("    "):
            current = None
            continue
        code = line.strip()
        if current is not None:
            code = current + " " + code
        else:
            match = re.search(r"(?:^|&&\s*)(harness\s.*)$", code)
            if not match:
                continue
            code = match.group(1)
        code = code.split(" #", 1)[0].rstrip()
        if code.endswith("\\"):
            current = code[:-1].rstrip()
            continue
        current = None
        commands.append(code)
    return commands


README_COMMANDS = _code_commands(README.read_text())


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) < 250, f"README has {len(lines)} lines"


def test_readme_has_the_quick_start_commands():
    text = README.read_text()
    assert "pip install -e '.[test]' && harness run" in text
    assert "pip install -e '.[test,ray,serving]' && pytest -q" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[test,ray,serving]'" in ci and "\npytest -q" in ci


def test_readme_finds_its_commands():
    # The parser test below must not pass by finding nothing.
    assert len(README_COMMANDS) >= 5
    assert "harness run" in README_COMMANDS


@pytest.mark.parametrize("command", README_COMMANDS)
def test_readme_command_parses(command, monkeypatch):
    monkeypatch.chdir(ROOT)  # --config paths are relative to the repository root
    parser = build_parser()
    argv = shlex.split(command)[1:]
    argv = expand_config(argv, parser.get_default("subcommands"))
    args = parser.parse_args(argv)
    assert args.command == argv[0]


def test_readme_table_commands_exist():
    parser = build_parser()
    known = set(parser.get_default("subcommands"))
    named = set(re.findall(r"`harness ([a-z]+)", README.read_text()))
    assert named and named <= known, f"unknown commands in README: {sorted(named - known)}"


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_exist(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
