"""The report's first screen in a terminal: per task the verdict, what distillation bought, one compact table
and the caveats, about 20 lines of at most `width` columns (100, or the terminal's width where it is known
and narrower). Sentences wrap; the table never does: columns are dropped, least important first, until it
fits. Every table is one step away: `harness report RESULTS --details` (or md, csv, json, html).
"""
from __future__ import annotations

import os
import shutil
import sys
import textwrap
from typing import Any

from tabulate import tabulate

from harness.report.content import Report
from harness.report.display import present
from harness.report.summary import TaskSummary

MAX_WIDTH = 100
RUNTIME_SHORT = {"onnxruntime": "ORT", "torch-compile": "compile", "openvino": "OV"}
# dropped in this order while the table is wider than the screen
DROP_ORDER = ("peak MB", "samples/s", "size", "pts", "runtime")


def screen_width() -> int:
    """100 columns, or the terminal's width when stdout is one and it is narrower (never below 60)."""
    if sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        return max(60, min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns))
    cols = os.environ.get("COLUMNS")
    if cols and cols.isdigit():
        return max(60, min(MAX_WIDTH, int(cols)))
    return MAX_WIDTH


def _ci(ci: Any, fmt: str) -> str:
    return f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else ""


def _compact(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def table_rows(s: TaskSummary) -> list[dict[str, str]]:
    out = []
    for r in s.rows:
        sp = r.get("speedup")
        row = {
            "model": r["model"],
            "runtime": RUNTIME_SHORT.get(r.get("runtime") or "", r.get("runtime") or ""),
            "acc % [CI]": "" if r.get("acc_pct") is None else f"{r['acc_pct']:.1f}" + _ci(r.get("acc_ci"), "{:.1f}"),
            "pts": "" if r.get("vs_teacher_pts") is None else f"{r['vs_teacher_pts']:+.1f}",
            f"speedup b{s.batch} [CI]" if s.batch else "speedup": "" if sp is None else (
                f"{sp:.2f}x" + _ci(r.get("speedup_ci"), "{:.2f}")),
            "samples/s": "" if r.get("throughput_sps") is None else (
                f"{_compact(r['throughput_sps'])} @{r['throughput_batch']}"),
            "size": "" if r.get("size_ratio") is None else f"{r['size_ratio']:.2f}x",
            "peak MB": "" if r.get("peak_mem_mb") is None else f"{r['peak_mem_mb']:.3g}",
        }
        out.append(row)
    return out


def fit_table(rows: list[dict[str, str]], width: int) -> str:
    """The compact table at most `width` columns wide: empty columns dropped, then DROP_ORDER's."""
    if not rows:
        return ""
    cols = [c for c in rows[0] if any(r[c] for r in rows)]
    runtimes = {r.get("runtime") for r in rows}
    if "runtime" in cols and len(runtimes) == 1:  # one runtime: said in the model column's header
        rows = [{**{k: v for k, v in r.items() if k != "model"}, f"model on {r['runtime']}": r["model"]} for r in rows]
        cols = [f"model on {rows[0]['runtime']}" if c == "model" else c for c in cols if c != "runtime"]
    for drop in (None, *DROP_ORDER):
        if drop in cols:
            cols.remove(drop)
        text = tabulate([[r[c] for c in cols] for r in rows], headers=cols, tablefmt="simple",
                        disable_numparse=True)
        if max(len(line) for line in text.splitlines()) <= width:
            return text
    return text


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(text, width=width, subsequent_indent=indent or "  ", break_on_hyphens=False)


def source_line(r: Any) -> str:
    """One input in a line: its label, the machine (CPU, int8 dot-product ISA) and when."""
    bits = [str(r["source"])]
    if present(r, "cpu"):
        bits.append(str(r["cpu"]))
    isa = str(r["cpu_isa"]).split() if present(r, "cpu_isa") else []
    fast = [f for f in ("amx_int8", "avx512_vnni", "avx_vnni") if f in isa]
    if isa:
        bits.append(("int8 dot product: " + "/".join(fast)) if fast else "no int8 dot product (VNNI/AMX)")
    if present(r, "created"):
        bits.append(str(r["created"])[:16].replace("T", " "))
    return " · ".join(bits)


def render_screen(report: Report, width: int | None = None) -> str:
    width = width or screen_width()
    out: list[str] = []
    for _, r in report.sources.iterrows():
        out += _wrap(source_line(r), width)
    for tr in report.tasks:
        for label, s in tr.summaries.items():
            head = f"== {tr.task or '(unnamed)'}" + (f" [{label}]" if report.multi_source else "") + " "
            out += ["", head + "=" * max(0, min(width, 60) - len(head))]
            out += _wrap(s.deploy, width)
            if s.distillation:
                out += _wrap(s.distillation, width)
            if s.serving:
                out += _wrap(s.serving, width)
            table = fit_table(table_rows(s), width)
            if table:
                out += [""] + table.splitlines()
            if s.caveats:
                out.append("")
                for c in s.caveats:
                    out += _wrap(f"! {c}", width, indent="  ")
    out += ["", *_wrap("Speedups are paired with the fp32 teacher on the same runtime; accuracy is the seed "
                       "mean (CI) where seeds exist. Every table: harness report RESULTS --details; "
                       "--format md|csv|json|html.", width)]
    return "\n".join(out).rstrip() + "\n"
