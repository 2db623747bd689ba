"""The report as text: a terminal table or markdown for people, CSV or JSON for programs.

Terminal and markdown state a key column that holds one value on every row of a table (options,
threads, ...) once in the section's heading instead of on every row; CSV and JSON keep every column.
"""
from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from harness.report.content import Report
from harness.report.display import (
    FOLDED_IN_TEXT, HIDDEN_IN_TEXT, KEY_COLS, SECTIONS, human_table, is_missing, note_word, sources_lines,
    table_notes,
)

REPORT_SCHEMA = "kd-harness/report/1"


def _tab(df: pd.DataFrame, fmt: str) -> str:
    return tabulate(df.values.tolist(), headers=list(df.columns), tablefmt=fmt, disable_numparse=True)


def section_heading(heading: str, constant: list[tuple[str, str]]) -> str:
    """A section's heading, with the columns constant over its table: "Heading — options: a=1 · threads: 2"."""
    if not constant:
        return heading
    return f"{heading} — " + " · ".join(f"{label}: {value}" for label, value in constant)


def render_text(report: Report, md: bool) -> str:
    tfmt = "github" if md else "simple"
    esc = (lambda s: html.escape(s, quote=False)) if md else (lambda s: s)
    out: list[str] = []
    if md:
        out += ["# kd-harness report", ""]
        out += ["Sources:", ""] + [f"- {esc(s)}" for s in sources_lines(report)] + [""]
    else:
        out += ["kd-harness report", "=================", ""]
        out += ["Sources:"] + [f"  {s}" for s in sources_lines(report)] + [""]
    for tr in report.tasks:
        title = f"Task {tr.task or '(unnamed)'}"
        out += [f"## {title}", ""] if md else [title, "-" * len(title)]
        for label, sentence in tr.verdicts.items():
            prefix = f"[{label}] " if report.multi_source else ""
            out.append(f"**Verdict** {prefix}{sentence}" if md else f"Verdict: {prefix}{sentence}")
            if md:
                out.append("")
        out.append("")
        tables = tr.tables()
        for key, heading in SECTIONS:
            df = tables.get(key)
            if df is None or (df.empty and key not in tr.section_verdicts):
                continue
            table, constant = human_table(df, report, HIDDEN_IN_TEXT, fold=FOLDED_IN_TEXT)
            heading = esc(section_heading(heading, constant))
            out += [f"### {heading}" if md else heading, ""]
            for label, sentence in tr.section_verdicts.get(key, {}).items():
                prefix = f"[{label}] " if report.multi_source else ""
                out += [f"**Verdict** {esc(prefix + sentence)}" if md else f"Verdict: {prefix}{sentence}", ""]
            if not df.empty:
                out += [_tab(table, tfmt), ""]
            notes = table_notes(tr, key)
            if notes:
                word = note_word(key)
                out += [(f"- **{word}:** {esc(n)}" if md else f"{word}: {n}") for n in notes]
                out.append("")
    out += ["## Warnings" if md else "Warnings", ""]
    if report.warnings.empty:
        out += ["None.", ""]
    else:
        disp = report.warnings.copy()
        if not report.multi_source:
            disp = disp.drop(columns=["source"])
        out += [_tab(disp.fillna(""), tfmt), ""]
    return "\n".join(out).rstrip() + "\n"


def _py(v: Any) -> Any:
    if is_missing(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _py(v) for k, v in row.items()} for row in df.to_dict("records")]


def render_json(report: Report) -> str:
    doc = {
        "schema": REPORT_SCHEMA,
        "sources": _records(report.sources),
        "tasks": [{"task": tr.task, "verdicts": tr.verdicts,
                   "tables": {k: _records(v) for k, v in tr.tables().items()},
                   "notes": {k: list(v) for k, v in tr.notes.items()},
                   # per-table verdicts (the variants table's): only where there are any, so files
                   # without variants give the same document as before
                   **({"section_verdicts": tr.section_verdicts} if tr.section_verdicts else {})}
                  for tr in report.tasks],
        "warnings": _records(report.warnings),
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


CSV_COLS = ["section", "source", "task", "model", "reference", "backend", "batch_size", "threads", "options",
            "basis", "metric", "value"]


def render_csv(report: Report) -> str:
    """One tidy table: section, keys, metric, value (parses back with pandas.read_csv)."""
    rows: list[dict[str, Any]] = []
    for tr in report.tasks:
        for label, sentence in tr.verdicts.items():
            rows.append({"section": "verdict", "source": label, "task": tr.task, "metric": "verdict",
                         "value": sentence})
        for key, by_source in tr.section_verdicts.items():
            for label, sentence in by_source.items():
                rows.append({"section": f"{key}_verdict", "source": label, "task": tr.task, "metric": "verdict",
                             "value": sentence})
        for key, df in tr.tables().items():
            keys = [c for c in df.columns if c in KEY_COLS]
            for rec in _records(df):
                base = {"section": key, **{k: rec[k] for k in keys}}
                for metric, value in rec.items():
                    if metric in keys or value is None:
                        continue
                    rows.append({**base, "metric": metric, "value": value})
        for key, notes in tr.notes.items():
            word = note_word(key).lower()
            for note in notes:
                rows.append({"section": f"{key}_{word}", "task": tr.task, "metric": word, "value": note})
    for rec in _records(report.warnings):
        rows.append({"section": "warning", "source": rec["source"], "task": rec["task"], "model": rec["where"],
                     "metric": "warning", "value": rec["message"]})
    frame = pd.DataFrame(rows, columns=CSV_COLS)
    return frame.to_csv(index=False, lineterminator="\n")

