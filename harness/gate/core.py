"""Compare a baseline with a current results file: run every enabled rule, label the baseline rows the
current file has no counterpart for, decide the exit code; and replace the baseline."""
from __future__ import annotations

import copy
from pathlib import Path

from harness.errors import HarnessError, OptionError, SchemaError
from harness.fileio import atomic_write_bytes
from harness.gate.config import GateRules, default_rules, parse_rules
from harness.gate.hosts import host_pairs
from harness.gate.rules import COMPARED, RULES, Rule, RuleResult
from harness.report.lookup import task_measurements, task_names, task_roles, variant_failure
from harness.results import Results, load_results


def as_results(x: Results | str | Path, what: str) -> Results:
    if isinstance(x, Results):
        return x
    if isinstance(x, (str, Path)):
        return load_results(x)
    raise SchemaError(f"{what}: expected results or a path, not {type(x).__name__}")


def _missing_label(r: RuleResult, current: Results) -> str:
    """The coarsest thing the current file lacks for a missing row: its task, its model, any timing, a
    backend, a thread count or a batch size it timed nowhere, else the rule's data for that task."""
    if r.task not in task_names(current):
        return f"task {r.task}"
    if r.model not in task_roles(current, r.task):
        return f"model {r.model} of task {r.task}"
    why = variant_failure(current, r.task, r.model)  # a variant that failed to build or load this time
    if why is not None:
        return f"model {r.model} of task {r.task} (not available: {why})"
    if RULES.get(r.rule, Rule).timed:
        ms = task_measurements(current, r.task)
        timed = [m for m in ms if m.suite in ("paired", "latency")]
        if not timed:
            return f"paired/latency timings of task {r.task}"
        if r.backend not in {m.backend for m in ms}:
            return f"backend {r.backend} of task {r.task}"
        if r.threads is not None and r.threads not in {m.threads for m in timed}:
            return f"{r.threads}-thread timings of task {r.task}"
        if r.batch is not None and r.batch not in {m.batch_size for m in timed}:
            return f"batch size {r.batch} of task {r.task}"
    return f"{r.rule} data of task {r.task}"


def evaluate_gate(baseline: Results | str | Path, current: Results | str | Path,
                  rules: GateRules | dict | None = None, allow_missing: bool = False,
                  ab: Results | None = None) -> list[RuleResult]:
    """Every enabled rule for every task/model/backend/batch it covers.

    Data absent from the baseline (or from both) -> "skip". A baseline row that the current file has no
    counterpart for (renamed task or model, dropped backend, thread count or batch size) -> "missing",
    which fails the gate; with `allow_missing` it is a "skip" whose note says what is missing. Rows only
    the current file has (a new model) are not compared. Files merged from several hosts are gated host
    by host (harness.gate.hosts); each row's `host` names its host then. `ab`: the A/B timing of the
    baseline's models beside the current ones (harness/compare.py, harness/gate/ab.py); its
    `ab_latency` rows replace the ratio-of-speedups rows of every (task, model, backend) they judge.
    """
    baseline = as_results(baseline, "baseline")
    current = as_results(current, "current")
    if rules is None:
        rules = default_rules()
    elif isinstance(rules, dict):
        rules = parse_rules(copy.deepcopy(rules))
    elif not isinstance(rules, GateRules):
        raise OptionError(f"gate rules must be GateRules or a mapping, not {type(rules).__name__}")
    out: list[RuleResult] = []
    if ab is not None:
        from harness.gate.rules_ab import with_ab_measurements

        current = with_ab_measurements(current, ab)
    for pair in host_pairs(baseline, current):  # files merged from several hosts: host by host, never across
        rows: list[RuleResult] = []
        for spec in rules.enabled():
            rows += spec.rule(spec).evaluate(pair.baseline, pair.current)
        ab_rows = [r for r in rows if r.rule == "ab_latency" and r.verdict != "skip"]
        if ab_rows:
            from harness.gate.ab import replace_speed_rows

            rows = replace_speed_rows(rows, ab_rows)
        for r in rows:
            r.host = pair.label
            if r.verdict == "missing":
                r.missing = _missing_label(r, pair.current)
                if pair.label:
                    r.missing = f"host {pair.label}: {r.missing}"
        out += rows
    for r in out:
        if r.verdict == "missing":
            if allow_missing:
                r.verdict = "skip"
                r.note += f" (missing in current: {r.missing}; allowed)"
    return out


def nothing_compared(results: list[RuleResult]) -> bool:
    """True when no rule compared a baseline value with a current one. A rule that checks the current file
    alone (`parity`) counts only when no comparing rule produced a row at all."""
    pool = [r for r in results if RULES.get(r.rule, Rule).compares_baseline] or results
    return not any(r.verdict in COMPARED for r in pool)


def gate_exit_code(results: list[RuleResult]) -> int:
    """0 when no rule failed, 1 on a regression, on baseline rows missing from the current file, or when
    nothing was compared. (Bad input raises HarnessError: exit 2 in the CLI.)"""
    if any(r.verdict in ("fail", "missing") for r in results) or nothing_compared(results):
        return 1
    return 0


def update_baseline(current_path: str | Path, baseline_path: str | Path) -> Path:
    """Copy a current results file over the baseline, atomically, after checking it loads."""
    current_path = Path(current_path)
    load_results(current_path)  # raises SchemaError on a bad or foreign file
    try:
        data = current_path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"cannot read {current_path}: {exc.strerror or exc}") from None
    return atomic_write_bytes(baseline_path, data)
