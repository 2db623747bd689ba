"""Statistics across worker processes: a two-stage (hierarchical) bootstrap.

`harness bench` times every model in several fresh worker processes, whose speed states differ.
Processes are the outer unit (resampled first), rounds or chunks of consecutive calls the inner one,
so a CI covers both the noise within a process and the spread between them.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from harness.measure.stats import (
    CONFIDENCE, N_RESAMPLES, _as_1d, _rng,
)


HIERARCHICAL_CAP = 8_000  # samples per side used for one bootstrap draw (systematic thinning above)
LATENCY_CHUNKS = 20  # a process's latency run is cut into this many consecutive chunks (the inner unit)


def as_chunks(samples: Any, chunks: int = LATENCY_CHUNKS) -> np.ndarray:
    """A process's samples in time order as a (chunks, k) array of consecutive runs.

    Consecutive calls share the machine's state, so a chunk, not a call, is resampled. The last
    n % chunks samples are left out of the array (they still count in the point estimate).
    """
    x = _as_1d(samples)
    c = max(1, min(int(chunks), x.size))
    k = x.size // c
    return x[: c * k].reshape(c, k)


def _thin(blocks: list[np.ndarray], cap: int) -> list[np.ndarray]:
    """Every j-th call of every round so that all processes together hold at most `cap` values.

    Fewer values give a slightly wider (conservative) interval; the point estimate uses them all.
    """
    total = sum(b.size for b in blocks)
    if total <= cap:
        return blocks
    step = math.ceil(total / cap)
    return [b[:, ::step] for b in blocks]


def _two_stage_draws(sides: list[list[np.ndarray]], stat, n_draws: int, rng: np.random.Generator,
                     q: float = 50.0) -> np.ndarray:
    """Bootstrap draws of stat(q-th percentile of side 0, of side 1, ...); q = 50 is the median.

    sides[s][p] is a (rounds, calls) array of process p; rounds of one process are paired across
    sides (the same round of an interleaved run). Stage 1 resamples processes, stage 2 resamples
    the rounds of each drawn process, and the statistic is recomputed over every call drawn.

    Vectorised: a draw is a multiplicity per round; the percentile of the drawn calls is the
    weighted percentile of all calls sorted once (inverse-CDF definition), so no draw copies data.
    """
    n_proc = len(sides[0])
    rounds = [sides[0][p].shape[0] for p in range(n_proc)]
    offsets = np.concatenate([[0], np.cumsum(rounds)])
    weights = np.zeros((n_draws, int(offsets[-1])))
    procs = rng.integers(0, n_proc, (n_draws, n_proc)) if n_proc > 1 else np.zeros((n_draws, 1), dtype=int)
    for slot in range(procs.shape[1]):  # each drawn process brings a resample of its own rounds
        for p in range(n_proc):
            rows = np.flatnonzero(procs[:, slot] == p)
            if rows.size:
                picks = offsets[p] + rng.integers(0, rounds[p], (rows.size, rounds[p]))
                np.add.at(weights, (rows[:, None], picks), 1.0)
    per_side = []
    for side in sides:
        values = np.concatenate([blk.ravel() for blk in side])
        round_of = np.concatenate([offsets[p] + np.repeat(np.arange(blk.shape[0]), blk.shape[1])
                                   for p, blk in enumerate(side)])
        order = np.argsort(values, kind="stable")
        values, round_of = values[order], round_of[order]
        # cum_count[r, j]: calls of round r among the j+1 smallest; a draw's weighted CDF is one matmul
        cum_count = np.zeros((weights.shape[1], values.size))
        cum_count[round_of, np.arange(values.size)] = 1.0
        np.cumsum(cum_count, axis=1, out=cum_count)
        pct = np.empty(n_draws)
        step = max(1, 4_000_000 // max(values.size, 1))  # draws per batch: bounded memory
        for lo in range(0, n_draws, step):
            cum = weights[lo:lo + step] @ cum_count
            target = cum[:, -1] * (q / 100.0)
            idx = np.minimum((cum < target[:, None]).sum(axis=1), values.size - 1)
            pct[lo:lo + step] = values[idx]
        per_side.append(pct)
    return np.array([stat(*vals) for vals in zip(*per_side)])


def _percentile_ci(draws: np.ndarray, point: float, level: float) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return point, point
    alpha = (1.0 - level) / 2.0
    lo, hi = (float(v) for v in np.percentile(draws, [100 * alpha, 100 * (1 - alpha)]))
    return min(lo, point), max(hi, point)


def hierarchical_median_ci(groups: Sequence[Any], level: float = CONFIDENCE) -> tuple[float, float]:
    """95% CI of the median of all samples of several processes (groups[p] in time order).

    Resamples processes, then consecutive chunks within each drawn process (`as_chunks`), so the
    interval widens when processes disagree (between-process variance) as well as when one
    process's run is noisy. One process reduces to a block bootstrap of that run.
    """
    arrays = [_as_1d(g) for g in groups]
    point = float(np.median(np.concatenate(arrays)))
    if all(a.size == 1 for a in arrays) and len(arrays) == 1:
        return point, point
    blocks = _thin([as_chunks(a) for a in arrays], HIERARCHICAL_CAP)
    draws = _two_stage_draws([blocks], lambda m: m, N_RESAMPLES, _rng())
    return _percentile_ci(draws, point, level)


def hierarchical_ratio_ci(a_groups: Sequence[Any], b_groups: Sequence[Any], level: float = CONFIDENCE,
                          q: float = 50.0) -> tuple[float, float, float]:
    """median(all a) / median(all b) over processes x rounds of interleaved runs, with a two-stage CI.

    `q` other than 50 uses that percentile of each side instead of the median (e.g. q = 10 for the
    fast-state ratio, see paired.py).

    a_groups[p] and b_groups[p] are (rounds, calls) arrays of process p (calls per round may differ
    between a and b and between processes; rounds must match within a process). Processes are
    resampled first, then rounds within each drawn process, both sides together.
    """
    if len(a_groups) != len(b_groups) or not a_groups:
        raise ValueError("hierarchical ratio needs the same, non-zero number of processes on both sides")
    a = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in a_groups]
    b = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in b_groups]
    for x, y in zip(a, b):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"rounds differ within a process: {x.shape[0]} and {y.shape[0]}")
    mb = float(np.percentile(np.concatenate([y.ravel() for y in b]), q))
    if mb <= 0:
        raise ValueError("median of b is not positive: ratio undefined")
    ratio = float(np.percentile(np.concatenate([x.ravel() for x in a]), q)) / mb
    if len(a) == 1 and a[0].shape[0] == 1:
        return ratio, ratio, ratio
    draws = _two_stage_draws([_thin(a, HIERARCHICAL_CAP), _thin(b, HIERARCHICAL_CAP)],
                             lambda ma, mb_: ma / mb_ if mb_ > 0 else np.nan, N_RESAMPLES, _rng(), q)
    lo, hi = _percentile_ci(draws, ratio, level)
    return ratio, lo, hi


def between_process_cv(values: Sequence[float]) -> float | None:
    """std/mean (ddof=1) of one figure measured once per process; None with fewer than 2 processes."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2 or float(np.mean(x)) <= 0:
        return None
    return float(np.std(x, ddof=1) / np.mean(x))
