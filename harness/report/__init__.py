"""Reports: teacher vs scratch student vs KD student, from one or several results files.

    build_report(paths_or_results, fmt) -> str       # fmt: table | md | csv | html | json
    write_report(paths, fmt=None, out=None) -> Path | None

Inputs are harness results files (schema kd-harness/results/1), pytest-benchmark JSON files, or
Results objects. Several inputs (machines, commits) go side by side, labelled by file name and
git commit; a file merged from several hosts (`harness merge`) goes side by side host by host,
labelled by CPU model and host fingerprint (harness/hosts.py), never pooled.

The package, by job:
    lookup.py    tolerant lookups over Results (measurement for a key, accuracies, sizes, roofline)
    derived.py   figures derived once for report and gate (speedups, accuracy deltas)
    tables.py    row builders and column lists: the report's tidy tables
    notes.py     judgements in words: stability, validity and peak warnings, verdict sentences
    content.py   Report / TaskReport and build_model: every table, verdict and note per task
    display.py   how tables look to a reader (labels, units, side by side, sources lines)
    text.py      terminal table, markdown, CSV, JSON
    html.py      one self-contained HTML page with plotly figures
    pytest_benchmark.py  pytest-benchmark JSON as Results
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.errors import OptionError
from harness.fileio import atomic_write_text
from harness.report.content import Report, build_model
from harness.report.html import render_html
from harness.report.lookup import load_inputs, read_any
from harness.report.variants import QUALITY_TARGET
from harness.report.screen import render_screen
from harness.report.text import render_csv, render_json, render_text

FORMATS = ("table", "full", "md", "csv", "html", "json")  # table: the first screen; full: every table

SUFFIX_FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json",
                  ".txt": "table"}

__all__ = ["FORMATS", "Report", "build_model", "build_report", "format_for_path", "load_inputs", "read_any",
           "render", "write_report"]


def render(report: Report, fmt: str) -> str:
    """A built report as text in `fmt`: table (one screen per task), full (every table), md, csv, html, json."""
    if fmt not in FORMATS:
        raise OptionError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "table":
        return render_screen(report)
    if fmt in ("full", "md"):
        return render_text(report, md=fmt == "md")
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    return render_html(report)


def build_report(paths_or_results: Any, fmt: str = "table", target: float = QUALITY_TARGET) -> str:
    """The report as text in `fmt` (table, full, md, csv, html, json); `target`: the quality target, a
    fraction of the fp32 teacher's accuracy, that the verdict chooses what to deploy by."""
    if fmt not in FORMATS:
        raise OptionError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if not (isinstance(target, (int, float)) and 0 < target <= 1):
        raise OptionError(f"quality target must be a fraction in (0, 1], got {target!r}")
    return render(build_model(paths_or_results, target), fmt)


def format_for_path(out: str | Path | None, fmt: str | None) -> str:
    """An explicit fmt wins; else the output file's suffix decides; else a terminal table."""
    if fmt:
        return fmt
    if out is not None:
        return SUFFIX_FORMATS.get(Path(out).suffix.lower(), "table")
    return "table"


def write_report(paths: Any, fmt: str | None = None, out: str | Path | None = None,
                 target: float = QUALITY_TARGET) -> Path | None:
    """Build the report and write it atomically to `out`, or to stdout when out is None."""
    fmt = format_for_path(out, fmt)
    text = build_report(paths, fmt, target)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    return atomic_write_text(out, text)
