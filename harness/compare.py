"""A/B timing of two builds of the same roles: `harness compare BASELINE CURRENT`.

A regression gate needs "is the current student slower than the baseline student?", not the ratio of
two teacher/student speedups measured in different processes at different times: a slow spell of a
shared VM costs a large model more than a small one, so the teacher/student ratio drifts, while two
builds of one architecture are slowed alike. So each role's baseline model and current model are
timed side by side: interleaved blocks in the same fresh worker processes, the paired suite's own
machinery (harness/measure/paired.py) with the baseline as the reference and its A/A control, across
N worker process sets. The figure is the current/baseline latency ratio (p50 and fast-state p10),
with the same two-stage CI over processes and rounds as every speedup.

The models are the ONNX files the two results files record (their sha256 is checked: a file changed
since its results were written is refused), or the same file names in a folder given instead
(`--baseline-models DIR`: CI keeps the baseline's small ONNX files beside results/baseline.json).
Accuracy is not re-measured: each side's comes from its results file, as the gate's accuracy rules read it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import DataError, HarnessError, OptionError
from harness.fileio import sha256_file
from harness.results import Measurement, Results, load_results

log = logging.getLogger(__name__)

SUITE = "ab"  # the measurements' suite name in a results file


@dataclass(frozen=True)
class ModelFile:
    task: str
    role: str
    onnx: Path
    sha256: str | None
    input_shape: tuple[int, ...]


def results_path(path: str | Path) -> Path:
    """A results file, or a run folder holding results.json."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise DataError(f"results file not found: {p}")
    return p


def model_files(res: Results, models_dir: str | Path | None = None) -> tuple[dict[tuple[str, str], ModelFile],
                                                                             list[str]]:
    """(the ONNX model of every available (task, role) in `res`, why others cannot be timed).

    A recorded path is used as it is, or its file name inside `models_dir`. A file whose sha256 differs
    from the recorded one is not the model that was measured: it is listed with the reason, not timed."""
    found: dict[tuple[str, str], ModelFile] = {}
    problems: list[str] = []
    folder = Path(models_dir) if models_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise DataError(f"models folder not found: {folder}")
    for entry in res.models.values():
        task, role, onnx = str(entry.get("task") or ""), str(entry.get("role") or ""), entry.get("onnx")
        if not role or not onnx or entry.get("available") is False:
            continue
        path = folder / Path(onnx).name if folder is not None else Path(onnx)
        if not path.is_file():
            problems.append(f"{role}: {path} not found")
            continue
        want = entry.get("onnx_sha256")
        if want and sha256_file(path) != want:
            problems.append(f"{role}: {path} changed since the results were written (sha256 differs)")
            continue
        shape = entry.get("input_shape")
        if not shape:
            problems.append(f"{role}: no input shape recorded")
            continue
        found[(task, role)] = ModelFile(task, role, path, want, tuple(int(d) for d in shape))
    return found, problems


def common_models(baseline: Results, current: Results, *, baseline_models=None, current_models=None,
                  roles: list[str] | None = None) -> tuple[list[tuple[ModelFile, ModelFile]], list[str]]:
    """The (baseline, current) model pairs both sides have, and why any baseline role has none."""
    base, base_problems = model_files(baseline, baseline_models)
    cur, cur_problems = model_files(current, current_models)
    problems = [f"baseline {p}" for p in base_problems] + [f"current {p}" for p in cur_problems]
    pairs = []
    for key, b in base.items():
        if roles is not None and b.role not in roles:
            continue
        c = cur.get(key)
        if c is None:
            problems.append(f"{b.role}: no current model of task {b.task or '(unnamed)'}")
        elif c.input_shape != b.input_shape:
            problems.append(f"{b.role}: the builds take different inputs ({b.input_shape} vs {c.input_shape})")
        else:
            pairs.append((b, c))
    return pairs, problems


@dataclass(frozen=True)
class CompareConfig:
    backends: tuple[str, ...] = ("onnxruntime",)
    batch_sizes: tuple[int, ...] = (1,)
    threads: int | None = None
    processes: int = 3
    quick: bool = True

    def bench_config(self):
        from harness.bench import BenchConfig

        kw: dict[str, Any] = {}
        if self.threads is not None:
            kw["threads"] = self.threads
        return BenchConfig(backends=list(self.backends), suites=["paired"], batch_sizes=list(self.batch_sizes),
                           processes=self.processes, quick=self.quick, **kw)


def _inverse_ci(ci: Any) -> list[float] | None:
    return [1.0 / ci[1], 1.0 / ci[0]] if ci and ci[0] and ci[1] else None


def _accuracy(res: Results, task: str, role: str) -> float | None:
    """The role's measured test accuracy (a fraction) in a results file, on ONNX Runtime as the gate's
    accuracy rules read it (harness.report.lookup.measured_accuracy gives percent)."""
    from harness.report.lookup import measured_accuracy

    pct = measured_accuracy(res, task, role, "onnxruntime")
    return None if pct is None else pct / 100.0


def ab_measurement(m: Measurement, task: str, role: str, pair: tuple[ModelFile, ModelFile],
                   accuracy: tuple[float | None, float | None] = (None, None)) -> Measurement:
    """The paired run of (baseline = reference, current = candidate) as a current/baseline latency ratio."""
    x = m.metrics
    sp, sp10 = x.speedup, x.speedup_p10
    metrics = {
        "latency_ratio": 1.0 / sp if sp else None,  # current p50 / baseline p50: 1.10 = 10% slower
        "latency_ratio_ci95": _inverse_ci(x.speedup_ci95),
        "latency_ratio_p10": 1.0 / sp10 if sp10 else None,  # the fast state, as the gate's speedup_p10
        "latency_ratio_p10_ci95": _inverse_ci(x.speedup_p10_ci95),
        "baseline_p50_ms": x.teacher_p50_ms, "current_p50_ms": x.student_p50_ms,
        "baseline_accuracy": accuracy[0], "current_accuracy": accuracy[1],
        "processes": x.processes, "process_ratios": [1.0 / s for s in (x.process_speedups or []) if s],
        "control_ratio": x.control_ratio, "control_ci95": x.control_ci95, "control_valid": x.control_valid,
        "baseline_onnx": str(pair[0].onnx), "baseline_sha256": pair[0].sha256,
        "current_onnx": str(pair[1].onnx), "current_sha256": pair[1].sha256,
    }
    return Measurement(task=task, model=role, backend=m.backend, suite=SUITE, batch_size=m.batch_size,
                       threads=m.threads, metrics=metrics, options=m.options, warnings=list(m.warnings))


def compare(baseline: Results | str | Path, current: Results | str | Path, *, baseline_models=None,
            current_models=None, roles: list[str] | None = None,
            config: CompareConfig | None = None) -> Results:
    """Time every role's baseline and current model side by side; a Results of `ab` measurements."""
    from harness.bench import ModelSource, bench_models
    from harness.measure.environment import collect

    base = baseline if isinstance(baseline, Results) else load_results(results_path(baseline))
    cur = current if isinstance(current, Results) else load_results(results_path(current))
    cfg = config or CompareConfig()
    bench_cfg = cfg.bench_config()
    pairs, problems = common_models(base, cur, baseline_models=baseline_models, current_models=current_models,
                                    roles=roles)
    if not pairs:
        raise DataError("no role has a baseline and a current model to time: " + ("; ".join(problems) or
                                                                                   "no ONNX models recorded"))
    out = Results(environment=collect(threads=bench_cfg.threads),
                  config={"compare": {"backends": list(cfg.backends), "batch_sizes": list(cfg.batch_sizes),
                                      "threads": bench_cfg.threads, "processes": cfg.processes, "quick": cfg.quick,
                                      "baseline": base.source, "current": cur.source}},
                  warnings=[f"not compared: {p}" for p in problems])
    for b, c in pairs:
        log.info(f"compare: {b.task or '(unnamed)'}/{b.role}: baseline {b.onnx.name} beside current {c.onnx.name}")
        sources = [ModelSource(task=b.task, role=side, onnx=f.onnx, input_shape=f.input_shape)
                   for side, f in (("baseline", b), ("current", c))]
        res = bench_models(sources, None, bench_cfg)
        paired = [m for m in res.measurements if m.suite == "paired" and m.model == "current"]
        if not paired:
            raise HarnessError(f"{b.role}: the paired run gave no measurement")
        acc = (_accuracy(base, b.task, b.role), _accuracy(cur, c.task, c.role))
        out.measurements += [ab_measurement(m, b.task, b.role, (b, c), acc) for m in paired]
        out.add_model(b.task, b.role, {"baseline_onnx": str(b.onnx), "current_onnx": str(c.onnx),
                                       "input_shape": list(b.input_shape)}, multi_task=True)
    return out


def parse_roles(text: str | None) -> list[str] | None:
    if text is None:
        return None
    roles = [r.strip() for r in text.split(",") if r.strip()]
    if not roles:
        raise OptionError("--roles needs at least one role name")
    return roles


def _acc_change(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return ""
    return f"{100 * before:.2f} -> {100 * after:.2f} ({100 * (after - before):+.2f} pts)"


def format_compare(res: Results) -> str:
    """One row per role, backend and batch size: the current/baseline latency ratio with its CI."""
    from tabulate import tabulate

    def ci(pair) -> str:
        return f"[{pair[0]:.3f}, {pair[1]:.3f}]" if pair else ""

    rows = []
    for m in res.measurements:
        if m.suite != SUITE:
            continue
        x = m.metrics
        # the word judges the fast-state (p10) ratio where there is one, as the gate's ab_latency rule does
        r, lo_hi = ((x.latency_ratio_p10, x.latency_ratio_p10_ci95) if x.latency_ratio_p10 is not None
                    else (x.latency_ratio, x.latency_ratio_ci95))
        if r is None:
            word = "no ratio"
        elif lo_hi and lo_hi[0] > 1:
            word = f"{100 * (r - 1):.1f}% slower"
        elif lo_hi and lo_hi[1] < 1:
            word = f"{100 * (1 - r):.1f}% faster"
        else:
            word = "same within the CI"
        rows.append([m.task or "", m.model, m.backend, m.batch_size, m.threads,
                     f"{x.baseline_p50_ms:.4g}" if x.baseline_p50_ms else "", f"{x.current_p50_ms:.4g}" if x.current_p50_ms else "",
                     "" if x.latency_ratio is None else f"{x.latency_ratio:.3f} {ci(x.latency_ratio_ci95)}",
                     "" if x.latency_ratio_p10 is None else f"{x.latency_ratio_p10:.3f} {ci(x.latency_ratio_p10_ci95)}",
                     "" if x.control_ratio is None else f"{x.control_ratio:.3f} {'ok' if x.control_valid else 'FAILED'}",
                     _acc_change(x.baseline_accuracy, x.current_accuracy), word])
    cfg = res.config.get("compare", {})
    head = (f"A/B: current vs baseline, timed side by side in the same worker processes ({cfg.get('processes')} "
            f"process sets, {cfg.get('threads')} thread(s)); ratio = current / baseline latency, 95% CI over "
            "processes and rounds; speed judged at p10 (the fast state); A/A = the baseline against a second session of itself (should read 1.00)")
    table = tabulate(rows, headers=["task", "role", "backend", "batch", "threads", "baseline ms", "current ms",
                                    "p50 ratio [CI]", "p10 ratio [CI]", "A/A", "accuracy %", "speed (p10)"],
                     disable_numparse=True)
    notes = [f"! {w}" for w in res.warnings]
    return "\n".join([head, "", table, *([""] + notes if notes else [])])
