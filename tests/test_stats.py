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
    assert iv.se == pytest.approx(iv.sd / np.sqrt(5)) and iv.df == 4


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


@pytest.mark.parametrize(("d", "two_sample_n", "paired_n"), [(0.5, 64, 34), (0.8, 26, 15), (1.0, 17, 10)])
def test_seeds_needed_matches_the_published_power_tables(d, two_sample_n, paired_n):
    """Cohen's two-sample table (d 0.5 -> 64, 0.8 -> 26 per group) and G*Power's paired t (0.5 -> 34),
    alpha 0.05 two-sided, power 0.8."""
    assert stats.seeds_needed(d, 1.0, "Welch", max_seeds=200) == two_sample_n
    assert stats.seeds_needed(-d, 1.0, "paired t", max_seeds=200) == paired_n
    assert stats.seeds_needed(d, 1.0, "hierarchical bootstrap", max_seeds=200) == two_sample_n
    assert stats.seeds_needed(d, 1.0, "hierarchical bootstrap", max_seeds=200, paired=True) == paired_n


def test_seeds_needed_power_holds_in_simulation():
    """At the returned n, paired t-intervals over simulated seeds exclude zero about as often as the
    noncentral t says (>= 0.8), and at n - 1 less often."""
    diff, sd = 0.02, 0.03
    n = stats.seeds_needed(diff, sd, "paired t")
    rng = np.random.default_rng(7)
    for seeds, at_least in ((n, True), (n - 1, False)):
        settled = np.mean([stats.verdict(stats.paired_t(rng.normal(diff, sd, seeds)))[0] == "supported"
                           for _ in range(2000)])
        expected = stats.t_power(diff, sd, seeds, two_sample=False)
        assert settled == pytest.approx(expected, abs=0.03)
        assert (settled >= 0.8 - 0.03) if at_least else (settled < 0.8)


def test_seeds_needed_for_uses_the_interval_design():
    paired = stats.Interval(0.02, 0.0, 0.04, "hierarchical bootstrap", 5, 5, 0.03, "", "paired", 4.0)
    unpaired = stats.Interval(0.02, 0.0, 0.04, "hierarchical bootstrap", 5, 5, 0.03, "", "two-sample", 8.0)
    fixed = stats.Interval(0.02, 0.0, 0.04, "one-sample t", 5, 0, 0.03, "", "one-sample", 4.0)
    assert stats.seeds_needed_for(paired) == stats.seeds_needed(0.02, 0.03, "paired t")
    assert stats.seeds_needed_for(fixed) == stats.seeds_needed(0.02, 0.03, "paired t")
    assert stats.seeds_needed_for(unpaired) == stats.seeds_needed(0.02, 0.03, "Welch")
    assert stats.seeds_needed_for(unpaired) > stats.seeds_needed_for(paired)
    assert stats.seeds_needed_for(stats.compare([], B)) is None


# ---------------------------------------------------------------- more verdict rules

def test_one_sample_needs_three_runs_and_spread_on_its_side_only():
    assert stats.verdict(stats.compare([.80, .82, .81], 0.5))[0] == "supported"
    verdict, reason = stats.verdict(stats.compare([.80, .82], 0.5))
    assert verdict == "inconclusive" and "too few runs" in reason
    verdict, reason = stats.verdict(stats.compare([.8, .8, .8], 0.5))
    assert verdict == "inconclusive" and "no spread" in reason


def test_no_data_on_a_side_is_inconclusive():
    iv = stats.compare(A, [])
    assert iv.kind == "none" and iv.diff is None
    assert stats.verdict(iv)[0] == "inconclusive"
    assert stats.non_inferiority(iv, 0.01)[0] == "inconclusive"


def test_spread_on_one_side_only_is_judged():
    iv = stats.compare([.80, .82, .84], [.5, .5, .5])
    assert iv.sd > 0 and stats.verdict(iv)[0] == "supported"


def test_a_seed_wise_constant_gap_has_no_spread():
    verdict, reason = stats.verdict(stats.compare([.5, .6, .7], [.4, .5, .6], pairs=[(.5, .4), (.6, .5), (.7, .6)]))
    assert verdict == "inconclusive" and "no spread" in reason


def test_a_bootstrap_with_identical_seeds_has_no_spread():
    """A collapsed model predicts the same on every seed: the sentences vary, the seeds do not."""
    rng = np.random.default_rng(3)
    row_a, row_b = (rng.random(148) < 0.6).astype(float), (rng.random(148) < 0.5).astype(float)
    iv = stats.hierarchical_bootstrap({s: row_a for s in range(5)}, {s: row_b for s in range(5)}, paired=True)
    assert iv.sd == 0
    verdict, reason = stats.verdict(iv)
    assert verdict == "inconclusive" and "no spread" in reason


def test_non_inferiority_when_lower_is_better():
    """Attack success rate: a is "no worse" when its rate is at most `margin` above b's."""
    iv = stats.Interval(0.004, 0.0, 0.008, "paired t", 5, 5, 0.01, "")
    assert stats.non_inferiority(iv, 0.01, higher_is_better=False)[0] == "supported"
    assert stats.non_inferiority(iv, 0.005, higher_is_better=False)[0] == "inconclusive"
    worse = stats.Interval(0.03, 0.02, 0.04, "paired t", 5, 5, 0.01, "")
    assert stats.non_inferiority(worse, 0.01, higher_is_better=False)[0] == "not supported"


def test_non_inferiority_needs_runs_and_spread():
    assert stats.non_inferiority(stats.compare([.8, .8, .8], [.8, .8, .8]), 0.01)[0] == "inconclusive"
    assert stats.non_inferiority(stats.compare([.80, .81], [.80, .79]), 0.01)[0] == "inconclusive"


def judged(low: float, high: float) -> stats.Interval:
    """A judgeable interval with the given ends (5 runs a side, some spread); the ends are exact binary numbers,
    so a boundary case is exactly on the boundary, not a rounding away from it."""
    return stats.Interval((low + high) / 2, low, high, "paired t", 5, 5, 0.25, "")


# (low, high, verdict when higher is better, verdict when lower is better): an end exactly at zero is not on the
# claimed side, so it never supports the claim; touching zero from the other side is "not supported"
ZERO_EDGES = [
    (0.0, 1.0, "inconclusive", "not supported"),
    (-1.0, 0.0, "not supported", "inconclusive"),
    (-0.0, 0.5, "inconclusive", "not supported"),
    (2.0 ** -20, 1.0, "supported", "not supported"),
    (-1.0, -(2.0 ** -20), "not supported", "supported"),
    (-(2.0 ** -20), 2.0 ** -20, "inconclusive", "inconclusive"),
]


@pytest.mark.parametrize("low, high, higher_better, lower_better", ZERO_EDGES)
def test_an_interval_that_touches_zero_does_not_support_the_claim(low, high, higher_better, lower_better):
    iv = judged(low, high)
    assert stats.verdict(iv)[0] == higher_better
    assert stats.verdict(iv, higher_is_better=False)[0] == lower_better


def test_touching_zero_is_named_in_the_reason():
    assert stats.verdict(judged(0.0, 1.0)) == ("inconclusive",
                                               "the interval includes zero: the spread is larger than the gap")
    assert stats.verdict(judged(-1.0, 0.0))[1] == ("the whole interval is on the other side of zero, or touches it "
                                                   "from there")


# (low, high, non-inferiority verdict at margin 0.5): the worse end exactly at -margin is not "less than margin below"
MARGIN_EDGES = [
    (-0.5, 0.5, "inconclusive"),
    (-0.5 + 2.0 ** -20, 0.5, "supported"),
    (-1.0, -0.5, "not supported"),
    (-1.0, -0.5 + 2.0 ** -20, "inconclusive"),
]


@pytest.mark.parametrize("low, high, expected", MARGIN_EDGES)
def test_non_inferiority_at_exactly_the_margin(low, high, expected):
    assert stats.non_inferiority(judged(low, high), 0.5)[0] == expected
    assert stats.non_inferiority(judged(-high, -low), 0.5, higher_is_better=False)[0] == expected


# ---------------------------------------------------------------- the bootstrap's resampling scheme

def test_resampling_variance_matches_its_analytic_expectation():
    """The correction is exact only if the resampling is the one `_Block.bootstrap_expectation` describes:
    each side's seeds with replacement, then one sentence draw used within every drawn seed of both sides."""
    rng = np.random.default_rng(4)
    difficulty = rng.beta(2, 2, 150)
    ya = (rng.random((4, 150)) < np.clip(difficulty + rng.normal(0, 0.05, (4, 1)), 0, 1)).astype(float)
    yb = (rng.random((3, 150)) < np.clip(difficulty - 0.1 + rng.normal(0, 0.05, (3, 1)), 0, 1)).astype(float)
    for block in (stats._Block((1.0,), (ya,)), stats._Block((1.0, -1.0), (ya, yb))):
        resampled = block.resample(np.random.default_rng(0), 40_000)
        estimate = sum(sign * y.mean() for sign, y in zip(block.signs, block.matrices))
        assert resampled.mean() == pytest.approx(estimate, abs=1e-3)
        assert resampled.var() == pytest.approx(block.bootstrap_expectation, rel=0.03)


def test_bootstrap_variance_is_unbiased_for_the_crossed_variance():
    """se^2 of the bootstrap interval equals the unbiased two-way variance up to resampling noise."""
    rng = np.random.default_rng(5)
    a, b = _per_sentence(rng, 4, 0.55), _per_sentence(rng, 4, 0.5)
    iv = stats.hierarchical_bootstrap(a, b, paired=True, n_resamples=20_000)
    y = np.vstack([a[s] - b[s] for s in range(4)])
    assert iv.se ** 2 == pytest.approx(stats._Block((1.0,), (y,)).variance, rel=0.05)


# ---------------------------------------------------------------- coverage on synthetic data with a known effect
# Each test simulates experiments like the real ones (3 to 5 seeds per side), builds the interval with the
# function under test and counts how often it holds the true difference: 95 % +- 2 points. The simulation
# seed is fixed, so each test is deterministic.

def _coverage(intervals: list[stats.Interval], truth: float) -> float:
    return float(np.mean([iv.low <= truth <= iv.high for iv in intervals]))


def test_paired_t_covers_95_percent():
    """Seed-level accuracies with a seed effect both methods share (same training subset and init)."""
    rng = np.random.default_rng(11)
    intervals = []
    for i in range(1500):
        n = 3 + i % 3
        shared = rng.normal(0, 0.02, n)
        a, b = 0.80 + shared + rng.normal(0, 0.01, n), 0.78 + shared + rng.normal(0, 0.01, n)
        intervals.append(stats.paired_t(a - b))
    assert 0.93 <= _coverage(intervals, 0.02) <= 0.97


def test_welch_covers_95_percent():
    """Independent sides, unequal spread and unequal seed counts (3 to 5)."""
    rng = np.random.default_rng(12)
    intervals = []
    for i in range(1500):
        n_a, n_b = [(3, 3), (3, 5), (5, 4)][i % 3]
        intervals.append(stats.welch(rng.normal(0.80, 0.02, n_a), rng.normal(0.78, 0.01, n_b)))
    assert 0.93 <= _coverage(intervals, 0.02) <= 0.97


def _experiment(rng: np.random.Generator, n: int, paired: bool, spread: tuple[float, float] = (0.03, 0.03),
                sentence_effects: bool = False, m: int = 150,
                effect: float = 0.04) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per-sentence 0/1 scores of two methods over n seeds each: a per-sentence accuracy, plus a per-seed
    offset (sd `spread` per side; when paired, b's offset is a's plus a little, as seeds that share a
    training subset do), then Bernoulli noise per sentence. The true difference is `effect`.

    sentence_effects: a fresh sample of sentences per experiment, each with its own difficulty shared by
    every seed and both methods, and a method effect that varies by sentence (a fixes some sentences, b
    others: effect +- 0.5); the true difference is then `effect` over the population of sentences."""
    if sentence_effects:
        base, delta = 0.25 + 0.5 * rng.random(m), effect + rng.choice([-0.5, 0.5], m)
    else:
        base, delta = np.full(m, 0.5), np.full(m, effect)
    offset_a = rng.normal(0, spread[0], (n, 1))
    offset_b = offset_a + rng.normal(0, 0.015, (n, 1)) if paired else rng.normal(0, spread[1], (n, 1))
    a = rng.random((n, m)) < np.clip(base + delta / 2 + offset_a, 0, 1)
    b = rng.random((n, m)) < np.clip(base - delta / 2 + offset_b, 0, 1)
    return dict(enumerate(a.astype(float))), dict(enumerate(b.astype(float)))


def _bootstrap_coverage(seed: int, paired: bool, **design) -> tuple[float, float]:
    """Coverage of the bootstrap interval and of the t-interval over seed means, over 500 experiments."""
    rng = np.random.default_rng(seed)
    boot, seed_level = [], []
    for i in range(500):
        a, b = _experiment(rng, 3 + i % 3, paired, **design)
        boot.append(stats.hierarchical_bootstrap(a, b, paired=paired, seed=i))
        means_a, means_b = [a[s].mean() for s in a], [b[s].mean() for s in b]
        seed_level.append(stats.paired_t(np.subtract(means_a, means_b)) if paired else stats.welch(means_a, means_b))
    return _coverage(boot, 0.04), _coverage(seed_level, 0.04)


def test_hierarchical_bootstrap_covers_95_percent_paired():
    """Shared seeds and sentences: seed offsets plus sentence-level Bernoulli noise, 3 to 5 seeds."""
    assert 0.93 <= _bootstrap_coverage(13, paired=True)[0] <= 0.97


@pytest.mark.slow
def test_hierarchical_bootstrap_covers_95_percent_unpaired():
    """Seeds drawn apart, one method twice as unstable over seeds as the other, 3 to 5 seeds a side."""
    assert 0.93 <= _bootstrap_coverage(14, paired=False, spread=(0.04, 0.02))[0] <= 0.97


def test_hierarchical_bootstrap_covers_when_the_effect_varies_by_sentence():
    """When the methods differ sentence by sentence, the sentence sample itself is a source of spread that
    seeds cannot show: a t-interval over seed means misses the truth far too often; the bootstrap does not."""
    boot, seed_level = _bootstrap_coverage(15, paired=True, sentence_effects=True)
    assert 0.93 <= boot <= 0.97
    assert seed_level < 0.90


def test_unpaired_sides_share_the_sentence_draw():
    """Both methods scored on the same sentences: difficulty they share cancels in the difference, so it
    must not widen the interval (it would, twice over, if each side drew its own sentences)."""
    rng = np.random.default_rng(16)
    difficulty = rng.choice([0.05, 0.95], 150)
    a = {s: (rng.random(150) < difficulty + rng.normal(0, 0.02)).astype(float) for s in range(5)}
    b = {s: (rng.random(150) < difficulty - 0.02 + rng.normal(0, 0.02)).astype(float) for s in range(5)}
    boot = stats.hierarchical_bootstrap(a, b, paired=False)
    seed_level = stats.welch([a[s].mean() for s in a], [b[s].mean() for s in b])
    assert boot.se == pytest.approx(seed_level.se, rel=0.25)
