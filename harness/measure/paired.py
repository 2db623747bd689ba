"""Paired suite: the reference model (teacher) and each other model timed INTERLEAVED.

Timing models one after the other lets slow drift (thermal state, frequency scaling, other load
on a shared machine) land on one model and not the other. Here the reference and all its candidates
(same task, backend and options) run round robin: for each round r = 1..R, one block of calls of
each, in an order rotated by one every round (R-C1-C2, C1-C2-R, C2-R-C1, ...; with one candidate the
classic R-C, C-R alternation). R is a whole number of cycles, so every model holds every position
equally often, and with two or more candidates no model runs two blocks back to back. All candidates
are measured against the same reference blocks (twin students, one teacher sample), and a group costs
n + 1 blocks a round rather than 2n in separate pairs.

Interleaving must not disturb what it measures. Two sessions in one process disturb each other
(ONNX Runtime pools spin after a run and, on 2 cores, take the other model's core; torch shares
one process-wide OpenMP pool), so `harness bench` gives each model a worker process of its own
(harness/measure/worker.py) and the suite drives the blocks through the handles' timers. Between
two blocks the driver waits `settle_s`, long enough for the previous model's pool to stop
spinning, and each block starts with `block_warmup_calls` untimed calls that re-warm the caches
the other model evicted. Each model's block holds about `block_time_s` of its own calls (k per
model), so a fast student's block is as long as its teacher's. Every paired p50 can be checked
against the same model's isolated latency-suite p50 (the report does, and warns past 5%).

Reported per candidate (Measurement with suite "paired", model = candidate role):
- speedup = median(all reference calls) / median(all candidate calls), i.e. teacher_p50 / student_p50;
- speedup_ci95: two-stage bootstrap, processes then rounds within each drawn process, both models'
  calls of a drawn round together, recomputing the point estimate's statistic (so the point
  estimate always lies in its interval). Rounds are the inner unit because calls within a round
  share the machine's state; processes are the outer one because a fresh process can land in
  another speed state (see worker.py), which one process's CI cannot see;
- speedup_rounds_ci95: the simpler variant, ratio of medians of the per-round medians with pairs
  (reference round median, candidate round median) resampled jointly (`stats.ratio_ci(paired=True)`);
- process_speedups and speedup_between_process_cv: the speedup of each process on its own;
- speedup_p10 [speedup_p10_ci95], process_speedups_p10: the same with each model's 10th-percentile
  call instead of its median, the fast-state ratio the regression gate judges by (see
  FAST_STATE_QUANTILE);
- p_value: two-sided Mann-Whitney U over all per-call samples (calls within a round are
  correlated, so this p-value is optimistic; the CI is the primary evidence);
  p_value_rounds: the same test over per-round medians (conservative);
- significant: whether speedup_ci95 excludes 1;
- the candidate's per-call samples in samples_ns and the reference's in
  metrics["reference_samples_ns"], both in process then round order, with calls_per_block and
  reference_calls_per_block (lists per process in `process_calls_per_block` after a merge).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from harness.errors import OptionError
from harness.options import check_int, check_number
from harness.measure.base import SessionHandle
from harness.measure.latency import BETWEEN_PROCESS_WARN, _check_batch_sizes, get_batch, summarize_processes, timing_metrics
from harness.measure.hierarchical import between_process_cv, hierarchical_ratio_ci
from harness.measure.stats import (
    StabilityThresholds,
    mannwhitney,
    ratio_ci,
    stability_warnings,
)
from harness.measure.timing import TimingConfig, estimate_call_ns, timer_info
from harness.metrics import PairedMetrics
from harness.results import Measurement


@dataclass(frozen=True)
class PairedConfig:
    batch_sizes: tuple[int, ...] = (1,)
    rounds: int = 30
    calls_per_block: int | None = None  # None: per model, from its warm-up, so a block lasts about block_time_s
    block_time_s: float = 0.05
    block_warmup_calls: int = 2  # untimed calls at the start of each block: caches the other model evicted
    settle_s: float = 0.005  # pause between blocks: the previous model's thread pool stops spinning
    min_calls_per_block: int = 5
    max_calls_per_block: int = 1000
    max_time_s: float = 60.0  # per candidate and batch size; stops after a whole round, keeps >= 2 rounds
    warmup: TimingConfig = field(default_factory=lambda: TimingConfig(warmup_min_s=0.2, warmup_min_calls=5))
    reference_role: str = "teacher"
    thresholds: StabilityThresholds = field(default_factory=StabilityThresholds)
    pooled: bool = False  # as LatencyConfig.pooled: raw runs for merge.merge_processes, statistics there
    # the A/A control: a reference handle carrying extra["control_timer"] (a second session of the same
    # model) is timed in every round beside its candidates, its ratio to the reference should read 1.00
    control: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", _check_batch_sizes(self.batch_sizes, "paired"))
        check_int(self.rounds, "paired rounds", minimum=2)
        check_int(self.calls_per_block, "paired calls_per_block", optional=True)
        check_int(self.min_calls_per_block, "paired min_calls_per_block")
        check_int(self.max_calls_per_block, "paired max_calls_per_block (>= min_calls_per_block)",
                  minimum=self.min_calls_per_block if isinstance(self.min_calls_per_block, int) else 1)
        check_int(self.block_warmup_calls, "paired block_warmup_calls", minimum=0)
        check_number(self.settle_s, "paired settle_s", minimum=0)
        for name in ("block_time_s", "max_time_s"):
            check_number(getattr(self, name), f"paired {name}", minimum=0, exclusive=True)
        if not isinstance(self.reference_role, str) or not self.reference_role:
            raise OptionError(f"paired reference_role must be a non-empty string, got {self.reference_role!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The fast-state ratio: each model's 10th-percentile call. On a machine that drops into slower states
# on its own (noisy neighbours; here a plain matmul loop read 337 us, then 198 us, seconds apart),
# the states change the teacher/student ratio (a slow state hit this machine's students harder than
# their teachers), so the p50 ratio moves with the mix of states a run happened to see. The p10
# ratio is the models' speed when undisturbed. Three benches of one unchanged gunpoint pair (ONNX
# Runtime, batch 8, 1 thread) read p50 ratios of 9.5x, 13.2x and 9.9x but p10 ratios of 11.8x, 11.8x
# and 12.5x; a plain interleaved loop in a quiet spell read 11.8x-12.2x.
FAST_STATE_QUANTILE = 10.0
# The A/A control fails when its CI excludes 1 by more than this: a bias under 2% is below what the
# speedups' own CIs resolve on a shared 2-core machine, and with one test per (task, backend) an
# exclusion by chance alone would flag 1 run in 5 of an unchanged machine.
CONTROL_MARGIN = 0.02


def _calls_per_block(cfg: PairedConfig, est_ns: float) -> int:
    if cfg.calls_per_block is not None:
        return int(cfg.calls_per_block)
    k = math.ceil(cfg.block_time_s * 1e9 / est_ns)
    return min(max(k, cfg.min_calls_per_block), cfg.max_calls_per_block)


def planned_rounds(rounds: int, group_size: int) -> int:
    """`rounds` rounded to the nearest whole number of cycles (group_size rounds each), at least one
    cycle and at least two rounds."""
    m = max(1, int(group_size))
    return max(2, m * max(1, int(rounds / m + 0.5)))


def round_order(group_size: int, r: int) -> list[int]:
    """The timers' order in round r: 0..m-1 rotated left by r."""
    m = int(group_size)
    return [(r + i) % m for i in range(m)]


def time_round_robin(
    timers: Sequence[Any],
    batch: np.ndarray | None,
    config: PairedConfig,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
    sleep: Callable[[float], Any] = time.sleep,
    same_k: dict[int, int] | None = None,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """One block of each timer per round, the reference (`timers[0]`) and every candidate of its group.

    Returns (one R x k_i int64 array per timer, calibration). Round r runs the timers in the given
    order rotated by r (R-A-B, A-B-R, B-R-A, ...), and R is rounded to whole cycles of m = len(timers)
    rounds (the nearest, at least one; a deadline stop also waits for a cycle's end). Over a cycle
    every model holds every position once, so drift within a round lands on all of them alike, and
    for m >= 3 no model ever runs two blocks back to back (a block right after its own is warm, which
    would favour whoever ends one round and starts the next). For m = 2 the rotation is the classic
    R-C, C-R alternation, where both models repeat equally often. Every candidate's ratio uses the
    same reference calls: two candidates of one architecture (the scratch and KD students) are judged
    against one set of teacher blocks, and a group of n candidates costs n + 1 blocks a round instead
    of 2n in separate pairs.

    The timers time the calls where the models live (a worker process each in `harness bench`); this
    driver only orders the blocks, waits `settle_s` between them and watches the deadline, which is
    `max_time_s` per candidate.
    """
    cfg = config
    w0 = clock()
    warm = []
    for i, timer in enumerate(timers):
        if i:
            sleep(cfg.settle_s)
        warm.append(timer.warm_up(batch, cfg.warmup))
    warmup_s = (clock() - w0) / 1e9
    est = [estimate_call_ns(w) for w in warm]
    ks = [_calls_per_block(cfg, e) for e in est]
    for i, j in (same_k or {}).items():  # the A/A control: blocks shaped like the reference's, so they pair
        ks[i] = ks[j]

    m = len(timers)
    rounds = planned_rounds(cfg.rounds, m)
    out = [np.zeros((rounds, k), dtype=np.int64) for k in ks]
    done = 0
    start = clock()
    deadline = start + int(cfg.max_time_s * max(1, m - 1) * 1e9)
    for r in range(rounds):
        for i in round_order(m, r):
            sleep(cfg.settle_s)
            out[i][r, :] = timers[i].block(batch, ks[i], cfg.block_warmup_calls)
        done = r + 1
        if done >= 2 and done % m == 0 and clock() > deadline:
            break
    end = clock()
    calibration = {
        "warmup_calls": [len(w) for w in warm],
        "warmup_s": warmup_s,
        "estimated_call_ns": est,
        "calls_per_block": ks,
        "block_warmup_calls": int(cfg.block_warmup_calls),
        "settle_s": float(cfg.settle_s),
        "planned_rounds": rounds,
        "rounds": done,
        "stopped_by_max_time": done < rounds,
        "total_s": (end - start) / 1e9,
        "order": "round robin, reference first in round 1, the order rotated by one each round",
        "gc_disabled": True,
        **timer_info(),
    }
    return [o[:done] for o in out], calibration


def time_interleaved(ref_timer: Any, cand_timer: Any, batch: np.ndarray | None, config: PairedConfig,
                     **kw) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A group of one: (ref samples R x k_ref, candidate samples R x k_cand, calibration)."""
    (ref, cand), calibration = time_round_robin([ref_timer, cand_timer], batch, config, **kw)
    return ref, cand, calibration


def _pair_calibration(group: dict[str, Any], i: int, size: int) -> dict[str, Any]:
    """The group's calibration as one candidate's pair (reference first): the shape every reader knows."""
    cal = dict(group)
    for key in ("warmup_calls", "estimated_call_ns", "calls_per_block"):
        cal[key] = [group[key][0], group[key][i]]
    cal["group_size"] = size
    return cal


def _group_key(h: SessionHandle) -> tuple:
    return (h.task, h.backend, json.dumps(h.options.key(), sort_keys=True, default=str))


def control_check(ref_groups: Sequence[np.ndarray], control_groups: Sequence[np.ndarray]) -> dict[str, Any]:
    """The A/A control: the reference against a second session of itself, timed in the same rounds.

    Its ratio should read 1.00. It fails when its CI excludes 1 by more than CONTROL_MARGIN: the
    pairing then favours one position or session over another by more than the CI claims to resolve
    (a neighbour's spinning pool spilling into the next block, a worker sharing a core), and every
    speedup of the group carries that bias. Drift between processes or moments does not fail it: both
    sessions see the same rounds."""
    ratio, lo, hi = hierarchical_ratio_ci(ref_groups, control_groups)
    off = lo > 1.0 + CONTROL_MARGIN or hi < 1.0 - CONTROL_MARGIN
    return {"control_ratio": ratio, "control_ci95": [lo, hi], "control_valid": not off}


def compare(ref_groups: Sequence[np.ndarray], cand_groups: Sequence[np.ndarray], overhead: dict[str, Any],
            calibrations: Sequence[dict[str, Any]], thresholds: StabilityThresholds, reference_role: str,
            control_groups: Sequence[np.ndarray] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Metrics and warnings for interleaved runs: one (rounds x calls) array per process and model
    (and, where the group had one, its A/A control's, shaped like the reference's)."""
    ref_groups = [np.atleast_2d(np.asarray(g, dtype=np.int64)) for g in ref_groups]
    cand_groups = [np.atleast_2d(np.asarray(g, dtype=np.int64)) for g in cand_groups]
    ref_all = np.concatenate([g.ravel() for g in ref_groups])
    cand_all = np.concatenate([g.ravel() for g in cand_groups])
    speedup, lo, hi = hierarchical_ratio_ci(ref_groups, cand_groups)
    ref_round = np.concatenate([np.median(g, axis=1) for g in ref_groups])
    cand_round = np.concatenate([np.median(g, axis=1) for g in cand_groups])
    _, rlo, rhi = ratio_ci(ref_round, cand_round, paired=True)
    process_speedups = [float(np.median(r)) / float(np.median(c)) for r, c in zip(ref_groups, cand_groups)]
    fast, fast_lo, fast_hi = hierarchical_ratio_ci(ref_groups, cand_groups, q=FAST_STATE_QUANTILE)
    process_fast = [float(np.percentile(r, FAST_STATE_QUANTILE)) / float(np.percentile(c, FAST_STATE_QUANTILE))
                    for r, c in zip(ref_groups, cand_groups)]
    cand_metrics, warnings = timing_metrics([g.ravel() for g in cand_groups], list(calibrations), overhead, thresholds)
    ref_summary = summarize_processes([g.ravel() for g in ref_groups])
    warnings += [f"{reference_role}: {w}" for w in stability_warnings(ref_summary, thresholds)]
    metrics: dict[str, Any] = dict(cand_metrics)  # the candidate's own summary: p50_ms, p90_ms, ...
    metrics.update({
        "speedup": speedup,
        "speedup_ci95": [lo, hi],
        "speedup_ci_method": "two-stage bootstrap: processes, then rounds (both models' calls of a round together)",
        "speedup_rounds_ci95": [rlo, rhi],
        "process_speedups": process_speedups,
        "speedup_between_process_cv": between_process_cv(process_speedups),
        "speedup_p10": fast,
        "speedup_p10_ci95": [fast_lo, fast_hi],
        "process_speedups_p10": process_fast,
        "speedup_p10_between_process_cv": between_process_cv(process_fast),
        # a zero-width CI (one process, one round) is no evidence either way
        "significant": bool(lo < hi and (lo > 1.0 or hi < 1.0)),
        "teacher_p50_ms": ref_summary["p50_ms"],
        "student_p50_ms": cand_metrics["p50_ms"],
        "teacher_median_ci95_ms": ref_summary["median_ci95_ms"],
        "student_median_ci95_ms": cand_metrics["median_ci95_ms"],
        "p_value": mannwhitney(ref_all, cand_all),
        "p_value_rounds": mannwhitney(ref_round, cand_round),
        "processes": len(ref_groups),
        "rounds": int(sum(g.shape[0] for g in ref_groups)),
        "process_rounds": [int(g.shape[0]) for g in ref_groups],
        "calls_per_block": int(cand_groups[0].shape[1]),
        "reference_calls_per_block": int(ref_groups[0].shape[1]),
        "process_calls_per_block": [[int(r.shape[1]), int(c.shape[1])] for r, c in zip(ref_groups, cand_groups)],
        "reference": reference_role,
        "reference_samples_ns": ref_all.tolist(),
        "reference_summary": ref_summary,
    })
    if control_groups:
        control_groups = [np.atleast_2d(np.asarray(g, dtype=np.int64)) for g in control_groups]
        metrics.update(control_check(ref_groups, control_groups))
        metrics["control_samples_ns"] = np.concatenate([g.ravel() for g in control_groups]).tolist()
        if not metrics["control_valid"]:
            lo, hi = metrics["control_ci95"]
            warnings.append(
                f"A/A control: {reference_role} against a second session of itself read "
                f"{metrics['control_ratio']:.3f} [CI {lo:.3f}, {hi:.3f}], not 1: the pairing favoured one session "
                "or position, so this group's speedups carry a bias of that size")
    for cal in calibrations:
        if cal.get("stopped_by_max_time"):
            warnings.append(f"only {cal['rounds']} of {cal['planned_rounds']} rounds in a process: max_time_s reached")
            break
    if len(process_speedups) > 1 and max(process_speedups) / min(process_speedups) - 1 > BETWEEN_PROCESS_WARN:
        warnings.append(
            f"between processes: the speedup ranged {min(process_speedups):.2f}x-{max(process_speedups):.2f}x; "
            "the speed state differs from one fresh process to the next, and the CI covers it"
        )
    # drift: reference round medians in the first vs the second half of each process's run
    for g in ref_groups:
        per_round = np.median(g, axis=1)
        half = per_round.size // 2
        if half >= 2:
            a, b = float(np.median(per_round[:half])), float(np.median(per_round[half:]))
            if a > 0 and abs(b - a) / a > 0.10:
                warnings.append(
                    f"drift: {reference_role}'s per-round median moved {abs(b - a) / a:.0%} between the first and "
                    "second half of a run; interleaving cancels it in the ratio, but the machine was not steady"
                )
                break
    return metrics, warnings


def _measurement(cand: SessionHandle | Measurement, bs: int, metrics: dict[str, Any], cand_all: np.ndarray,
                 warnings: list[str]) -> Measurement:
    if isinstance(cand, Measurement):
        task, model, backend, threads, options = cand.task, cand.model, cand.backend, cand.threads, cand.options
    else:
        task, model, backend = cand.task, cand.role, cand.backend
        threads, options = int(cand.options.threads), cand.options.key()
    return Measurement(task=task, model=model, backend=backend, suite="paired", batch_size=bs, threads=threads,
                       metrics=PairedMetrics.from_dict(metrics, strict=True), options=options,
                       samples_ns=cand_all.tolist(), warnings=warnings)


def groups(handles: Sequence[SessionHandle], reference_role: str = "teacher"
           ) -> list[tuple[SessionHandle, list[SessionHandle]]]:
    """(reference, its candidates) for every reference handle with candidates: the non-reference
    handles that share its task, backend and options, in handle order."""
    refs = {_group_key(h): h for h in handles if h.role == reference_role}
    cands: dict[tuple, list[SessionHandle]] = {}
    for h in handles:
        if h.role != reference_role and _group_key(h) in refs:
            cands.setdefault(_group_key(h), []).append(h)
    return [(refs[key], members) for key, members in cands.items()]


def measure(handles: Sequence[SessionHandle], inputs: dict[int, np.ndarray], config: PairedConfig | None = None
            ) -> list[Measurement]:
    cfg = config or PairedConfig()
    out: list[Measurement] = []
    for ref, cands in groups(handles, cfg.reference_role):
        overheads = [cand.timer.overhead() for cand in cands]
        per_cand: list[list[Measurement]] = [[] for _ in cands]
        control = ref.extra.get("control_timer") if cfg.control else None
        timers = [ref.timer] + [c.timer for c in cands] + ([control] if control is not None else [])
        for bs in cfg.batch_sizes:
            samples, group_cal = time_round_robin(timers, get_batch(inputs, bs), cfg,
                                                  same_k={len(timers) - 1: 0} if control is not None else None)
            control_s = samples.pop() if control is not None else None
            ref_s = samples[0]
            ref_list = ref_s.ravel().tolist() if cfg.pooled else None  # once for the whole group
            for i, (cand, cand_s, overhead) in enumerate(zip(cands, samples[1:], overheads), start=1):
                calibration = _pair_calibration(group_cal, i, len(cands) + 1)
                if cfg.pooled:  # the layout `run_groups` reads, nothing computed twice
                    metrics, warnings = {"reference": cfg.reference_role,
                                         "reference_samples_ns": ref_list,
                                         **({"control_samples_ns": control_s.ravel().tolist()}
                                            if control_s is not None else {}),
                                         "rounds": int(ref_s.shape[0]), "calls_per_block": int(cand_s.shape[1]),
                                         "reference_calls_per_block": int(ref_s.shape[1]),
                                         "calibration": calibration, "harness_overhead": dict(overhead),
                                         "harness_overhead_p50_ns": float(overhead["p50_ns"])}, []
                else:
                    metrics, warnings = compare([ref_s], [cand_s], overhead, [calibration], cfg.thresholds,
                                                cfg.reference_role, [control_s] if control_s is not None else None)
                metrics["workers"] = [ref.timer.where(), cand.timer.where()]
                per_cand[i - 1].append(_measurement(cand, bs, metrics, cand_s.ravel(), warnings))
        for ms in per_cand:  # candidate-major, as one pair after another always listed them
            out += ms
    return out


def _groups(flat: Sequence[int], rounds: Sequence[int], ks: Sequence[int]) -> list[np.ndarray]:
    arr = np.asarray(flat, dtype=np.int64)
    out, at = [], 0
    for r, k in zip(rounds, ks):
        out.append(arr[at: at + r * k].reshape(r, k))
        at += r * k
    if at != arr.size:
        raise ValueError("paired samples do not match their rounds x calls_per_block layout")
    return out


def run_groups(m: Measurement) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(reference, candidate) per-process (rounds x calls) arrays of a paired Measurement."""
    met = m.metrics
    if met.rounds is None or met.calls_per_block is None or met.reference_samples_ns is None:
        raise ValueError("a paired measurement without its rounds, calls_per_block and reference samples")
    rounds = met.process_rounds or [met.rounds]
    ref_k = met.reference_calls_per_block if met.reference_calls_per_block is not None else met.calls_per_block
    per = met.process_calls_per_block or [[ref_k, met.calls_per_block]]
    return (_groups(met.reference_samples_ns, rounds, [p[0] for p in per]),
            _groups(m.samples_ns or [], rounds, [p[1] for p in per]))


def control_groups(m: Measurement) -> list[np.ndarray] | None:
    """The A/A control's per-process (rounds x calls) arrays, laid out like the reference's; None without one."""
    met = m.metrics
    if not met.control_samples_ns:
        return None
    rounds = met.process_rounds or [met.rounds]
    ref_k = met.reference_calls_per_block if met.reference_calls_per_block is not None else met.calls_per_block
    per = met.process_calls_per_block or [[ref_k, met.calls_per_block]]
    return _groups(met.control_samples_ns, rounds, [p[0] for p in per])


def merge_runs(runs: Sequence[Measurement], thresholds: StabilityThresholds | None = None) -> Measurement:
    """One paired Measurement from the same pair and batch measured in several worker processes."""
    ref_groups: list[np.ndarray] = []
    cand_groups: list[np.ndarray] = []
    ctl_groups: list[np.ndarray] | None = []
    calibrations: list[dict[str, Any]] = []
    overheads: list[float] = []
    for m in runs:
        r, c = run_groups(m)
        ref_groups += r
        cand_groups += c
        ctl = control_groups(m)
        ctl_groups = ctl_groups + ctl if ctl is not None and ctl_groups is not None else None
        cal = m.metrics.calibration or {}
        calibrations += cal.get("processes", [cal])
        overheads.append(float(m.metrics.harness_overhead_p50_ns))
    overhead = dict(runs[0].metrics.harness_overhead)
    overhead["p50_ns"] = float(np.median(overheads))
    overhead["process_p50_ns"] = overheads
    metrics, warnings = compare(ref_groups, cand_groups, overhead, calibrations, thresholds or StabilityThresholds(),
                                runs[0].metrics.reference or "teacher", ctl_groups or None)
    metrics["workers"] = [w for m in runs for w in (m.metrics.workers or [])]
    cand_all = np.concatenate([g.ravel() for g in cand_groups])
    return _measurement(runs[0], runs[0].batch_size, metrics, cand_all, warnings)
