"""Which comparison judges speed: A/B timing of the baseline's models beside the current ones when the
baseline's ONNX files are available (unchanged), else the ratio of the two files' speedups."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from harness.results import Results

log = logging.getLogger(__name__)

SPEED_RULES = ("speedup", "latency_p50")  # what A/B rows replace, for the (task, model, backend) they cover


@dataclass
class SpeedBasis:
    ab: Results | None  # the `ab` measurements, when the baseline's models could be timed
    note: str  # one line for the gate's output: which comparison judged speed, and why
    problems: list[str] = field(default_factory=list)


def _timed_defaults(current: Results) -> tuple[list[int], int | None]:
    paired = [m for m in current.measurements if m.suite == "paired"]
    batches = sorted({m.batch_size for m in paired}) or [1]
    threads = paired[0].threads if paired else None
    return batches, threads


def speed_basis(baseline: Results, current: Results, *, mode: str = "auto", baseline_models: str | Path | None = None,
                current_models: str | Path | None = None, processes: int = 3, threads: int | None = None,
                batch_sizes: list[int] | None = None) -> SpeedBasis:
    """Time the baseline's models beside the current ones (`mode` auto or on), or say why not.

    `on` raises when no role can be timed; `auto` falls back to the ratio of speedups with the reason."""
    from harness.compare import CompareConfig, common_models, compare
    from harness.errors import DataError

    fallback = "speed judged by the ratio of speedups (teacher/student within each file)"
    if mode == "off":
        return SpeedBasis(None, f"{fallback}: A/B timing turned off (--no-ab)")
    try:
        pairs, problems = common_models(baseline, current, baseline_models=baseline_models,
                                        current_models=current_models)
    except DataError as exc:
        if mode == "on":
            raise
        return SpeedBasis(None, f"{fallback}: the baseline's models cannot be timed ({exc})")
    if not pairs:
        if mode == "on":
            raise DataError("--ab: no role has a baseline and a current model to time: " + "; ".join(problems))
        why = "; ".join(problems[:3]) + (f"; +{len(problems) - 3} more" if len(problems) > 3 else "")
        return SpeedBasis(None, f"{fallback}: the baseline's models are not available ({why or 'none recorded'}); "
                                "give --baseline-models DIR", problems)
    default_batches, default_threads = _timed_defaults(current)
    cfg = CompareConfig(batch_sizes=tuple(batch_sizes or default_batches), threads=threads or default_threads,
                        processes=processes)
    ab = compare(baseline, current, baseline_models=baseline_models, current_models=current_models, config=cfg)
    roles = sorted({m.model for m in ab.measurements})
    note = (f"speed judged by A/B timing: each role's baseline model beside its current model in the same worker "
            f"processes ({cfg.processes} process sets, {ab.config['compare']['threads']} thread(s), batch "
            f"{','.join(map(str, cfg.batch_sizes))}; {', '.join(roles)})")
    if problems:
        note += f"; not timed A/B, judged by the ratio of speedups: {'; '.join(problems[:3])}"
    return SpeedBasis(ab, note, problems)


def replace_speed_rows(rows: list, ab_rows: list) -> list:
    """Drop the ratio-of-speedups rows of every (task, model, backend) an A/B row judged."""
    covered = {(r.task, r.model, r.backend) for r in ab_rows}
    return [r for r in rows if not (r.rule in SPEED_RULES and (r.task, r.model, r.backend) in covered)]
