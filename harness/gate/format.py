"""The gate's text output: one table row per compared rule row, one line per thing the current file
lacks, the notes (environment differences), and the summary line."""
from __future__ import annotations

from typing import Iterable

from harness.gate.core import gate_exit_code, nothing_compared
from harness.gate.rules import RULES, VERDICTS, Rule, RuleResult, fmt_change


def gate_summary(results: list[RuleResult]) -> str:
    counts = {v: sum(1 for r in results if r.verdict == v) for v in VERDICTS}
    status = "FAIL" if gate_exit_code(results) else "PASS"
    parts = [f"{counts['fail']} failed", f"{counts['missing']} missing", f"{counts['not significant']} not significant",
             f"{counts['pass']} passed", f"{counts['skip']} skipped"]
    text = f"gate {status}: " + ", ".join(parts)
    if not results:
        text += " (no rules enabled: nothing was compared)"
    elif nothing_compared(results):
        text += " (nothing was compared: do the two files measure the same tasks and models?)"
    return text


def missing_lines(results: list[RuleResult]) -> list[str]:
    """One line per thing the current file lacks (a task, a model, a backend, ...), naming the rules it
    starves; missing rows that were allowed say so."""
    groups: dict[tuple[str, bool], list[RuleResult]] = {}
    for r in results:
        if r.missing:
            groups.setdefault((r.missing, r.verdict == "missing"), []).append(r)
    order = ("task ", "model ", "paired/latency ", "backend ", "batch size ")  # coarsest first

    def bare(label: str) -> str:  # without the "host <CPU> · <fingerprint>: " of a several-host file
        return label.split(": ", 1)[1] if label.startswith("host ") and ": " in label else label

    def rank(key: tuple[str, bool]) -> int:
        label = bare(key[0])
        hit = [i for i, p in enumerate(order) if label.startswith(p)]
        return hit[0] if hit else (len(order) if "-thread" in label else len(order) + 1)

    lines = []
    for (label, failing), rows in sorted(groups.items(), key=lambda kv: rank(kv[0])):
        rules = ", ".join(dict.fromkeys(r.rule for r in rows))
        head = "MISSING in current" if failing else "missing in current, skipped (allowed)"
        if bare(label).startswith(tuple(f"{m} data of" for m in RULES)):  # no coarser cause: list the rows
            items = []
            for r in rows:
                bits = [r.model] + ([r.backend] if r.backend not in ("-", "any", "") else []) + \
                       ([f"batch {r.batch}"] if r.batch is not None else [])
                items.append(" ".join(bits))
            detail = ", ".join(dict.fromkeys(items))
            lines.append(f"{head}: {label}: {detail}")
        else:
            n = len(rows)
            lines.append(f"{head}: {label} (baseline rows of {rules}: {n})")
    return lines


def format_value(v: float | None, rule: str) -> str:
    return "-" if v is None else RULES.get(rule, Rule).format_value(v)


def format_gate(results: list[RuleResult], tablefmt: str = "simple", notes: Iterable[str] = ()) -> str:
    """One row per rule evaluation that is not about missing data; then one line per thing missing from
    the current file (grouped, see `missing_lines`), the `notes` (e.g. `environment_note`), and a
    summary line."""
    from tabulate import tabulate

    rows = []
    by_host = any(r.host for r in results)  # a file merged from several hosts: a host column
    for r in results:
        if r.missing:
            continue
        p = "" if r.p_value is None else ("<0.001" if r.p_value < 0.001 else f"{r.p_value:.2g}")
        rows.append(([r.host] if by_host else []) + [
                     r.rule, r.task, r.model, r.backend, "-" if r.batch is None else r.batch,
                     format_value(r.baseline, r.rule), format_value(r.current, r.rule), fmt_change(r.change, r.unit),
                     RULES.get(r.rule, Rule).format_threshold(r), p, r.ci or "",
                     r.verdict.upper() if r.verdict == "fail" else r.verdict, r.note])
    headers = (["host"] if by_host else []) + ["rule", "task", "model", "backend", "batch", "baseline", "current",
                                               "change", "threshold", "p", "CI", "verdict", "note"]
    table = tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True) if rows else ""
    extra = missing_lines(results) + [n for n in notes if n]
    return (table + "\n\n" if table else "") + "".join(f"{ln}\n" for ln in extra) + gate_summary(results) + "\n"
