"""Lookups over Results: which tasks, roles and backends a file holds, and the one measurement or
model entry for a (task, suite, role, backend, batch, threads, options) key. Tolerant: a missing
piece is None or empty, never an exception (older and partial files still report)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from typing import Any, Iterable, Sequence

from harness.errors import SchemaError
from harness.hosts import host_label, host_views
from harness.metrics import RooflineMetrics, StorageMetrics, as_float, as_pair
from harness.report.pytest_benchmark import from_pytest_benchmark, is_pytest_benchmark
from harness.results import Measurement, Results, read_json_document
from harness.roles import REFERENCE, Role  # noqa: F401 - REFERENCE: report modules import it from here

BACKEND_ORDER = ("torch", "onnxruntime", "openvino")


# -- loading ------------------------------------------------------------------------------------

def read_any(path: str | Path) -> Results:
    """A harness results file or a pytest-benchmark JSON file, as Results."""
    doc = read_json_document(path)
    if is_pytest_benchmark(doc):
        return from_pytest_benchmark(doc, source=str(path))
    return Results.from_dict(doc, source=str(path))


def load_inputs(paths_or_results: Any) -> list[Results]:
    """Accept one path/Results or a sequence of them; read each. A file merged from several hosts
    (`harness merge`) becomes one Results per host, so no table picks or pools across hosts."""
    if isinstance(paths_or_results, (str, Path, Results)):
        items: Sequence[Any] = [paths_or_results]
    else:
        items = list(paths_or_results)
    if not items:
        raise SchemaError("no results files given")
    out = []
    for item in items:
        if isinstance(item, Results):
            out.append(item)
        elif isinstance(item, (str, Path)):
            out.append(read_any(item))
        else:
            raise SchemaError(f"cannot read results from a {type(item).__name__}")
    return [view for res in out for _, view in host_views(res)]


def git_commit(res: Results) -> str | None:
    env = res.environment or {}
    commit = env.get("git_commit")
    if commit is None and isinstance(env.get("git"), dict):
        commit = env["git"].get("commit")
    return str(commit) if commit else None


def source_labels(results: Sequence[Results]) -> list[str]:
    """Short unique labels: file name plus short git commit."""
    def base(res: Results, i: int, parents: int) -> str:
        if res.source:
            p = Path(res.source)
            name = "/".join(p.parts[-(parents + 1):])
        else:
            name = f"results{i + 1}"
        commit = git_commit(res)
        if commit:
            name += f"@{commit[:8]}"
        if res.host:  # one host of a merged file: its CPU model and fingerprint
            name += f" [{host_label(res.environment, res.host)}]"
        return name

    labels = [base(r, i, 0) for i, r in enumerate(results)]
    if len(set(labels)) < len(labels):
        labels = [base(r, i, 1) for i, r in enumerate(results)]
    if len(set(labels)) < len(labels):
        labels = [f"{lab}#{i + 1}" for i, lab in enumerate(labels)]
    return labels


# -- small numeric helpers ---------------------------------------------------------------------

num = as_float  # the one lenient numeric coercer (harness.metrics), short for the many table cells


def pair(x: Any) -> tuple[float, float] | None:
    """An interval in (low, high) order, or None."""
    p = as_pair(x)
    return (min(p), max(p)) if p else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _acc_scale(mean: float | None) -> float:
    # accuracies are fractions in the schema; tolerate percentages from older tools
    return 100.0 if mean is None or mean <= 1.0 else 1.0


# -- Results accessors (tolerant) ---------------------------------------------------------------

MACHINE_SUITES = ("roofline",)  # measurements of the machine, not of a task's models (task "")


def task_names(res: Results) -> list[str]:
    """Tasks in order of appearance. Machine-wide measurements (the roofline's peak GEMM, task "")
    name no task; measurements without a task belong to the only named task when there is one."""
    seen: dict[str, None] = {}
    for t in res.tasks:
        seen[str(t)] = None
    for e in res.models.values():
        if e.get("task") is not None:
            seen[str(e["task"])] = None
    for m in res.measurements:
        if m.suite not in MACHINE_SUITES:
            seen[m.task] = None
    names = list(seen)
    named = [t for t in names if t]
    if len(named) == 1 and "" in names:  # measurements without a task belong to the only task
        return named
    return names


def _m_task(res: Results, m: Measurement, task: str) -> bool:
    if m.suite in MACHINE_SUITES:
        return False
    if m.task == task:
        return True
    return m.task == "" and len([t for t in task_names(res) if t]) <= 1


def task_measurements(res: Results, task: str, suite: str | None = None) -> list[Measurement]:
    return [m for m in res.measurements if _m_task(res, m, task) and (suite is None or m.suite == suite)]


def split_role(role: str) -> tuple[str, str | None]:
    """("student_kd", "int8") for a variant's role "student_kd@int8"; (role, None) for an fp32 model."""
    parsed = Role.parse(role)
    return parsed.base, parsed.variant


def is_variant(role: str) -> bool:
    return split_role(role)[1] is not None


def role_order(names: Iterable[str]) -> list[str]:
    """The trio's roles in order (teacher, student_scratch, student_kd), each followed by its variants
    (`student_kd@int8`, ...), then other names sorted (each also followed by its variants)."""
    return sorted(dict.fromkeys(names), key=lambda name: Role.parse(name).sort_key())


def backend_order(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [b for b in BACKEND_ORDER if b in names]
    return known + sorted(n for n in names if n not in BACKEND_ORDER)


def task_roles(res: Results, task: str) -> list[str]:
    names = [str(e.get("role")) for e in res.models.values()
             if e.get("role") and (e.get("task") in (task, None, "") or not task)]
    summary = res.tasks.get(task) if isinstance(res.tasks.get(task), dict) else {}
    if isinstance(summary.get("models"), dict):
        names += [str(r) for r in summary["models"]]
    names += [m.model for m in task_measurements(res, task)]
    return role_order(names)


def model_entry(res: Results, task: str, role: str) -> dict[str, Any]:
    for e in res.models.values():
        if e.get("role") == role and e.get("task") == task:
            return e
    if not task and len([t for t in task_names(res) if t]) > 1:
        return {}  # no task named, several to choose from: not one of them (was: the first task's)
    return res.model_entry(task, role) or {}


def variant_entries(res: Results, task: str) -> list[dict[str, Any]]:
    """The model entries of `task`'s variants (role "<base>@<variant>"), failed ones included, in role order."""
    entries = {str(e["role"]): e for e in res.models.values()
               if is_variant(str(e.get("role") or "")) and (e.get("task") in (task, None, "") or not task)}
    return [entries[r] for r in role_order(entries)]


def variant_roles(res: Results, task: str) -> list[str]:
    """Every variant role of `task`: from the model entries (failed ones included) and the measurements."""
    return [r for r in task_roles(res, task) if is_variant(r)]


def variant_failure(res: Results, task: str, role: str) -> str | None:
    """The one-line reason a variant failed to build or load (its entry's `available: false`), else None."""
    e = model_entry(res, task, role)
    if e.get("available") is not False:
        return None
    reason = str(e.get("reason") or "").strip()
    return reason.splitlines()[0] if reason else "no reason recorded"


def task_summary(res: Results, task: str) -> dict[str, Any]:
    s = res.tasks.get(task)
    return s if isinstance(s, dict) else {}


def summary_model(res: Results, task: str, role: str) -> dict[str, Any]:
    models = task_summary(res, task).get("models")
    if isinstance(models, dict) and isinstance(models.get(role), dict):
        return models[role]
    return {}


def summary_accuracy(res: Results, task: str, role: str) -> dict[str, Any]:
    """{"mean", "ci", "per_seed"} in percent, from the training summary; {} when absent."""
    acc = summary_model(res, task, role).get("accuracy")
    if acc is None:
        acc = model_entry(res, task, role).get("accuracy_train_summary")
    if isinstance(acc, dict):
        mean = num(acc.get("mean"))
        per_seed = [num(x) for x in acc.get("per_seed") or [] if num(x) is not None]
        if mean is None and per_seed:
            mean = float(np.mean(per_seed))
        if mean is None:
            return {}
        k = _acc_scale(mean)
        ci = pair(acc.get("ci95"))
        return {"mean": mean * k, "ci": (ci[0] * k, ci[1] * k) if ci else None,
                "per_seed": [x * k for x in per_seed]}
    v = num(acc)
    if v is not None:
        return {"mean": v * _acc_scale(v), "ci": None, "per_seed": []}
    return {}


def comparison_block(res: Results, task: str, name: str) -> dict[str, Any] | None:
    """A block of the training summary's "comparison" (diff_pts, ci95, p_value, test), if well-formed."""
    comp = task_summary(res, task).get("comparison")
    block = comp.get(name) if isinstance(comp, dict) else None
    if isinstance(block, dict) and num(block.get("diff_pts")) is not None:
        return block
    return None


def _pick(ms: list[Measurement]) -> Measurement | None:
    return ms[0] if ms else None


def measured_accuracy(res: Results, task: str, role: str, backend: str) -> float | None:
    """Accuracy suite result in percent (the largest evaluation when there are several)."""
    ms = [m for m in task_measurements(res, task, "accuracy")
          if m.model == role and m.backend == backend and m.metrics.accuracy is not None]
    if not ms:
        return None
    m = max(ms, key=lambda m: m.metrics.n or 0)
    v = m.metrics.accuracy
    return v * _acc_scale(v)


def measured_backends(res: Results, task: str, suite: str) -> list[str]:
    return backend_order(m.backend for m in task_measurements(res, task, suite))


def model_sizes(res: Results, task: str, role: str) -> StorageMetrics:
    """A model's sizes (params, macs, onnx_bytes, ...) as typed storage metrics: the results' model
    entry first, then the training summary, then the storage suite's measurement (older files)."""
    merged: dict[str, Any] = {}
    for m in task_measurements(res, task, "storage"):
        if m.model == role:
            merged.update(m.metrics.to_dict())
    for layer in (summary_model(res, task, role), model_entry(res, task, role)):
        merged.update({k: v for k, v in layer.items() if num(v) is not None})
    return StorageMetrics.from_dict(merged)


def train_seconds(res: Results, task: str, role: str) -> float | None:
    for holder in (model_entry(res, task, role), summary_model(res, task, role)):
        ts = holder.get("train_seconds")
        if isinstance(ts, dict) and num(ts.get("mean")) is not None:
            return num(ts["mean"])
        if num(ts) is not None:
            return num(ts)
    return None


def parity(res: Results, task: str, role: str) -> dict[str, Any] | None:
    p = model_entry(res, task, role).get("parity")
    return p if isinstance(p, dict) else None


def opts_key(m: Measurement) -> str:
    return ",".join(f"{k}={m.options[k]}" for k in sorted(m.options) if k not in ("benchmark", "group"))


def find(res: Results, task: str, suite: str, role: str, backend: str, batch: int | None = None,
         threads: int | None = None, opts: str | None = None) -> Measurement | None:
    ms = [m for m in task_measurements(res, task, suite) if m.model == role and m.backend == backend
          and (batch is None or m.batch_size == batch) and (threads is None or m.threads == threads)]
    if opts is not None:
        exact = [m for m in ms if opts_key(m) == opts]
        if exact or len({opts_key(m) for m in ms}) != 1:
            ms = exact
    return _pick(ms)


# -- the machine: roofline suite (peak GEMM) -------------------------------------------------------

def roofline(res: Results, threads: int | None = None) -> RooflineMetrics | None:
    """The roofline suite's metrics (peak GEMM), at `threads` when measured there, else the first."""
    roof = [m for m in res.measurements if m.suite == "roofline" and m.metrics.peak_gflops is not None]
    if not roof:
        return None
    same = [m for m in roof if threads is None or m.threads == threads]
    return (same or roof)[0].metrics


def peak_by_source(roof: RooflineMetrics | None) -> dict[str, float]:
    """{"numpy": GFLOP/s, ...}: `peak_by_source`, else the older per-library fields `<lib>_gflops`."""
    if not roof:
        return {}
    by = roof.peak_by_source
    if isinstance(by, dict):
        return {str(k): num(v) for k, v in by.items() if num(v) is not None}
    older = {"numpy": roof.numpy_gflops, "torch": roof.torch_gflops, "onnxruntime": roof.onnxruntime_gflops}
    return {k: v for k, v in older.items() if v is not None}

