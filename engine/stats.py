"""Confidence intervals for "method a scores higher than method b", the verdicts read from them, and how
many seeds would settle a comparison that is still open.

Three interval kinds, all two-sided at `LEVEL` and all t-based (with 3 to 5 seeds a normal quantile
would be far too narrow: t(2) is 4.30 against 1.96):

- **paired t** when the runs of the two methods pair up on seed and training config: a t-interval over
  the seed-wise differences, so what a seed shares between methods (its training subset, its
  initialisation luck) cancels.
- **Welch** otherwise: Welch's unequal-variance t-interval over the per-run values; against a fixed
  number (a published figure, chance) a one-sample t-interval.
- **hierarchical bootstrap** for metrics over a fixed set of sentences (AdvGLUE, attacks), where both the
  seeds and the sentences are samples: see `hierarchical_bootstrap`.

The verdicts never read certainty into too little data: a side with fewer than three runs, or no
spread at all (a collapsed model scores the same on every seed), is "inconclusive" with that reason.
Pure numpy/scipy; nothing here knows about runs or the store.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
MIN_RUNS = 3


@dataclasses.dataclass(frozen=True)
class Interval:
    """A difference of means (a minus b) with its confidence interval and how it was computed."""
    diff: float | None        # mean(a) - mean(b); None when a side has no data
    low: float | None         # None when the spread cannot be measured (fewer than two runs on a side)
    high: float | None
    kind: str                 # "paired t" | "Welch" | "hierarchical bootstrap" | "none"
    n_a: int                  # runs (seeds) on each side; n_b is 0 when b is a fixed number
    n_b: int
    sd: float | None          # the per-seed spread the test used: sd of seed-wise differences (paired), the
                              # per-side sd sqrt((s_a^2 + s_b^2) / 2) (Welch; s_a against a fixed number), the
                              # per-seed sd implied by the corrected bootstrap standard error (bootstrap)
    note: str                 # plain words: which test and why
    design: str = "two-sample"  # "paired" | "two-sample" | "one-sample" (b a fixed number): what seeds_needed_for uses
    df: float | None = None   # degrees of freedom of the t quantile
    se: float | None = None   # standard error of diff: the half-width is t(df) * se


def _t_quantile(level: float, df: float) -> float:
    return float(sps.t.ppf(0.5 + level / 2, df))


def _t_interval(diff: float, se: float, df: float, level: float) -> tuple[float, float]:
    half = _t_quantile(level, df) * se if se > 0 else 0.0
    return diff - half, diff + half


def _sd(x: np.ndarray) -> float:
    """Sample sd, exactly 0 when every value is the same up to rounding (0.4 three times has a float mean
    that is not exactly 0.4, and a sd of 1e-17 must still read as no spread)."""
    scale = max(1.0, float(np.abs(x).max()))
    return 0.0 if float(np.ptp(x)) <= 1e-12 * scale else float(x.std(ddof=1))


def _none(n_a: int, n_b: int, note: str, design: str) -> Interval:
    return Interval(None, None, None, "none", n_a, n_b, None, note, design)


# ---------------------------------------------------------------- paired t and Welch over per-run values

def paired_t(diffs: Sequence[float], level: float = LEVEL) -> Interval:
    """t-interval for the mean of seed-wise differences (a minus b on the same seed and training config)."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n == 0:
        return _none(0, 0, "no seed-matched pairs", "paired")
    diff = float(d.mean())
    if n < 2:
        return Interval(diff, None, None, "paired t", n, n, None,
                        "paired by seed over 1 seed: needs at least two to measure the spread", "paired")
    sd = _sd(d)
    se = sd / math.sqrt(n)
    low, high = _t_interval(diff, se, n - 1, level)
    return Interval(diff, low, high, "paired t", n, n, sd, f"paired t over the differences of {n} seed-matched runs",
                    "paired", float(n - 1), se)


def welch(a: Sequence[float], b: Sequence[float] | float, level: float = LEVEL) -> Interval:
    """Welch's t-interval for mean(a) - mean(b); a one-sample t-interval when b is a fixed number."""
    xa = np.asarray(a, dtype=float)
    fixed = isinstance(b, (int, float, np.floating, np.integer))
    xb = None if fixed else np.asarray(b, dtype=float)
    n_a, n_b = len(xa), (0 if fixed else len(xb))
    design = "one-sample" if fixed else "two-sample"
    if n_a == 0 or (not fixed and n_b == 0):
        return _none(n_a, n_b, "no finished runs with this number on one side", design)
    diff = float(xa.mean() - (float(b) if fixed else xb.mean()))
    if n_a < 2 or (not fixed and n_b < 2):
        return Interval(diff, None, None, "Welch", n_a, n_b, None,
                        "needs at least two runs on each side to measure the spread", design)
    va = _sd(xa) ** 2
    if fixed:
        se, df, sd = math.sqrt(va / n_a), float(n_a - 1), math.sqrt(va)
        note = f"one-sample t of {n_a} runs against the fixed value {float(b):g}"
    else:
        vb = _sd(xb) ** 2
        ea, eb = va / n_a, vb / n_b
        se, sd = math.sqrt(ea + eb), math.sqrt((va + vb) / 2)
        df = (ea + eb) ** 2 / (ea ** 2 / (n_a - 1) + eb ** 2 / (n_b - 1)) if ea + eb > 0 else float(n_a + n_b - 2)
        note = f"Welch t over per-run values ({n_a} vs {n_b} runs)"
    low, high = _t_interval(diff, se, df, level)
    return Interval(diff, low, high, "Welch", n_a, n_b, sd, note, design, float(df), se)


# ---------------------------------------------------------------- hierarchical bootstrap over seeds and sentences

def _score_matrix(per_seed: Mapping[int, np.ndarray], side: str) -> tuple[list[int], np.ndarray]:
    """Seeds (sorted) and their per-sentence scores as one seeds x sentences matrix."""
    seeds = sorted(per_seed)
    rows = [np.asarray(per_seed[s], dtype=float).ravel() for s in seeds]
    if rows and len({len(r) for r in rows}) != 1:
        raise ValueError(f"side {side}: every seed must be scored on the same sentences "
                         f"(got {sorted({len(r) for r in rows})} sentences)")
    return seeds, (np.vstack(rows) if rows else np.empty((0, 0)))


@dataclasses.dataclass(frozen=True)
class _TwoWay:
    """Variance parts of a seeds x sentences matrix's grand mean (crossed random effects).

    seed_term = s^2(seed means) / n          (seed spread, plus the sentence noise that differs by seed)
    sentence_term = s^2(sentence means) / m  (sentence spread shared by every seed, plus noise)
    residual_term = MS_residual / (n m)      (the noise, counted in both terms above once too often)
    """
    n: int
    m: int
    seed_term: float
    sentence_term: float
    residual_term: float

    @classmethod
    def of(cls, y: np.ndarray) -> _TwoWay:
        n, m = y.shape
        grand = y.mean()
        seed_means, sentence_means = y.mean(axis=1), y.mean(axis=0)
        seed_term = float(seed_means.var(ddof=1)) / n
        if m < 2:
            return cls(n, m, seed_term, 0.0, 0.0)
        sentence_term = float(sentence_means.var(ddof=1)) / m
        resid = y - seed_means[:, None] - sentence_means[None, :] + grand
        residual_term = float((resid ** 2).sum()) / ((n - 1) * (m - 1)) / (n * m)
        return cls(n, m, seed_term, sentence_term, residual_term)

    @property
    def sentence_part(self) -> float:
        """The sentence spread all seeds share, estimated without bias and truncated at 0."""
        return max(0.0, self.sentence_term - self.residual_term)

    @property
    def variance(self) -> float:
        """Unbiased (up to the truncation) variance of the grand mean, seeds and sentences both random."""
        return self.seed_term + self.sentence_part

    def satterthwaite_parts(self) -> list[tuple[float, float]]:
        """(term, its degrees of freedom) of `variance`, for the Satterthwaite df."""
        parts = [(self.seed_term, float(self.n - 1))]
        if self.sentence_part > 0:
            parts += [(self.sentence_term, float(self.m - 1)),
                      (-self.residual_term, float((self.n - 1) * (self.m - 1)))]
        return parts

    @property
    def bootstrap_expectation(self) -> float:
        """What the resampling variance of the mean converges to: seeds and sentences drawn with replacement,
        (n-1)/n of the seed term + (m-1)/m of the sentence term + (n-1)(m-1)/(n m) of the residual term."""
        n, m = self.n, self.m
        return ((n - 1) / n * self.seed_term + (m - 1) / m * self.sentence_term
                + (n - 1) * (m - 1) / (n * m) * self.residual_term)


def _resampled_means(y: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Grand mean of `y` under `n_resamples` draws: seeds with replacement, then sentences with replacement
    (one draw of sentence indices per resample, used within every drawn seed). Vectorised: a resample's
    seed draw is a count vector c, so its per-sentence sums are c . y, and its sentence draw picks from
    those. (einsum, not a BLAS matmul: with few seeds, BLAS threads cost more than they save.)"""
    n, m = y.shape
    seed_counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)
    per_sentence_sums = np.einsum("bs,sj->bj", seed_counts, y)
    picks = rng.integers(0, m, size=(n_resamples, m))
    picks += np.arange(n_resamples)[:, None] * m
    return np.take(per_sentence_sums, picks).sum(axis=1) / (n * m)


def hierarchical_bootstrap(a: Mapping[int, np.ndarray], b: Mapping[int, np.ndarray] | float,
                           paired: bool, n_resamples: int = 2000, seed: int = 0,
                           level: float = LEVEL) -> Interval:
    """Interval for mean(a) - mean(b) of a per-sentence score (0/1 correct, or any number) over a fixed
    sentence set, with seeds and sentences both treated as samples.

    a, b: {seed: per-sentence scores}; b may be a fixed number. paired=True when both sides have the same
    seeds and the same sentences in the same order: seed and sentence indices are then drawn once per
    resample and used for both sides (the bootstrap runs on the seed x sentence matrix of differences).

    Construction (why not a plain percentile interval): each resample draws seeds with replacement and
    then sentences with replacement within them. Every seed was scored on the same sentences (seeds and
    sentences are crossed, not nested), so one draw of sentence indices serves every drawn seed; drawing
    them anew per seed would average away the sentence difficulty all seeds share. The bootstrap variance
    of the mean is then, in expectation, (n-1)/n * seed term + (m-1)/m * sentence term + (n-1)(m-1)/(nm) *
    residual term (see `_TwoWay`): it shrinks the seed spread by (n-1)/n (a third at 3 seeds) and counts the
    per-sentence noise up to twice (it is in the spread of seed means and of sentence means). With 3-5
    seeds a percentile interval on top of that also uses normal tails where t(2)-t(4) tails are needed.
    So the interval is diff +- t(df) * se, where se^2 = the bootstrap variance + the exact difference
    between the unbiased crossed random-effects variance and the bootstrap variance's expectation, and df
    is Satterthwaite's over the variance parts (n-1 when the sentences add no shared spread). In
    expectation over resamples se^2 is the unbiased variance; with >= 2000 resamples the resampling
    noise in se is about 1.6 %. Honest note: for a mean, the correction does the real work; the
    resampling reproduces the sampling scheme the issue asks for.

    Coverage checked (tests/test_stats.py) at 3 and 5 seeds per side, 150 sentences, scores 0/1 with a
    per-seed random accuracy offset (sd 0.03) plus per-sentence Bernoulli noise, paired (shared seeds
    and sentences) and unpaired, and with shared per-sentence difficulty (a fresh sentence sample per
    experiment): 95 % +- 2 points. Other designs were not checked.
    """
    rng = np.random.default_rng(seed)
    fixed = isinstance(b, (int, float, np.floating, np.integer))
    seeds_a, ya = _score_matrix(a, "a")
    n_a = len(seeds_a)
    design = "one-sample" if fixed else ("paired" if paired else "two-sample")
    if fixed:
        n_b = 0
    else:
        seeds_b, yb = _score_matrix(b, "b")
        n_b = len(seeds_b)
        if paired and (seeds_a != seeds_b or ya.shape != yb.shape):
            raise ValueError("paired bootstrap needs the same seeds and the same sentences on both sides "
                             f"(seeds {seeds_a} vs {seeds_b}, shapes {ya.shape} vs {yb.shape})")
    if n_a == 0 or (not fixed and n_b == 0):
        return _none(n_a, n_b, "no finished runs with per-sentence scores on one side", design)
    diff = float(ya.mean() - (float(b) if fixed else yb.mean()))
    if n_a < 2 or (not fixed and n_b < 2):
        return Interval(diff, None, None, "hierarchical bootstrap", n_a, n_b, None,
                        "needs at least two seeds on each side to measure the spread", design)

    if paired and not fixed:
        matrices = [ya - yb]
    else:
        matrices = [ya] if fixed else [ya, yb]
    parts = [_TwoWay.of(y) for y in matrices]
    resampled = _resampled_means(matrices[0], rng, n_resamples)
    if len(matrices) == 2:
        resampled = resampled - _resampled_means(matrices[1], rng, n_resamples)
    boot_var = float(resampled.var(ddof=1))
    correction = sum(p.variance - p.bootstrap_expectation for p in parts)
    var = max(0.0, boot_var + correction)
    se = math.sqrt(var)

    terms = [t for p in parts for t in p.satterthwaite_parts()]
    unbiased = sum(p.variance for p in parts)
    denominator = sum(t ** 2 / d for t, d in terms if d > 0)
    df = unbiased ** 2 / denominator if unbiased > 0 and denominator > 0 else float(max(n_a - 1, 1))
    low, high = _t_interval(diff, se, df, level)
    sd = se / math.sqrt(1 / n_a + 1 / n_b) if design == "two-sample" else se * math.sqrt(n_a)
    if all(_sd(y.mean(axis=1)) == 0 for y in matrices):
        sd = 0.0  # every seed scores the same: the sentences alone cannot say how a new seed would do
    m = matrices[0].shape[1]
    how = {"paired": f"seeds and sentences drawn once for both sides ({n_a} shared seeds)",
           "two-sample": f"each side resampled on its own ({n_a} vs {n_b} seeds)",
           "one-sample": f"{n_a} seeds against the fixed value {float(b) if fixed else 0:g}"}[design]
    note = (f"hierarchical bootstrap over seeds and {m} sentences, {n_resamples} resamples, {how}; "
            f"t-interval on the bias-corrected bootstrap standard error")
    return Interval(diff, low, high, "hierarchical bootstrap", n_a, n_b, sd, note, design, float(df), se)


# ---------------------------------------------------------------- choosing the test

def compare(a: Sequence[float], b: Sequence[float] | float, *, pairs: Sequence[tuple[float, float]] | None = None,
            per_sentence: tuple[Mapping[int, np.ndarray], Mapping[int, np.ndarray] | float] | None = None,
            paired_sentences: bool = False, level: float = LEVEL) -> Interval:
    """The interval for mean(a) - mean(b) by the test the data allow, with the reason in its note.

    per_sentence given (per-seed, per-sentence scores) -> hierarchical bootstrap; pairs given (values of
    a and b on matching seed and training config) -> paired t; else Welch (one-sample t against a number).
    """
    if per_sentence is not None:
        iv = hierarchical_bootstrap(per_sentence[0], per_sentence[1], paired=paired_sentences, level=level)
        why = "a metric over a fixed set of sentences, so seeds and sentences are both resampled"
    elif pairs:
        iv = paired_t([x - y for x, y in pairs], level=level)
        why = "the runs pair up on seed and training config, so seed-wise differences are compared"
    else:
        iv = welch(a, b, level=level)
        why = ("compared with a fixed number" if iv.design == "one-sample"
               else "the runs do not pair up on seed and training config, so Welch over the runs")
    return dataclasses.replace(iv, note=f"{why}: {iv.note}")


# ---------------------------------------------------------------- verdicts

def _not_judgeable(iv: Interval, min_runs: int) -> str | None:
    """Why no verdict can be read from `iv`, or None when one can."""
    if iv.diff is None:
        return "no finished runs with this number on one side"
    runs = [iv.n_a] if iv.design == "one-sample" else [iv.n_a, iv.n_b]
    if min(runs) < min_runs:
        sides = f"{iv.n_a} run(s)" if iv.design == "one-sample" else f"{iv.n_a} and {iv.n_b} run(s)"
        return f"too few runs: {sides}, at least {min_runs} per side are needed to judge the spread"
    if iv.sd is None or iv.low is None or iv.high is None:
        return "the spread over seeds could not be measured"
    if iv.sd == 0:
        return ("no spread: every seed gives the same value, so the interval has zero width and measures "
                "nothing (a model that collapsed scores the same on every seed)")
    return None


def verdict(iv: Interval, higher_is_better: bool = True, min_runs: int = MIN_RUNS) -> tuple[str, str]:
    """("supported" | "not supported" | "inconclusive", reason in plain words) for "a is better than b"."""
    why_not = _not_judgeable(iv, min_runs)
    if why_not:
        return "inconclusive", why_not
    low, high = (iv.low, iv.high) if higher_is_better else (-iv.high, -iv.low)
    if low > 0:
        return "supported", "the whole interval is on the claimed side of zero"
    if high <= 0:
        return "not supported", "the whole interval is on the other side of zero, or touches it from there"
    return "inconclusive", "the interval includes zero: the spread is larger than the gap"


def non_inferiority(iv: Interval, margin: float, higher_is_better: bool = True,
                    min_runs: int = MIN_RUNS) -> tuple[str, str]:
    """Verdict on "a is no more than `margin` worse than b", judged on the interval's worse end."""
    why_not = _not_judgeable(iv, min_runs)
    if why_not:
        return "inconclusive", why_not
    low, high = (iv.low, iv.high) if higher_is_better else (-iv.high, -iv.low)
    if low > -margin:
        return "supported", f"even the interval's worse end is less than {margin:g} below the comparator"
    if high <= -margin:
        return "not supported", f"the whole interval is at least {margin:g} below the comparator"
    return "inconclusive", f"the interval reaches more than {margin:g} below the comparator"


# ---------------------------------------------------------------- how many seeds would settle it

def t_power(diff: float, sd: float, n: int, two_sample: bool, level: float = LEVEL) -> float:
    """Probability that the two-sided t-interval at `level` excludes zero, with n seeds per side.

    Paired / one-sample: df n-1, noncentrality diff / (sd / sqrt n). Two-sample with sd per side and equal
    n: df 2n-2 (Welch's df at equal variances), noncentrality diff / (sd sqrt(2/n)).
    """
    df = 2 * n - 2 if two_sample else n - 1
    ncp = diff / (sd * math.sqrt((2 if two_sample else 1) / n))
    crit = _t_quantile(level, df)
    return float(sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp))


def seeds_needed(diff: float, sd: float, kind: str, power: float = 0.8, level: float = LEVEL,
                 max_seeds: int = 100, *, paired: bool | None = None) -> int | None:
    """Seeds per side for the same test to settle a gap of `diff` at spread `sd` with probability
    `power` (noncentral t, scipy.stats.nct, see `t_power`); the smallest n >= MIN_RUNS, or None when diff
    is 0, when sd is 0 (no spread measured, so no figure), or when more than `max_seeds` would be needed.

    kind "paired t": sd of seed-wise differences, one-sample formula. kind "Welch": per-side sd, two-sample
    formula with equal n per side. kind "hierarchical bootstrap": the seed-level sd (Interval.sd) with the
    paired formula when `paired` (shared seeds and sentences) else the Welch one. `paired` overrides the
    choice for any kind (pass True for a one-sample t against a fixed number). For the bootstrap this treats
    all of the spread as shrinking with seeds; the part due to the sentence sample does not, so when the
    sentences' shared spread is large the figure is a lower bound.
    """
    if kind not in ("paired t", "Welch", "hierarchical bootstrap"):
        raise ValueError(f"unknown interval kind {kind!r}")
    if diff == 0 or sd <= 0 or not (math.isfinite(diff) and math.isfinite(sd)):
        return None
    two_sample = not (paired if paired is not None else kind == "paired t")
    for n in range(MIN_RUNS, max_seeds + 1):
        if t_power(abs(diff), sd, n, two_sample, level) >= power:
            return n
    return None


def seeds_needed_for(iv: Interval, power: float = 0.8, max_seeds: int = 100) -> int | None:
    """`seeds_needed` at the interval's own effect, spread, kind and design (paired / two-sample / fixed)."""
    if iv.diff is None or iv.sd is None or iv.kind == "none":
        return None
    return seeds_needed(iv.diff, iv.sd, iv.kind, power, max_seeds=max_seeds,
                        paired=iv.design != "two-sample")
