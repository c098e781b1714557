"""engine.stats: the interval kinds against scipy, the verdict rules, non-inferiority and seeds-needed."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from engine import stats

A = [0.80, 0.82, 0.79, 0.85, 0.81]
B = [0.75, 0.78, 0.77, 0.80, 0.74]


def _per_sentence(rng: np.random.Generator, n_seeds: int, accuracy: float, m: int = 148) -> dict[int, np.ndarray]:
    return {s: (rng.random(m) < accuracy + rng.normal(0, 0.03)).astype(float) for s in range(n_seeds)}


# ---------------------------------------------------------------- against scipy

def test_paired_t_matches_scipy_ttest_rel():
    iv = stats.paired_t(np.subtract(A, B))
    ci = sps.ttest_rel(A, B).confidence_interval(0.95)
    assert iv.kind == "paired t" and iv.design == "paired" and iv.n_a == iv.n_b == 5
    assert iv.diff == pytest.approx(np.mean(A) - np.mean(B))
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert iv.sd == pytest.approx(np.std(np.subtract(A, B), ddof=1))


def test_welch_matches_scipy_ttest_ind_unequal_var():
    b = [0.70, 0.78, 0.72]
    iv = stats.welch(A, b)
    ci = sps.ttest_ind(A, b, equal_var=False).confidence_interval(0.95)
    assert iv.kind == "Welch" and iv.design == "two-sample" and (iv.n_a, iv.n_b) == (5, 3)
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_welch_against_a_fixed_number_is_a_one_sample_t():
    iv = stats.welch(A, 0.78)
    ci = sps.ttest_1samp(A, 0.78).confidence_interval(0.95)
    assert iv.design == "one-sample" and iv.n_b == 0
    assert iv.diff == pytest.approx(np.mean(A) - 0.78)
    assert (iv.low, iv.high) == pytest.approx((ci.low - 0.78, ci.high - 0.78), rel=1e-10)


def test_level_changes_the_quantile():
    iv = stats.paired_t(np.subtract(A, B), level=0.9)
    ci = sps.ttest_rel(A, B).confidence_interval(0.9)
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-10)


# ---------------------------------------------------------------- compare chooses the test

def test_compare_chooses_the_test_and_says_why():
    assert stats.compare(A, B).kind == "Welch"
    assert "do not pair up" in stats.compare(A, B).note
    paired = stats.compare(A, B, pairs=list(zip(A, B)))
    assert paired.kind == "paired t" and "pair up on seed" in paired.note
    rng = np.random.default_rng(0)
    per_sentence = (_per_sentence(rng, 3, 0.5), _per_sentence(rng, 3, 0.45))
    boot = stats.compare(A, B, per_sentence=per_sentence)
    assert boot.kind == "hierarchical bootstrap" and "fixed set of sentences" in boot.note


# ---------------------------------------------------------------- hierarchical bootstrap

def test_bootstrap_is_seeded_and_reproducible():
    rng = np.random.default_rng(1)
    a, b = _per_sentence(rng, 5, 0.5), _per_sentence(rng, 5, 0.45)
    first = stats.hierarchical_bootstrap(a, b, paired=True, seed=3)
    assert first == stats.hierarchical_bootstrap(a, b, paired=True, seed=3)
    assert first.low != stats.hierarchical_bootstrap(a, b, paired=True, seed=4).low
    assert first.diff == pytest.approx(np.mean([a[s].mean() - b[s].mean() for s in a]))


def test_paired_bootstrap_needs_the_same_seeds_and_sentences():
    rng = np.random.default_rng(2)
    a, b = _per_sentence(rng, 3, 0.5), _per_sentence(rng, 4, 0.5)
    with pytest.raises(ValueError, match="same seeds"):
        stats.hierarchical_bootstrap(a, b, paired=True)


# ---------------------------------------------------------------- verdicts

def test_no_spread_on_both_sides_is_inconclusive():
    verdict, reason = stats.verdict(stats.compare([.5, .5, .5], [.4, .4, .4]))
    assert verdict == "inconclusive" and "no spread" in reason


def test_fewer_than_three_runs_is_inconclusive():
    verdict, reason = stats.verdict(stats.compare([.9, .91], [.4, .41, .42]))
    assert verdict == "inconclusive" and "too few runs" in reason


def test_verdicts_follow_the_interval():
    assert stats.verdict(stats.compare(A, B))[0] == "supported"
    assert stats.verdict(stats.compare(B, A))[0] == "not supported"
    assert stats.verdict(stats.compare(B, A), higher_is_better=False)[0] == "supported"
    assert stats.verdict(stats.compare(A, [0.79, 0.86, 0.80, 0.84, 0.82]))[0] == "inconclusive"


def test_non_inferiority():
    iv = stats.Interval(-0.004, -0.008, 0.0, "paired t", 5, 5, 0.01, "")
    assert stats.non_inferiority(iv, 0.01)[0] == "supported"
    assert stats.non_inferiority(iv, 0.005)[0] == "inconclusive"
    worse = stats.Interval(-0.03, -0.04, -0.02, "paired t", 5, 5, 0.01, "")
    assert stats.non_inferiority(worse, 0.01)[0] == "not supported"


# ---------------------------------------------------------------- seeds needed

def test_seeds_needed_is_the_smallest_n_reaching_the_power():
    n = stats.seeds_needed(0.02, 0.03, "paired t")
    assert stats.t_power(0.02, 0.03, n, two_sample=False) >= 0.8 > stats.t_power(0.02, 0.03, n - 1, two_sample=False)
    n = stats.seeds_needed(0.02, 0.03, "Welch")
    assert stats.t_power(0.02, 0.03, n, two_sample=True) >= 0.8 > stats.t_power(0.02, 0.03, n - 1, two_sample=True)
    assert stats.seeds_needed(0.0, 0.03, "Welch") is None
    assert stats.seeds_needed(0.001, 0.03, "Welch") is None
