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
from scipy import optimize, special
from scipy import stats as sps

LEVEL = 0.95
MIN_RUNS = 3


@dataclasses.dataclass(frozen=True)
class Interval:
    """A difference of means (a minus b) with its confidence interval and how it was computed."""
    diff: float | None        # mean(a) - mean(b); None when a side has no data
    low: float | None         # None when the spread cannot be measured (fewer than two runs on a side)
    high: float | None
    kind: str                 # "paired t" | "Welch" | "one-sample t" | "hierarchical bootstrap" | "none"
    n_a: int                  # runs (seeds) on each side; n_b is 0 when b is a fixed number
    n_b: int
    sd: float | None          # the per-seed spread the test used: sd of seed-wise differences (paired), the
                              # per-side sd sqrt((s_a^2 + s_b^2) / 2) (Welch; s_a against a fixed number), the
                              # per-seed sd implied by the corrected bootstrap standard error (bootstrap)
    note: str                 # plain words: which test and why
    design: str = "two-sample"  # "paired" | "two-sample" | "one-sample" (b a fixed number): what seeds_needed_for uses
    df: float | None = None   # degrees of freedom of the t quantile
    se: float | None = None   # standard error of diff: the half-width is t(df) * se
    # the hierarchical bootstrap only: the part of se^2 that comes from the sentence sample all seeds share (it
    # does not shrink with more seeds), the number of sentences, and the part that does shrink with seeds
    sentence_var: float | None = None
    sentences: int | None = None
    seed_var: float | None = None


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
    kind = "one-sample t" if fixed else "Welch"
    if n_a < 2 or (not fixed and n_b < 2):
        return Interval(diff, None, None, kind, n_a, n_b, None,
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
    return Interval(diff, low, high, kind, n_a, n_b, sd, note, design, float(df), se)


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
class _Block:
    """Signed sides (seeds x sentences score matrices) scored on the same sentences, so one sentence draw
    serves them all; each side's seeds are drawn on their own. The estimate is sum(sign * grand mean).

    Its variance, with seeds and sentences both random (crossed random effects), has three kinds of part:
    seed term of a side     = s^2(that side's seed means) / n: its seed spread, plus the per-sentence
                              noise that differs from seed to seed
    sentence term           = s^2(sum of sign * sentence means) / m: the sentence spread the seeds share
                              (what cancels between sides does not count), plus the noise again
    residual term of a side = MS_residual / (n m): the noise, which the two terms above count once too often
    """
    signs: tuple[float, ...]
    matrices: tuple[np.ndarray, ...]

    @property
    def m(self) -> int:
        return self.matrices[0].shape[1]

    @property
    def seed_terms(self) -> list[tuple[float, int]]:
        """(seed term, n) per side."""
        return [(float(y.mean(axis=1).var(ddof=1)) / len(y), len(y)) for y in self.matrices]

    @property
    def sentence_term(self) -> float:
        if self.m < 2:
            return 0.0
        return float(sum(sign * y.mean(axis=0) for sign, y in zip(self.signs, self.matrices)).var(ddof=1)) / self.m

    @property
    def residual_terms(self) -> list[tuple[float, int]]:
        """(residual term, n) per side."""
        out = []
        for y in self.matrices:
            n, m = y.shape
            if m < 2:
                out.append((0.0, n))
                continue
            resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
            out.append((float((resid ** 2).sum()) / ((n - 1) * (m - 1)) / (n * m), n))
        return out

    @property
    def sentence_part(self) -> float:
        """The sentence spread all seeds share, estimated without bias and truncated at 0."""
        return max(0.0, self.sentence_term - sum(t for t, _ in self.residual_terms))

    @property
    def variance(self) -> float:
        """Unbiased (up to the truncation) variance of the estimate, seeds and sentences both random."""
        return sum(t for t, _ in self.seed_terms) + self.sentence_part

    @property
    def satterthwaite_parts(self) -> list[tuple[float, float]]:
        """(term, its degrees of freedom) of `variance`, for the Satterthwaite df."""
        parts = [(t, float(n - 1)) for t, n in self.seed_terms]
        if self.sentence_part > 0:
            parts.append((self.sentence_term, float(self.m - 1)))
            parts += [(-t, float((n - 1) * (self.m - 1))) for t, n in self.residual_terms]
        return parts

    @property
    def bootstrap_expectation(self) -> float:
        """What the resampling variance of the estimate converges to (seeds, then sentences, drawn with
        replacement): (n-1)/n of each seed term + (m-1)/m of the sentence term + (n-1)(m-1)/(n m) of each
        residual term."""
        m = self.m
        return (sum((n - 1) / n * t for t, n in self.seed_terms) + (m - 1) / m * self.sentence_term
                + sum((n - 1) * (m - 1) / (n * m) * t for t, n in self.residual_terms))

    def resample(self, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
        """The estimate under `n_resamples` draws: each side's seeds with replacement, then one draw of
        sentence indices used within every drawn seed of every side. Vectorised: a seed draw is a count
        vector c, so a side's per-sentence means are c . y / n, and the sentence draw picks from their
        signed sum. (einsum, not a BLAS matmul: with a handful of seeds, BLAS threads cost more than they save.)"""
        per_sentence = np.zeros((n_resamples, self.m))
        for sign, y in zip(self.signs, self.matrices):
            n = len(y)
            counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)
            per_sentence += np.einsum("bs,sj->bj", counts, y) * (sign / n)
        picks = rng.integers(0, self.m, size=(n_resamples, self.m))
        picks += np.arange(n_resamples)[:, None] * self.m
        return np.take(per_sentence, picks).sum(axis=1) / self.m


def _blocks(ya: np.ndarray, yb: np.ndarray | None, paired: bool) -> list[_Block]:
    """How the sides share draws: paired -> one matrix of differences; same sentence count -> one block
    with a shared sentence draw; different sentence sets -> a block each."""
    if yb is None:
        return [_Block((1.0,), (ya,))]
    if paired:
        return [_Block((1.0,), (ya - yb,))]
    if ya.shape[1] == yb.shape[1]:
        return [_Block((1.0, -1.0), (ya, yb))]
    return [_Block((1.0,), (ya,)), _Block((-1.0,), (yb,))]


def hierarchical_bootstrap(a: Mapping[int, np.ndarray], b: Mapping[int, np.ndarray] | float,
                           paired: bool, n_resamples: int = 2000, seed: int = 0,
                           level: float = LEVEL) -> Interval:
    """Interval for mean(a) - mean(b) of a per-sentence score (0/1 correct, or any number) over a fixed
    sentence set, with seeds and sentences both treated as samples.

    a, b: {seed: per-sentence scores}, every seed scored on the same sentences in the same order; b may be
    a fixed number. paired=True when both sides have the same seeds: seed and sentence indices are then
    drawn once per resample and used for both sides (the bootstrap runs on the seed x sentence matrix of
    differences). Unpaired sides with the same number of sentences are taken to share the sentence set:
    each side's seeds are drawn on their own, the sentence indices once for both (sentence difficulty both
    methods share cancels, as it does in the estimate). Sides with different sentence counts are
    resampled independently.

    Construction (why not a plain percentile interval): each resample draws seeds with replacement and
    then sentences with replacement within them. Every seed was scored on the same sentences (seeds and
    sentences are crossed, not nested), so one draw of sentence indices serves every drawn seed; drawing
    them anew per seed would average away the sentence difficulty all seeds share. The bootstrap variance
    is then, in expectation, (n-1)/n of the seed terms + (m-1)/m of the sentence term + (n-1)(m-1)/(nm)
    of the residual terms (see `_Block`): it shrinks the seed spread by (n-1)/n (a third at 3 seeds) and
    counts the per-sentence noise twice (it is in the spread of seed means and of sentence means); with
    3-5 seeds a percentile interval also uses normal tails where t tails with 2-4 df are needed. So the
    interval is diff +- t(df) * se, with se^2 = the bootstrap variance + the exact difference between the
    unbiased crossed random-effects variance and the bootstrap variance's expectation, and df
    Satterthwaite's over the variance parts (Welch's df over the seed terms when the sentences add no
    shared spread). Over resamples, se^2 is the unbiased variance on average; with 2000 resamples its
    resampling noise is about 1.6 % of se. Honest note: for a mean, the correction does the real work;
    the resampling is the sampling scheme the issue asks for, and a check on the algebra.

    Coverage checked, with 150 sentences, 0/1 scores, a per-seed accuracy offset plus per-sentence
    Bernoulli noise, true difference 0.04 (a larger simulation, 1000-2000 experiments per design, then
    tests/test_stats.py, 500 per design):
    - offsets only (sd 0.03 a side; paired: b's offset is a's + sd 0.015): paired 94.5 % at 3 seeds,
      95.5 % at 5; unpaired 96.5 % at 3 seeds a side, 96.1 % at 5, 96.1 % with 3-5 seeds and sd 0.04 vs
      0.02. Unpaired at equal spread sits near 96.5 %, as Welch's t over seed means does (96.6 %): Welch's df
      is conservative when the two spreads are equal.
    - a fresh sentence sample per experiment whose difficulty every seed and both methods share: paired
      94.9 / 95.9 %, unpaired 96.6 / 96.0 % (3 / 5 seeds).
    - in addition a method effect that varies by sentence (+-0.5 around 0.04), 3-5 seeds: paired 95.9 %,
      unpaired 94.1 %, where a t-interval over seed means covers only 82 %.
    Not checked: fewer than 3 seeds, a few dozen sentences or fewer, accuracies near 0 or 1, per-sentence
    scores that are not 0/1.
    """
    rng = np.random.default_rng(seed)
    fixed = isinstance(b, (int, float, np.floating, np.integer))
    seeds_a, ya = _score_matrix(a, "a")
    n_a = len(seeds_a)
    design = "one-sample" if fixed else ("paired" if paired else "two-sample")
    yb = None
    if not fixed:
        seeds_b, yb = _score_matrix(b, "b")
        if paired and (seeds_a != seeds_b or ya.shape != yb.shape):
            raise ValueError("paired bootstrap needs the same seeds and the same sentences on both sides "
                             f"(seeds {seeds_a} vs {seeds_b}, shapes {ya.shape} vs {yb.shape})")
    n_b = 0 if yb is None else len(yb)
    if n_a == 0 or (not fixed and n_b == 0):
        return _none(n_a, n_b, "no finished runs with per-sentence scores on one side", design)
    diff = float(ya.mean() - (float(b) if fixed else yb.mean()))
    if n_a < 2 or (not fixed and n_b < 2):
        return Interval(diff, None, None, "hierarchical bootstrap", n_a, n_b, None,
                        "needs at least two seeds on each side to measure the spread", design)

    blocks = _blocks(ya, yb, paired)
    resampled = sum(block.resample(rng, n_resamples) for block in blocks)
    correction = sum(block.variance - block.bootstrap_expectation for block in blocks)
    se = math.sqrt(max(0.0, float(resampled.var(ddof=1)) + correction))
    unbiased = sum(block.variance for block in blocks)
    denominator = sum(t ** 2 / d for block in blocks for t, d in block.satterthwaite_parts if d > 0)
    df = unbiased ** 2 / denominator if unbiased > 0 and denominator > 0 else float(max(n_a - 1, 1))
    low, high = _t_interval(diff, se, df, level)
    sentence_var = float(sum(block.sentence_part for block in blocks))
    seed_var = float(sum(t for block in blocks for t, _ in block.seed_terms))

    sd = se / math.sqrt(1 / n_a + 1 / n_b) if design == "two-sample" else se * math.sqrt(n_a)
    if all(_sd(y.mean(axis=1)) == 0 for block in blocks for y in block.matrices):
        sd = 0.0  # every seed scores the same: the sentences alone cannot say how a new seed would do
    how = {"paired": f"seeds and sentences drawn once for both sides ({n_a} shared seeds)",
           "two-sample": (f"each side's seeds drawn on their own ({n_a} vs {n_b}), "
                          + ("the sentences once for both" if len(blocks) == 1 else "and its own sentences")),
           "one-sample": f"{n_a} seeds against the fixed value {float(b) if fixed else 0:g}"}[design]
    note = (f"hierarchical bootstrap over seeds and {ya.shape[1]} sentences, {n_resamples} resamples, {how}; "
            f"t-interval on the bias-corrected bootstrap standard error")
    return Interval(diff, low, high, "hierarchical bootstrap", n_a, n_b, sd, note, design, float(df), se,
                    sentence_var, ya.shape[1], seed_var)


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
    if kind not in ("paired t", "Welch", "one-sample t", "hierarchical bootstrap"):
        raise ValueError(f"unknown interval kind {kind!r}")
    if diff == 0 or sd <= 0 or not (math.isfinite(diff) and math.isfinite(sd)):
        return None
    two_sample = not (paired if paired is not None else kind in ("paired t", "one-sample t"))
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


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None with fewer than two values: one seed has no spread)."""
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None
# ---------------------------------------------------------------- what more seeds can and cannot settle

SHOW_SEEDS = 10_000   # seeds-needed figures are searched up to here and shown as they are; beyond: "over 10,000"


@dataclasses.dataclass(frozen=True)
class SeedsPlan:
    """How many seeds per side would likely settle a part, and what that figure assumes.

    seeds: seeds per side in all (the runs so far included), None when no figure can be given (`why` says why);
    over: the search stopped at this many per side without reaching the power; floor: for a metric over a fixed
    sentence set, the smallest difference these sentences can ever decide (the interval's half-width with
    unlimited seeds), None for per-run metrics."""
    seeds: int | None
    over: int | None
    floor: float | None
    assumes: str
    why: str = ""


def per_seed_sd(iv: Interval) -> float | None:
    """The spread one more seed adds: the seed part of the variance scaled back to one seed per side (all of
    it for a per-run test, whose sd field already is that)."""
    if iv.seed_var is None:
        return iv.sd
    if iv.design == "two-sample":
        return math.sqrt(iv.seed_var / (1 / iv.n_a + 1 / iv.n_b)) if iv.n_a and iv.n_b else None
    return math.sqrt(iv.seed_var * iv.n_a)


def sentence_floor(iv: Interval, level: float = LEVEL) -> float | None:
    """The half-width the interval keeps however many seeds run: t(sentences - 1) * the standard error of the
    sentence sample all seeds share. A difference below it cannot be decided with these sentences. None for
    a per-run test (no sentence sample)."""
    if iv.sentence_var is None or not iv.sentences or iv.sentences < 2:
        return None
    return _t_quantile(level, iv.sentences - 1) * math.sqrt(iv.sentence_var)


def floor_power(diff: float, sd: float, sentence_se: float, n: int, two_sample: bool, level: float = LEVEL) -> float:
    """`t_power` with a part of the standard error that does not shrink with seeds: se(n)^2 = sd^2 k / n +
    sentence_se^2 (k = 2 two-sample, 1 paired). Noncentral t at the seed-level df (the sentence part's own df is
    not modelled); with sentence_se 0 it is `t_power`."""
    df = 2 * n - 2 if two_sample else n - 1
    ncp = diff / math.sqrt(sd ** 2 * (2 if two_sample else 1) / n + sentence_se ** 2)
    crit = float(special.stdtrit(df, 0.5 + level / 2))
    return _nct_above(df, ncp, crit) + _nct_above(df, -ncp, crit)


def _nct_above(df: float, ncp: float, threshold: float) -> float:
    """P(T > threshold) for a noncentral t; scipy's series returns nan far in the tails (df in the thousands,
    noncentrality above 40), where the normal approximation is exact to many digits."""
    value = 1 - float(special.nctdtr(df, ncp, threshold))
    return value if math.isfinite(value) else float(special.ndtr(ncp - threshold))


def _smallest(reaches, low: int, high: int) -> int | None:
    """The smallest n in [low, high] with reaches(n) true (reaches is monotone in n), else None: doubling from
    `low`, then bisecting the last step."""
    step = low
    while step < high and not reaches(step):
        low, step = step + 1, min(high, 2 * step)
    if not reaches(step):
        return None
    high = step
    while low < high:
        mid = (low + high) // 2
        if reaches(mid):
            high = mid
        else:
            low = mid + 1
    return low


def _assumes(effect: float, what: str) -> str:
    return (f"if the true difference equals the observed one ({what} {effect * 100:+.2f} points) and the spread "
            "over seeds stays as measured")


def seeds_plan(iv: Interval, effect: float, power: float = 0.8, level: float = LEVEL,
               max_seeds: int = SHOW_SEEDS, what: str = "difference") -> SeedsPlan:
    """Seeds per side for one analysis at `level` to settle a gap of `effect` with probability `power`, with
    the assumption said. For a metric over a fixed sentence set the sentence part of the spread stays however
    many seeds run: below `sentence_floor` the answer is that these sentences cannot decide it, and just above
    it no number of seeds may reach the power (`over`)."""
    sd = per_seed_sd(iv)
    floor = sentence_floor(iv, level)
    assumes = _assumes(effect, what)
    if sd is None or not sd > 0 or not math.isfinite(effect) or effect == 0:
        return SeedsPlan(None, None, floor, assumes, "no spread over seeds measured, so no figure")
    if floor is not None and abs(effect) <= floor:
        return SeedsPlan(None, None, floor, assumes, _undecidable(effect, floor, iv.sentences))
    two_sample = iv.design == "two-sample"
    sentence_se = math.sqrt(iv.sentence_var or 0.0)
    n = _smallest(lambda k: floor_power(abs(effect), sd, sentence_se, k, two_sample, level) >= power,
                  MIN_RUNS, max_seeds)
    if n is None:
        return SeedsPlan(None, max_seeds, floor, assumes, _over(max_seeds, power, sentence_se, effect))
    return SeedsPlan(n, None, floor, assumes)


def _undecidable(effect: float, floor: float, sentences: int | None) -> str:
    return (f"cannot be decided with these {sentences} sentences: however many seeds run, the interval stays "
            f"about ±{floor * 100:.2f} points wide from the sentence sample alone, and the observed gap is "
            f"{abs(effect) * 100:.2f} points")


def _over(cap: int, power: float, sentence_se: float, effect: float) -> str:
    text = f"over {cap:,} seeds per side would be needed for power {power:g}"
    if sentence_se > 0:
        limit = float(sps.norm.sf(_t_quantile(LEVEL, 10 ** 6) - abs(effect) / sentence_se))
        text += (f"; with these sentences even unlimited seeds would settle it with probability of only about "
                 f"{limit:.2f}")
    return text


# ---------------------------------------------------------------- two looks: judging again after more seeds
#
# RobustLab's choice of group-sequential design, fixed before the first look: at most two looks at a benchmark's
# method claims, the suite as run (look 1) and once more after the extra seeds it asked for (look 2). The 5 %
# two-sided error rate is spent by the Lan-DeMets O'Brien-Fleming-type function at a planned information fraction
# of 1/2: look 1 spends alpha1 = 2 - 2 Phi(z_0.975 / sqrt(1/2)) = 0.0056, look 2 the rest. Because the number of
# extra seeds is chosen from what look 1 saw, look 2 does not pool the seeds into one t-statistic (that inflates
# the error: 6.5 % in a simulation of this very flow); it combines the two stages by the inverse-normal method
# with weights fixed in advance (sqrt(1/2) each; Lehmacher & Wassmer 1999): each stage's t-statistic (look 1's
# seeds, then only the new seeds) becomes a z by its own t distribution, and Z = (z1 + z2) / sqrt 2 is judged
# against the O'Brien-Fleming-type boundary c2 = 1.979 of that design. Under no true difference z1 and z2 are
# independent standard normals whatever the number of new seeds, so the error rate stays 5 %. For a metric over
# one sentence set both stages share the sentence sample; their correlation (the shared sentence variance over
# the product of the stage standard errors) is put into Z's variance and into c2.

ALPHA = 1 - LEVEL
PLANNED_FRACTION = 0.5
WEIGHTS = (math.sqrt(PLANNED_FRACTION), math.sqrt(1 - PLANNED_FRACTION))
LOOK1_BOUNDARY = float(sps.norm.isf(ALPHA / 2) / math.sqrt(PLANNED_FRACTION))
LOOK1_ALPHA = float(2 * sps.norm.sf(LOOK1_BOUNDARY))
LOOK1_LEVEL = 1 - LOOK1_ALPHA
DESIGN = ("two looks, O'Brien-Fleming-type alpha spending (Lan-DeMets) at a planned information fraction of 1/2, "
          "inverse-normal combination of the stages (RobustLab's choice)")


def look2_boundary(correlation: float) -> float:
    """c2 with P(|Z1| < c1, |Z| >= c2) = alpha - alpha1 when Z1 and the combined Z have this correlation."""
    mvn = sps.multivariate_normal(mean=[0.0, 0.0], cov=[[1.0, correlation], [correlation, 1.0]])
    inside_1 = float(sps.norm.cdf(LOOK1_BOUNDARY) - sps.norm.cdf(-LOOK1_BOUNDARY))
    c1 = LOOK1_BOUNDARY

    def spent(c2: float) -> float:
        both_inside = (mvn.cdf([c1, c2]) - mvn.cdf([-c1, c2]) - mvn.cdf([c1, -c2]) + mvn.cdf([-c1, -c2]))
        return inside_1 - float(both_inside)

    low, high = 1.0, 6.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if spent(mid) > ALPHA - LOOK1_ALPHA else (low, mid)
    return high


LOOK2_BOUNDARY = look2_boundary(WEIGHTS[0])


def stage_z(diff: float, se: float, df: float, delta: float = 0.0) -> float:
    """The z with the same one-sided tail as the stage's t-statistic (diff - delta) / se at df (scipy.special's
    ufuncs: this runs inside root finding and simulations, where scipy.stats' scalar calls cost 100 times more)."""
    t = (diff - delta) / se
    z = float(-special.ndtri(special.stdtr(df, -t))) if t > 0 else float(special.ndtri(special.stdtr(df, t)))
    return max(-37.0, min(37.0, z))


def _usable_stage(iv: Interval) -> bool:
    return iv.diff is not None and iv.se is not None and iv.se > 0 and iv.df is not None


def two_look_interval(first: Interval, second: Interval, pooled: Interval) -> Interval:
    """Look 2 of the design above: the interval of differences delta that the combination test does not
    reject, from the stage intervals of look 1's seeds (`first`) and of the new seeds only (`second`); `pooled`
    (every seed) gives the counts, the spread and the shared sentence variance. Its centre is where the
    combined Z is 0 (the two stages weighted as planned, not by their seeds)."""
    if not (_usable_stage(first) and _usable_stage(second)):
        why = "look 1's seeds" if not _usable_stage(first) else "the new seeds"
        return dataclasses.replace(pooled, low=None, high=None,
                                   note=f"look 2 needs a measurable spread in {why} (at least two on each side)")
    w1, w2 = WEIGHTS
    rho = 0.0
    if pooled.sentence_var:
        rho = min(0.99, pooled.sentence_var / (first.se * second.se))
    scale = math.sqrt(1 + 2 * w1 * w2 * rho)
    c2 = LOOK2_BOUNDARY if rho == 0 else look2_boundary((w1 + w2 * rho) / scale)

    def combined(delta: float) -> float:
        return (w1 * stage_z(first.diff, first.se, first.df, delta)
                + w2 * stage_z(second.diff, second.se, second.df, delta)) / scale

    span = 60 * max(first.se, second.se)
    bracket = (min(first.diff, second.diff) - span, max(first.diff, second.diff) + span)

    def solve(target: float) -> float:   # combined() falls as delta grows, from 37 to -37 across the bracket
        return float(optimize.brentq(lambda d: combined(d) - target, *bracket, xtol=1e-12 * span, rtol=1e-12))

    note = (f"look 2 of {DESIGN}: look 1's {first.n_a} and the {second.n_a} new seed(s) tested apart "
            f"({first.kind}), combined with weights {w1:.3f} / {w2:.3f}, boundary {c2:.3f}"
            + (f", stage correlation {rho:.2f} from the shared sentences" if rho else ""))
    return dataclasses.replace(pooled, diff=solve(0.0), low=solve(c2), high=solve(-c2),
                               kind=f"two-look combination ({pooled.kind})", note=note, df=None, se=None)


def second_look_plan(first: Interval, effect: float, delta: float, power: float = 0.8,
                     max_seeds: int = SHOW_SEEDS, what: str = "difference") -> SeedsPlan:
    """Seeds per side in all that give look 2 of the design the probability `power` of settling the part, given
    what look 1 saw (conditional power: the new seeds' stage must carry Z past c2 from look 1's z), if the true
    difference equals the observed `effect` (the gap to `delta`, 0 or the non-inferiority margin). The stage
    correlation of a sentence metric is left out of the planning (it raises c2 a little)."""
    sd = per_seed_sd(first)
    floor = sentence_floor(first)
    assumes = _assumes(effect, what)
    if sd is None or not sd > 0 or not _usable_stage(first) or effect == 0 or not math.isfinite(effect):
        return SeedsPlan(None, None, floor, assumes, "no spread over seeds measured, so no figure")
    if floor is not None and abs(effect) <= floor:
        return SeedsPlan(None, None, floor, assumes, _undecidable(effect, floor, first.sentences))
    w1, w2 = WEIGHTS
    z1 = abs(stage_z(first.diff, first.se, first.df, delta))
    needed_z = (LOOK2_BOUNDARY - w1 * z1) / w2
    two_sample = first.design == "two-sample"
    sentence_se = math.sqrt(first.sentence_var or 0.0)

    def reaches(new: int) -> bool:
        df = 2 * new - 2 if two_sample else new - 1
        ncp = abs(effect) / math.sqrt(sd ** 2 * (2 if two_sample else 1) / new + sentence_se ** 2)
        threshold = -special.stdtrit(df, float(special.ndtr(-needed_z)))   # the t beyond which z2 >= needed_z
        return _nct_above(df, ncp, float(threshold)) >= power

    now = min(first.n_a, first.n_b) if two_sample else first.n_a
    new = _smallest(reaches, MIN_RUNS, max(MIN_RUNS, max_seeds - now))
    if new is None:
        return SeedsPlan(None, max_seeds, floor, assumes, _over(max_seeds, power, sentence_se, effect))
    return SeedsPlan(now + new, None, floor, assumes)


def chance_accuracy(labels) -> float:
    """The majority-class rate: the accuracy of always predicting the most common label."""
    counts = np.bincount(np.asarray(labels, dtype=int))
    return float(counts.max() / counts.sum()) if counts.sum() else 0.0
