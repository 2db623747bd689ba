"""The report's content: per task its tables (harness.report.tables), verdicts and warnings
(harness.report.notes), for one or several inputs side by side. No rendering here.

    build_model(paths_or_results) -> Report
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.report.lookup import load_inputs, source_labels, task_names, task_roles
from harness.report.notes import peak_note, validity_notes, verdict
from harness.report.summary import TaskSummary, summarize
from harness.report.tables import (
    WARN_COLS, accuracy_rows, backend_rows, drop_empty, frame, kd_vs_scratch, ort_rows, perf_rows, size_rows, source_row, table,
    validity_rows, warning_rows,
)
from harness.report.variants import (
    QUALITY_TARGET, VARIANT_COLS, VARIANT_KEEP, failure_notes, has_variants, slower_notes, variant_rows, variant_verdict,
)
from harness.report.serving import SERVING_COLS, SERVING_KEEP, batching_verdict, serving_notes, serving_rows
from harness.results import Results


@dataclass
class TaskReport:
    task: str
    accuracy: pd.DataFrame
    size: pd.DataFrame
    performance: pd.DataFrame
    backends: pd.DataFrame
    kd_vs_scratch: pd.DataFrame
    ort_vs_torch: pd.DataFrame
    verdicts: dict[str, str] = field(default_factory=dict)  # source label -> sentence
    validity: pd.DataFrame = field(default_factory=pd.DataFrame)  # paired p50 vs latency-suite p50
    notes: dict[str, list[str]] = field(default_factory=dict)  # table key -> warnings shown under it
    # "Distill, quantize, or both": only for a task with variants (student_kd@int8, ...); empty otherwise
    variants: pd.DataFrame = field(default_factory=pd.DataFrame)
    section_verdicts: dict[str, dict[str, str]] = field(default_factory=dict)  # table key -> source -> sentence
    # the first screen (harness.report.summary): per source, what to deploy, the compact table, caveats
    summaries: dict[str, TaskSummary] = field(default_factory=dict)
    # "Under load" (the serving suite): only for a task with serving measurements
    serving: pd.DataFrame = field(default_factory=pd.DataFrame)

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"accuracy": self.accuracy, "size": self.size, "performance": self.performance,
               "validity": self.validity, "backends": self.backends, "kd_vs_scratch": self.kd_vs_scratch,
               "ort_vs_torch": self.ort_vs_torch}
        if self.has_variants:  # files without variants: the same tables as before
            out["variants"] = self.variants
        if not self.serving.empty:
            out["serving"] = self.serving
        return out

    @property
    def has_variants(self) -> bool:
        return not self.variants.empty or bool(self.section_verdicts.get("variants")) or bool(
            self.notes.get("variants"))


@dataclass
class Report:
    results: list[Results]
    labels: list[str]
    sources: pd.DataFrame
    tasks: list[TaskReport]
    warnings: pd.DataFrame

    @property
    def multi_source(self) -> bool:
        return len(self.labels) > 1



def _cores(res: Results) -> int | None:
    env = res.environment or {}
    v = env.get("affinity_cores") or env.get("physical_cores")
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def build_model(paths_or_results: Any, target: float = QUALITY_TARGET) -> Report:
    """Read inputs (paths or Results) and build every table of the report; `target` is the quality target
    (a fraction of the fp32 teacher's accuracy) the first screen's verdict chooses by."""
    results = load_inputs(paths_or_results)
    labels = source_labels(results)
    tasks: dict[str, None] = {}
    for res in results:
        for t in task_names(res):
            tasks[t] = None
    reports = []
    warn_rows = []
    src_rows = []
    for res, label in zip(results, labels):
        src_rows.append(source_row(res, label))
        warn_rows += warning_rows(res, label)
    for task in tasks:
        acc, size, perf, back, kd, ort, valid, var, serv = [], [], [], [], [], [], [], [], []
        serv_verdicts: dict[str, str] = {}
        verdicts = {}
        summaries: dict[str, TaskSummary] = {}
        var_verdicts: dict[str, str] = {}
        notes: dict[str, list[str]] = {}
        for res, label in zip(results, labels):
            if task not in task_names(res):
                continue
            roles = task_roles(res, task)
            a = accuracy_rows(res, label, task, roles)
            s = size_rows(res, label, task, roles)
            p = perf_rows(res, label, task, roles)
            k = kd_vs_scratch(res, task)
            acc += a
            size += s
            perf += p
            back += backend_rows(res, label, task, roles)
            kd += [{"source": label, "task": task, **r} for r in k]
            ort += ort_rows(res, label, task, roles)
            v = validity_rows(res, label, task)
            valid += v
            verdicts[label] = verdict(res, task, a, p, s, k, v)
            summaries[label] = summarize(res, label, task, target, validity=v,
                                         peak_notes=[n for n in (peak_note(res, label, r) for r in p) if n])
            prefix = f"[{label}] " if len(results) > 1 else ""
            variant_msgs: list[str] = []
            if has_variants(res, task):
                vr = variant_rows(res, label, task)
                var += vr
                var_verdicts[label] = variant_verdict(vr) or "No models to compare."
                variant_msgs = failure_notes(res, task) + slower_notes(res, task)
            sv = serving_rows(res, label, task)
            serv += sv
            if sv:
                serv_verdicts[label] = batching_verdict(sv) or "No model was served with batching both off and on."
            for key, msgs in (("performance", [peak_note(res, label, r) for r in p]),
                              ("validity", list(dict.fromkeys(n for r in v for n in validity_notes(r)))),
                              ("variants", variant_msgs), ("serving", serving_notes(sv, _cores(res)))):
                notes.setdefault(key, []).extend(prefix + m for m in msgs if m)
        reports.append(TaskReport(
            task=task, accuracy=table("accuracy", acc), size=table("size", size),
            performance=table("performance", perf), backends=table("backends", back),
            kd_vs_scratch=table("kd_vs_scratch", kd), ort_vs_torch=table("ort_vs_torch", ort),
            verdicts=verdicts, validity=table("validity", valid),
            notes={k: v for k, v in notes.items() if v},
            variants=drop_empty(frame(var, VARIANT_COLS), VARIANT_KEEP) if var else pd.DataFrame(),
            section_verdicts={k: v for k, v in (("variants", var_verdicts), ("serving", serv_verdicts)) if v},
            summaries=summaries,
            serving=drop_empty(frame([{k: v for k, v in r.items() if k in SERVING_COLS} for r in serv],
                                     SERVING_COLS), SERVING_KEEP) if serv else pd.DataFrame(),
        ))
    return Report(results=results, labels=labels, sources=frame(src_rows, ["source"]), tasks=reports,
                  warnings=frame(warn_rows, WARN_COLS))
