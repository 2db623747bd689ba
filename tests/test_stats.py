"""Statistics: values checked against numpy/scipy and against known truths of synthetic samples."""
import json
import math

import numpy as np
import pytest
from scipy import stats as st

from harness.errors import OptionError
from harness.measure import hierarchical as H
from harness.measure import stats as S


def lognormal_ns(n, mu=13.0, sigma=0.3, seed=0):
    return np.random.default_rng(seed).lognormal(mu, sigma, n)


def test_summarize_percentiles_match_numpy():
    x = lognormal_ns(5000).astype(np.int64)
    s = S.summarize_ns(x)
    ms = x / 1e6
    for key, q in [("p50_ms", 50), ("p90_ms", 90), ("p95_ms", 95), ("p99_ms", 99), ("p999_ms", 99.9)]:
        assert s[key] == pytest.approx(np.percentile(ms, q), rel=1e-12)
    assert s["mean_ms"] == pytest.approx(ms.mean())
    assert s["std_ms"] == pytest.approx(ms.std(ddof=1))
    assert s["iqr_ms"] == pytest.approx(np.subtract(*np.percentile(ms, [75, 25])))
    assert s["min_ms"] == pytest.approx(ms.min()) and s["max_ms"] == pytest.approx(ms.max())
    assert s["cv"] == pytest.approx(ms.std(ddof=1) / ms.mean())
    assert s["mad_ms"] == pytest.approx(np.median(np.abs(ms - np.median(ms))))
    assert s["n"] == 5000
    lo, hi = s["median_ci95_ms"]
    assert lo <= s["p50_ms"] <= hi
    json.dumps(s, allow_nan=False)  # strict-JSON clean, plain Python types
    assert all(type(v) in (int, float, list, str) for v in s.values())


def test_summarize_single_sample_and_errors():
    s = S.summarize_ns([1_000_000])
    assert s["p50_ms"] == 1.0 and s["std_ms"] == 0.0 and s["median_ci95_ms"] == [1.0, 1.0]
    json.dumps(s, allow_nan=False)
    with pytest.raises(ValueError):
        S.summarize_ns([])
    with pytest.raises(ValueError):
        S.summarize_ns([1.0, float("nan")])


@pytest.mark.parametrize("n", [1500, 50_000])  # scipy bootstrap path and exact-distribution path
def test_median_ci_contains_true_median(n):
    true_median = math.exp(13.0)
    lo, hi = S.median_ci(lognormal_ns(n, seed=3))
    assert lo < true_median < hi


def test_median_ci_shrinks_with_n_and_is_reproducible():
    w_small = np.subtract(*S.median_ci(lognormal_ns(200, seed=1))[::-1])
    w_large = np.subtract(*S.median_ci(lognormal_ns(20_000, seed=1))[::-1])
    assert 0 < w_large < w_small / 3
    x = lognormal_ns(500, seed=2)
    assert S.median_ci(x) == S.median_ci(x)  # fixed seed


def test_exact_median_ci_agrees_with_scipy_bootstrap():
    x = lognormal_ns(2001, seed=4)
    res = st.bootstrap((x,), np.median, n_resamples=6000, method="percentile", rng=np.random.default_rng(0))
    lo, hi = S._exact_median_ci(x, 0.95)
    width = res.confidence_interval.high - res.confidence_interval.low
    assert lo == pytest.approx(res.confidence_interval.low, abs=0.05 * width)
    assert hi == pytest.approx(res.confidence_interval.high, abs=0.05 * width)


@pytest.mark.parametrize("n", [300, 30_000])  # resampling path and exact-distribution path
def test_ratio_ci_unpaired_covers_known_ratio(n):
    """Over 30 independent synthetic pairs with true ratio 2, the 95% CI covers 2 nearly always."""
    covered = 0
    for rep in range(30):
        a = 2.0 * lognormal_ns(n, seed=1000 + rep)
        b = lognormal_ns(n, seed=2000 + rep)
        ratio, lo, hi = S.ratio_ci(a, b, paired=False)
        assert lo <= ratio <= hi
        assert 1.5 < lo and hi < 2.7
        covered += lo < 2.0 < hi
    assert covered >= 25  # expected 28.5 of 30; 25 is ~3 binomial sd below


def test_ratio_ci_paired_contains_known_ratio():
    rng = np.random.default_rng(7)
    drift = np.linspace(1.0, 1.5, 200)  # shared per-pair drift that pairing cancels
    b = drift * rng.lognormal(0, 0.05, 200)
    a = 2.0 * drift * rng.lognormal(0, 0.05, 200)
    ratio, lo, hi = S.ratio_ci(a, b, paired=True)
    assert lo < 2.0 < hi and hi - lo < 0.3
    with pytest.raises(ValueError):
        S.ratio_ci(a, b[:-1], paired=True)


def test_hierarchical_ratio_ci_one_process_contains_known_ratio():
    rng = np.random.default_rng(8)
    level = rng.uniform(1.0, 1.3, 20)[:, None]  # per-round machine state
    a = 2.0 * level * rng.lognormal(0, 0.05, (20, 15))
    b = level * rng.lognormal(0, 0.05, (20, 30))  # the faster model's blocks hold more calls
    ratio, lo, hi = H.hierarchical_ratio_ci([a], [b])
    assert ratio == pytest.approx(np.median(a) / np.median(b))
    assert lo <= ratio <= hi and lo < 2.0 < hi
    # two processes, different block lengths: still one ratio of pooled medians inside its CI
    r2, lo2, hi2 = H.hierarchical_ratio_ci([a, a[:, :10]], [b, b[:, :12]])
    assert lo2 <= r2 <= hi2


def test_mannwhitney_shifted_vs_identical():
    a = lognormal_ns(300, seed=9)
    assert S.mannwhitney(a, 1.2 * lognormal_ns(300, seed=10)) < 1e-3
    assert S.mannwhitney(a, lognormal_ns(300, seed=11)) > 0.05
    assert S.mannwhitney([5, 5, 5], [5, 5, 5]) == 1.0


def test_mean_ci_matches_t_interval_by_hand():
    v = np.array([0.81, 0.84, 0.79, 0.86, 0.83])
    mean, lo, hi = S.mean_ci(v)
    half = st.t.ppf(0.975, df=4) * v.std(ddof=1) / math.sqrt(5)
    assert mean == pytest.approx(v.mean())
    assert lo == pytest.approx(v.mean() - half) and hi == pytest.approx(v.mean() + half)
    assert S.mean_ci([0.9]) == (0.9, 0.9, 0.9)
    assert S.mean_ci([0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(OptionError):
        S.mean_ci(v, level=1.5)


def test_stability_warnings_bimodal_vs_tight():
    rng = np.random.default_rng(12)
    bimodal = np.concatenate([rng.normal(1e6, 1e4, 500), rng.normal(2e6, 1e4, 500)])
    warns = S.stability_warnings(S.summarize_ns(bimodal), S.StabilityThresholds())
    assert any("IQR" in w for w in warns)
    tight = rng.normal(1e6, 5e3, 1000)
    assert S.stability_warnings(S.summarize_ns(tight), S.StabilityThresholds()) == []
    few = S.stability_warnings(S.summarize_ns(tight[:5]), S.StabilityThresholds(min_n=30))
    assert any("only 5 samples" in w for w in few)


def test_thresholds_validate():
    with pytest.raises(OptionError):
        S.StabilityThresholds(iqr_rel=-1)
    with pytest.raises(OptionError):
        S.StabilityThresholds(min_n=0)


def test_paired_difference_matches_scipy():
    import scipy.stats as st

    from harness.measure.stats import paired_difference

    a = np.array([90.0, 92.5, 91.0, 93.0])
    b = np.array([88.0, 91.0, 91.5, 90.0])
    out = paired_difference(a, b)
    assert out["diff_pts"] == pytest.approx(np.mean(a - b))
    assert out["p_value"] == pytest.approx(st.ttest_rel(a, b).pvalue)
    lo, hi = st.t.interval(0.95, df=3, loc=np.mean(a - b), scale=st.sem(a - b))
    assert out["ci95"] == pytest.approx([lo, hi])
    one = paired_difference([1.0], [0.5])
    assert one["p_value"] is None and one["ci95"] == [0.5, 0.5]
