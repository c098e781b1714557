"""Attacking one text at a time: one recipe with one budget against one model, live progress, cancel,
and TextAttack's summary numbers over many outcomes (or over the records a batch attack stored).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.attacks.diff import count_changed_words, diff_summary
from engine.attacks.recipes import AttackError, get_recipe
from engine.attacks.segments import (
    SEGMENT_CHOICES,
    chosen_segment,
    keep_other_segment_fixed,
    pair_text,
    segment_modification_rate,
    segments_of,
)
from engine.attacks.wrapper import FastModelWrapper
from engine.data.text_dataset import Input
from engine.limits import MAX_QUERIES
from engine.models.heavy_imports import IMPORT_LOCK
from engine.models.inference import Cancelled, LoadedModel
from engine.user_text import quoted

DEFAULT_MAX_QUERIES = 2000
DEFAULT_MAX_FRACTION = 0.3


@dataclass(frozen=True)
class Budget:
    """Limits on one attack: model queries, and the share of words it may change (None: no limit)."""
    max_queries: int | None = DEFAULT_MAX_QUERIES
    max_fraction: float | None = DEFAULT_MAX_FRACTION

    def check(self) -> None:
        if self.max_queries is not None and (not isinstance(self.max_queries, (int, np.integer))
                                             or not 1 <= self.max_queries <= MAX_QUERIES):
            raise AttackError(f"the query budget must be a whole number in 1..{MAX_QUERIES:,} (got "
                              f"{quoted(self.max_queries)}): an attack needs at least one query to read the model's "
                              f"first prediction")
        if self.max_fraction is not None and not 0 < self.max_fraction <= 1:
            raise AttackError(f"the share of words an attack may change must be in (0, 1] "
                              f"(got {quoted(self.max_fraction)}); 0 would allow no change at all")


@dataclass
class AttackSnapshot:
    """A snapshot of a running attack, for a live view (a pair's best text is its attacked segment)."""
    queries: int = 0
    best_text: str | None = None
    best_probs: list[float] | None = None
    original_probs: list[float] | None = None
    elapsed: float = 0.0


@dataclass
class AttackOutcome:
    """The result of attacking one text. For a sentence pair, `original_text` and `perturbed_text` are the
    attacked segment before and after, and `fixed_text` is the other segment, which the attack cannot touch."""
    recipe: str
    original_text: str
    perturbed_text: str
    label: int
    label_source: str                   # "gold" (dataset label) or "prediction" (what the model said)
    status: str                         # succeeded, failed, skipped, cancelled
    original_probs: list[float]
    perturbed_probs: list[float]
    queries: int
    words_changed: int
    words_total: int
    seconds: float
    message: str = ""
    index: int | None = None
    segment_names: tuple[str, str] | None = None   # a pair's segments; None for a single sentence
    attacked_segment: int | None = None            # which of them the attack edited: 0 or 1
    fixed_text: str | None = None                  # the other segment, unchanged
    perturbed_pair: tuple[str, str] | None = None  # the pair TextAttack's search ended on, as the model read it

    @property
    def fraction_changed(self) -> float:
        return self.words_changed / self.words_total if self.words_total else 0.0

    @property
    def attacked_name(self) -> str | None:
        """The attacked segment's name (e.g. hypothesis); None for a single sentence."""
        return None if self.segment_names is None else self.segment_names[self.attacked_segment]

    def _input(self, attacked: str) -> Input:
        if self.segment_names is None:
            return attacked
        return (attacked, self.fixed_text) if self.attacked_segment == 0 else (self.fixed_text, attacked)

    @property
    def original_input(self) -> Input:
        """What the model read before the attack: the sentence, or the pair."""
        return self._input(self.original_text)

    @property
    def perturbed_input(self) -> Input:
        """What the model read after it: the edited sentence, or the pair the search ended on (its attacked
        segment edited)."""
        return self.perturbed_pair or self._input(self.perturbed_text)

    def row(self, label_names: list[str] | None = None) -> dict[str, Any]:
        """A flat record for JSONL and CSV: texts, diff, probabilities, cost. A pair's record also has both
        original segments (`first`, `second`) and the name of the one attacked (`attacked_segment`); its
        `original`, `perturbed` and `diff` are that segment's."""
        names = label_names or [str(i) for i in range(len(self.original_probs))]
        out = {"index": self.index, "status": self.status, "label": names[self.label] if
               self.label < len(names) else self.label}
        if self.segment_names is not None:
            first, second = self.original_input
            out.update({"attacked_segment": self.attacked_name, "first": first, "second": second})
        out.update({"original": self.original_text,
               "perturbed": self.perturbed_text, "diff": diff_summary(self.original_text, self.perturbed_text),
               "queries": self.queries, "words_changed": self.words_changed, "words_total": self.words_total,
               "fraction_changed": round(self.fraction_changed, 4), "seconds": round(self.seconds, 3),
               "message": self.message})
        for name, p0, p1 in zip(names, self.original_probs, self.perturbed_probs):
            out[f"p_{name}_before"] = round(float(p0), 5)
            out[f"p_{name}_after"] = round(float(p1), 5)
        return out


# ---------------------------------------------------------------- attacking

class Attacker:
    """One recipe with one budget against one model; attacks texts one at a time.

    `should_stop` is polled on every query batch (cancel raises inside the search and the outcome is
    `cancelled`, with the best perturbation found so far); `on_progress` gets a `AttackSnapshot` after each
    batch of candidates. A sentence-pair model's pairs are attacked on one `segment` (first or second, or
    the segment's name; the second by default) while the other stays as it is.
    """

    def __init__(self, loaded: LoadedModel, recipe: str, budget: Budget = Budget(),
                 should_stop: Callable[[], bool] | None = None,
                 on_progress: Callable[[AttackSnapshot], None] | None = None, seed: int = 0,
                 segment: str | None = None) -> None:
        budget.check()
        chosen = chosen_segment(segment, loaded.segment_names)
        self.segment = None if chosen is None else SEGMENT_CHOICES.index(chosen)   # 0 or 1: the one attacked
        self.recipe = get_recipe(recipe)
        self.loaded, self.budget, self.seed = loaded, budget, seed
        self.should_stop = should_stop or (lambda: False)
        self.on_progress = on_progress
        self.wrapper = FastModelWrapper(loaded, self.should_stop)
        with IMPORT_LOCK:   # a recipe's first build loads TextAttack, NLTK corpora, word lists
            self.attack = self.recipe.build(self.wrapper)
        _apply_budget(self.attack, budget, self.segment)
        if self.segment is not None:
            keep_other_segment_fixed(self.attack, loaded.segment_names, self.segment)
        # TextAttack caches each text's result; logits that depend on the batch must be recomputed every time
        self.attack.goal_function.use_cache = not loaded.method.batch_dependent_logits
        self._observe(self.attack)
        self._progress = AttackSnapshot()
        self._started = 0.0

    def _observe(self, attack: Any) -> None:
        """Watch every batch of model results the search asks for: count, keep the best candidate, cancel."""
        goal = attack.goal_function
        inner = goal.get_results

        def observed(texts: list, check_skip: bool = False):
            if self.should_stop():
                raise Cancelled()
            results, over = inner(texts, check_skip=check_skip)
            progress = self._progress
            progress.queries = goal.num_queries
            for result in results:
                if "last_transformation" in result.attacked_text.attack_attrs and (
                        progress.best_text is None or result.score > self._best_score):
                    self._best_score = result.score
                    progress.best_text = self._attacked_part(result.attacked_text)
                    progress.best_probs = result.raw_output.tolist()
            progress.elapsed = time.perf_counter() - self._started
            if self.on_progress:
                self.on_progress(AttackSnapshot(**asdict(progress)))
            return results, over

        goal.get_results = observed
        attack.search_method.get_goal_results = observed

    def _attacked_part(self, attacked_text: Any) -> str:
        """The text the attack edits: the sentence, or a pair's attacked segment."""
        return attacked_text.text if self.segment is None else segments_of(attacked_text)[self.segment]

    def attack_text(self, given: Input, label: int | None = None, index: int | None = None) -> AttackOutcome:
        """Attack one sentence, or one pair on the chosen segment. With no label, the model's own prediction is
        the label to flip."""
        problem = self.loaded.input_problem(given)
        if problem:
            raise AttackError(problem)
        names = self.loaded.segment_names
        if names is not None:
            for i, part in enumerate(given):
                if not part.strip():
                    raise AttackError(f"the {names[i]} is empty: " + ("there is nothing to attack" if i == self.segment
                                                                      else "a pair model reads both segments"))
        elif not given or not given.strip():
            raise AttackError("there is no text to attack")
        from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult
        from textattack.shared import AttackedText

        random.seed(self.seed)
        np.random.seed(self.seed)
        original_probs = self.loaded.probs([given])[0]
        source = "gold"
        if label is None:
            label, source = int(original_probs.argmax()), "prediction"
        if not 0 <= label < len(original_probs):
            raise AttackError(f"label {label} does not exist; the model has {len(original_probs)} classes")
        attacked = AttackedText(given) if names is None else pair_text(given, names)
        text = self._attacked_part(attacked)
        self._progress = AttackSnapshot(original_probs=original_probs.tolist())
        self._best_score = -float("inf")
        self._started = time.perf_counter()
        n_words = len(attacked.words) if names is None else len(attacked.words_per_input[self.segment])
        base = dict(recipe=self.recipe.name, original_text=text, label=int(label), label_source=source,
                    original_probs=original_probs.tolist(), words_total=n_words, index=index)
        if names is not None:
            base.update(segment_names=names, attacked_segment=self.segment, fixed_text=given[1 - self.segment])
        if n_words == 0:
            return AttackOutcome(**base, perturbed_text=text, status="skipped", perturbed_probs=original_probs.tolist(),
                                 queries=0, words_changed=0, seconds=0.0,
                                 message="the text has no words TextAttack can edit (only symbols or emoji)")
        self.attack.clear_cache(recursive=False)
        try:
            result = self.attack.attack(attacked, int(label))
        except Cancelled:
            best = self._progress
            perturbed = best.best_text or text
            return AttackOutcome(**base, perturbed_text=perturbed, status="cancelled",
                                 perturbed_probs=best.best_probs or original_probs.tolist(),
                                 queries=best.queries, words_changed=count_changed_words(text, perturbed),
                                 seconds=time.perf_counter() - self._started,
                                 message=f"cancelled after {best.queries} queries; showing the best perturbation "
                                         f"found so far")
        seconds = time.perf_counter() - self._started
        final = result.perturbed_result
        queries = final.num_queries
        if isinstance(result, SkippedAttackResult):
            predicted = int(original_probs.argmax())
            names = self.loaded.label_names
            return AttackOutcome(**base, perturbed_text=text, status="skipped", perturbed_probs=original_probs.tolist(),
                                 queries=queries, words_changed=0, seconds=seconds,
                                 message=f"skipped: the model already predicts {names[predicted]} for this "
                                         f"{names[label]} example, so there is nothing to flip")
        status = "succeeded" if isinstance(result, SuccessfulAttackResult) else "failed"
        changed = len(final.attacked_text.attack_attrs.get("modified_indices", ()))
        message = ""
        if isinstance(result, FailedAttackResult):
            over = self.budget.max_queries is not None and queries >= self.budget.max_queries
            message = (f"the query budget of {self.budget.max_queries} ran out before the prediction flipped"
                       if over else "no allowed edit flipped the prediction within the budget of changed words")
        return AttackOutcome(**base, perturbed_text=self._attacked_part(final.attacked_text), status=status,
                             perturbed_probs=final.raw_output.tolist(), queries=queries, words_changed=changed,
                             seconds=seconds, message=message,
                             perturbed_pair=None if names is None else segments_of(final.attacked_text))


def _apply_budget(attack: Any, budget: Budget, segment: int | None) -> None:
    """The query budget, and the share of words that may change: of the sentence, or of a pair's attacked
    `segment`."""
    from textattack.constraints.pre_transformation import MaxModificationRate

    if budget.max_queries is not None:
        attack.goal_function.query_budget = int(budget.max_queries)
    if budget.max_fraction is not None:
        attack.pre_transformation_constraints.append(
            MaxModificationRate(float(budget.max_fraction), min_threshold=1) if segment is None
            else segment_modification_rate(float(budget.max_fraction), segment))


# ---------------------------------------------------------------- summaries

SUMMARY_KEYS = ("success_rate", "avg_queries", "accuracy_under_attack", "original_accuracy",
                "avg_fraction_perturbed", "n", "succeeded", "failed", "skipped")


def summarize(outcomes: list[AttackOutcome]) -> dict[str, Any]:
    """TextAttack's summary numbers of a list of outcomes (see `summarize_rows`)."""
    return summarize_rows({"status": o.status, "queries": o.queries, "words_changed": o.words_changed,
                           "words_total": o.words_total} for o in outcomes)


def summarize_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """TextAttack's summary numbers over outcome records (`AttackOutcome.row()`, or any mapping with
    status, queries, words_changed, words_total): success over attacked (not skipped) examples, accuracy
    under attack over all, queries over attacked, share of words perturbed over successful attacks."""
    rows = list(rows)
    n = len(rows)
    count = {s: sum(r["status"] == s for r in rows) for s in ("succeeded", "failed", "skipped", "cancelled")}
    attacked = [r for r in rows if r["status"] in ("succeeded", "failed")]
    won = [r for r in rows if r["status"] == "succeeded"]
    return {"n": n, **count,
            "success_rate": count["succeeded"] / len(attacked) if attacked else 0.0,
            "accuracy_under_attack": count["failed"] / n if n else 0.0,
            "original_accuracy": (n - count["skipped"]) / n if n else 0.0,
            "avg_queries": float(np.mean([r["queries"] for r in attacked])) if attacked else 0.0,
            "avg_fraction_perturbed": float(np.mean([_fraction(r) for r in won])) if won else 0.0}


def _fraction(row: Mapping[str, Any]) -> float:
    return row["words_changed"] / row["words_total"] if row["words_total"] else 0.0
