"""Statistics over raw timings and per-seed scores. numpy/scipy do the work; this module picks methods.

Everything returned is plain Python (float, int, list) so it goes into a results file as is;
no NaN is ever returned (the results file is strict JSON).

Median confidence intervals are percentile bootstraps with a fixed seed, so the same samples give
the same interval on every run. `scipy.stats.bootstrap` does the resampling up to
`BOOTSTRAP_MAX_N` samples; above that, resampling 2000 x n values costs seconds, so the interval
comes from the *exact* bootstrap distribution of the median instead: the median of a resample is
<= the j-th smallest sample exactly when at least m = n//2 + 1 of its n draws land among the j
smallest, i.e. P = P(Binomial(n, j/n) >= m). That is what the percentile bootstrap
converges to with infinitely many resamples, it costs one vectorised binomial over n values, and
it has no Monte-Carlo noise (for even n it treats the median as the upper of the two middle
values, a difference far below the interval's width at n > BOOTSTRAP_MAX_N).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

from harness.errors import OptionError
from harness.metrics import as_float

SEED = 20261127  # fixed: the same samples always give the same interval
N_RESAMPLES = 2000
BOOTSTRAP_MAX_N = 2000  # above this, use the exact bootstrap distribution of the median
CONFIDENCE = 0.95


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _as_1d(samples: Any, what: str = "samples") -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"no {what}: cannot summarise an empty sample")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contain NaN or infinite values")
    return x


def _rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def _median_axis(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def _exact_median_cdf(sorted_x: np.ndarray) -> np.ndarray:
    """cdf[j-1] = P(bootstrap median <= sorted_x[j-1]), j = 1..n (see the module docstring)."""
    n = sorted_x.size
    m = n // 2 + 1  # rank of the median: the middle value for odd n, the upper middle for even n
    j = np.arange(1, n + 1)
    return _st.binom.sf(m - 1, n, j / n)


def _exact_median_ci(x: np.ndarray, level: float) -> tuple[float, float]:
    s = np.sort(x)
    cdf = _exact_median_cdf(s)
    alpha = (1.0 - level) / 2.0
    lo = s[min(int(np.searchsorted(cdf, alpha, side="left")), s.size - 1)]
    hi = s[min(int(np.searchsorted(cdf, 1.0 - alpha, side="left")), s.size - 1)]
    return float(lo), float(hi)


def _exact_median_draws(x: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """`n_draws` bootstrap medians of x, drawn from the exact bootstrap distribution."""
    s = np.sort(x)
    cdf = _exact_median_cdf(s)
    idx = np.searchsorted(cdf, rng.random(n_draws), side="left")
    return s[np.minimum(idx, s.size - 1)]


def _bootstrap_median_draws(x: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap medians of x: real resamples for small n, exact-distribution draws above."""
    if x.size > BOOTSTRAP_MAX_N:
        return _exact_median_draws(x, n_draws, rng)
    out = np.empty(n_draws)
    step = max(1, 2_000_000 // max(1, x.size))  # bound memory of one batch of resamples
    for start in range(0, n_draws, step):
        k = min(step, n_draws - start)
        out[start : start + k] = np.median(x[rng.integers(0, x.size, size=(k, x.size))], axis=1)
    return out


def median_ci(samples: Any, level: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median (fixed seed); exact distribution above BOOTSTRAP_MAX_N."""
    x = _as_1d(samples)
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    if x.size > BOOTSTRAP_MAX_N:
        return _exact_median_ci(x, level)
    res = _st.bootstrap(
        (x,),
        _median_axis,
        n_resamples=N_RESAMPLES,
        vectorized=True,
        axis=-1,
        confidence_level=level,
        method="percentile",
        rng=_rng(),
        batch=max(1, 2_000_000 // x.size),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# --------------------------------------------------------------------------------------------
# timing summaries
# --------------------------------------------------------------------------------------------
def summarize_ns(samples_ns: Any) -> dict[str, Any]:
    """Percentiles, spread and a bootstrap CI of the median of per-call timings (ns in, ms out).

    Percentiles use numpy's default (linear interpolation). std is the sample std (ddof=1; 0 for
    n=1); cv = std/mean; mad_ms is the raw median absolute deviation (not scaled to sigma).
    """
    x = _as_1d(samples_ns)
    ms = x / 1e6
    n = int(ms.size)
    p10, p50, p90, p95, p99, p999, q25, q75 = np.percentile(ms, [10, 50, 90, 95, 99, 99.9, 25, 75])
    mean = float(np.mean(ms))
    std = float(np.std(ms, ddof=1)) if n > 1 else 0.0
    lo, hi = median_ci(ms)
    return {
        "n": n,
        "p10_ms": float(p10),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
        "mean_ms": mean,
        "std_ms": std,
        "iqr_ms": float(q75 - q25),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "cv": std / mean if mean > 0 else 0.0,
        "mad_ms": float(_st.median_abs_deviation(ms, scale=1.0)),
        "median_ci95_ms": [lo, hi],
        "median_ci_method": "bootstrap-percentile" if n <= BOOTSTRAP_MAX_N else "exact-bootstrap-median",
    }


@dataclass(frozen=True)
class StabilityThresholds:
    """When a timing distribution is too spread out to trust its median at face value.

    tail_spread: (p90 - p50) / p50       (a long right tail: interference, throttling, GC)
    iqr_rel:     IQR / median            (a wide or bimodal body)
    ci_rel:      CI half-width / median  (the median itself is not pinned down)
    min_n:       fewer samples than this is flagged
    """

    tail_spread: float = 0.5
    iqr_rel: float = 0.25
    ci_rel: float = 0.05
    min_n: int = 30

    def __post_init__(self) -> None:
        for name in ("tail_spread", "iqr_rel", "ci_rel"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise OptionError(f"stability threshold {name} must be a positive number, got {v!r}")
        if not (isinstance(self.min_n, int) and self.min_n >= 1):
            raise OptionError(f"stability threshold min_n must be an integer >= 1, got {self.min_n!r}")


def stability_warnings(summary: dict[str, Any], thresholds: StabilityThresholds | None = None) -> list[str]:
    """Human-readable warnings for a `summarize_ns` result that breaks a threshold."""
    t = thresholds or StabilityThresholds()
    out: list[str] = []
    p50 = float(summary["p50_ms"])
    n = int(summary.get("n", 0))
    if n < t.min_n:
        out.append(f"only {n} samples (< {t.min_n}): percentiles and CI are rough")
    if p50 <= 0:
        out.append("median time is 0 ms: below the timer's resolution, numbers are meaningless")
        return out
    tail = (float(summary["p90_ms"]) - p50) / p50
    if tail > t.tail_spread:
        out.append(
            f"long tail: p90 is {tail:.0%} above p50 (threshold {t.tail_spread:.0%}); "
            "other load or frequency scaling likely disturbed the run"
        )
    iqr = float(summary["iqr_ms"]) / p50
    if iqr > t.iqr_rel:
        out.append(
            f"wide spread: IQR is {iqr:.0%} of the median (threshold {t.iqr_rel:.0%}); "
            "the distribution may be bimodal"
        )
    lo, hi = summary.get("median_ci95_ms", [p50, p50])
    half = (float(hi) - float(lo)) / 2.0 / p50
    if half > t.ci_rel:
        out.append(
            f"imprecise median: 95% CI half-width is {half:.1%} of the median "
            f"(threshold {t.ci_rel:.0%}); run longer"
        )
    return out


# --------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------
def ratio_ci(a_ns: Any, b_ns: Any, paired: bool, level: float = CONFIDENCE) -> tuple[float, float, float]:
    """median(a) / median(b) with a percentile-bootstrap CI (fixed seed).

    paired=True resamples index pairs jointly (a[i] and b[i] belong together, e.g. per-round
    medians of an interleaved run); paired=False resamples a and b independently.
    """
    a = _as_1d(a_ns, "a samples")
    b = _as_1d(b_ns, "b samples")
    mb = float(np.median(b))
    if mb <= 0:
        raise ValueError("median of b is not positive: ratio undefined")
    ratio = float(np.median(a)) / mb
    if paired:
        if a.size != b.size:
            raise ValueError(f"paired ratio needs equal lengths, got {a.size} and {b.size}")
        if a.size == 1:
            return ratio, ratio, ratio
        if a.size > BOOTSTRAP_MAX_N:  # keep it fast: a random subset of pairs (wider, conservative CI)
            keep = _rng().choice(a.size, BOOTSTRAP_MAX_N, replace=False)
            a, b = a[keep], b[keep]

        def stat(x, y, axis=-1):
            return np.median(x, axis=axis) / np.median(y, axis=axis)

        res = _st.bootstrap(
            (a, b),
            stat,
            n_resamples=N_RESAMPLES,
            vectorized=True,
            paired=True,
            axis=-1,
            confidence_level=level,
            method="percentile",
            rng=_rng(),
            batch=max(1, 1_000_000 // a.size),
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    else:
        rng = _rng()
        da = _bootstrap_median_draws(a, N_RESAMPLES, rng)
        db = _bootstrap_median_draws(b, N_RESAMPLES, rng)
        r = da / np.where(db > 0, db, np.nan)
        r = r[np.isfinite(r)]
        alpha = (1.0 - level) / 2.0
        lo, hi = (float(v) for v in np.percentile(r, [100 * alpha, 100 * (1 - alpha)]))
    return ratio, min(lo, ratio), max(hi, ratio)


def mannwhitney(a: Any, b: Any, alternative: str = "two-sided", cap: int | None = None) -> float | None:
    """Mann-Whitney U p-value (scipy; asymptotic for large samples); None under 3 values a side.

    1.0 when both sides are one and the same constant. `cap` thins long samples evenly
    (quantile-preserving), which keeps the test's cost bounded for the gate's raw samples.
    """
    if a is None or b is None or len(a) < 3 or len(b) < 3:
        return None
    x = np.sort(_as_1d(a, "a samples"))
    y = np.sort(_as_1d(b, "b samples"))
    if cap is not None:
        x, y = (v[np.linspace(0, v.size - 1, cap).round().astype(int)] if v.size > cap else v for v in (x, y))
    if np.all(x == x[0]) and np.all(y == x[0]):
        return 1.0
    p = float(_st.mannwhitneyu(x, y, alternative=alternative).pvalue)
    return p if np.isfinite(p) else 1.0


def mean_ci(values: Any, level: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean with a Student-t CI (e.g. accuracy over seeds). n=1 or zero spread: lo = hi = mean."""
    if not (0 < level < 1):
        raise OptionError(f"confidence level must be in (0, 1), got {level!r}")
    x = _as_1d(values, "values")
    mean = float(np.mean(x))
    if x.size == 1:
        return mean, mean, mean
    sem = float(_st.sem(x))
    if sem == 0.0:
        return mean, mean, mean
    lo, hi = _st.t.interval(level, df=x.size - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


def _t_result(test, mean: float, spread: float, level: float) -> tuple[tuple[float, float], float]:
    """(CI, p) of a scipy t-test (called only with spread); with zero spread the difference is exact."""
    if spread == 0.0:
        return (mean, mean), (1.0 if mean == 0 else 0.0)
    res = test()
    ci = res.confidence_interval(level)
    return (float(ci.low), float(ci.high)), float(res.pvalue)


def difference(a: Any, b: Any, a_ci: tuple[float, float] | None = None, b_ci: tuple[float, float] | None = None,
               a_mean: float | None = None, b_mean: float | None = None, level: float = CONFIDENCE
               ) -> dict[str, Any]:
    """Difference a - b (e.g. accuracy over seeds) with a CI and p-value, by the test the data allow.

    - one side a single value, the other >= 2: one-sample t of the differences;
    - equal lengths >= 2: paired t (seed i of both models);
    - otherwise both >= 2: Welch t;
    - only CIs: half-widths combined in quadrature (no p-value).
    Returns {} without both means; keys diff, ci, p_value, test (and per_seed for the first two).
    """
    a = [float(x) for x in (a if a is not None else []) if as_float(x) is not None]
    b = [float(x) for x in (b if b is not None else []) if as_float(x) is not None]
    a_mean = float(np.mean(a)) if a_mean is None and a else a_mean
    b_mean = float(np.mean(b)) if b_mean is None and b else b_mean
    if a_mean is None or b_mean is None:
        return {}
    out: dict[str, Any] = {"diff": a_mean - b_mean, "ci": None, "p_value": None, "test": None}
    if (len(a) >= 2 and len(b) == 1) or (len(a) == 1 and len(b) >= 2):
        many, one, sign = (a, b[0], 1.0) if len(a) >= 2 else (b, a[0], -1.0)
        d = sign * (np.asarray(many) - one)
        out["diff"] = float(np.mean(d))
        out["ci"], out["p_value"] = _t_result(lambda: _st.ttest_1samp(d, 0.0), out["diff"], float(np.std(d)), level)
        out["test"], out["per_seed"] = "one-sample t", [float(x) for x in d]
    elif len(a) == len(b) and len(a) >= 2:
        d = np.asarray(a) - np.asarray(b)
        out["diff"] = float(np.mean(d))
        out["ci"], out["p_value"] = _t_result(lambda: _st.ttest_rel(a, b), out["diff"], float(np.std(d)), level)
        out["test"], out["per_seed"] = "paired t", [float(x) for x in d]
    elif len(a) >= 2 and len(b) >= 2:
        out["diff"] = float(np.mean(a) - np.mean(b))
        spread = float(np.var(a) + np.var(b))
        out["ci"], out["p_value"] = _t_result(lambda: _st.ttest_ind(a, b, equal_var=False), out["diff"], spread, level)
        out["test"] = "welch t"
    elif a_ci and b_ci:
        hw = math.hypot((a_ci[1] - a_ci[0]) / 2, (b_ci[1] - b_ci[0]) / 2)
        out["ci"], out["test"] = (out["diff"] - hw, out["diff"] + hw), "ci"
    return out


def paired_difference(a: Any, b: Any, level: float = CONFIDENCE) -> dict[str, Any]:
    """Mean of a - b over pairs (e.g. KD vs scratch accuracy per seed) with a t CI and a paired t-test,
    in the training summary's layout. One pair: no test (p_value None, the CI collapses to the value);
    zero spread and a non-zero difference: exact, p_value 0."""
    x = _as_1d(a, "a values")
    y = _as_1d(b, "b values")
    if x.size != y.size:
        raise OptionError(f"paired difference needs equal-length samples, got {x.size} and {y.size}")
    d = x - y
    if d.size < 2:
        mean = float(d[0])
        ci, p = (mean, mean), None
    else:
        out = difference(x, y, level=level)
        mean, ci, p = out["diff"], out["ci"], out["p_value"]
    return {"diff_pts": mean, "ci95": [float(ci[0]), float(ci[1])], "p_value": p, "test": "paired t-test",
            "n": int(d.size), "per_pair": [float(v) for v in d]}
