"""Adversarial attacks through TextAttack: a fast model wrapper, the recipes that run offline, single
attacks with live progress and cancel, and batch attacks as a background job.

The wrapper is where the speed is: TextAttack's stock `HuggingFaceModelWrapper` pads every query to
512 tokens; ours sorts each batch by length, pads only to its longest member, and never runs the same
text twice (a cache shared by every attack on that model). TextAttack itself is imported only when an
attack is built (importing it takes seconds), so listing recipes stays instant.
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import importlib.util
import json
import os
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from engine.attribution import Cancelled, LoadedModel
from engine.paths import use_project_nltk_data
from engine.runs import read_jsonl

use_project_nltk_data()

DEFAULT_MAX_QUERIES = 2000
DEFAULT_MAX_FRACTION = 0.3


class AttackError(ValueError):
    """An attack cannot be started as asked (unknown or unavailable recipe, bad budget); says why."""


# ---------------------------------------------------------------- the model wrapper

class FastModelWrapper:
    """A TextAttack model wrapper over a `LoadedModel`: logits for a list of texts, batched by length,
    padded dynamically, cached. `should_stop` is polled before every batch and raises `Cancelled`.

    It is registered as a virtual subclass of `textattack.models.wrappers.ModelWrapper` when TextAttack
    is imported, so TextAttack treats it like its own wrappers.
    """

    def __init__(self, loaded: LoadedModel, should_stop: Callable[[], bool] | None = None,
                 batch_size: int = 64) -> None:
        self.loaded = loaded
        self.model = loaded.model          # TextAttack checks model/goal-function compatibility on this
        self.tokenizer = loaded.tokenizer
        self.should_stop = should_stop
        self.batch_size = batch_size
        self.calls = 0

    def __call__(self, text_input_list: list[str], **_: Any) -> torch.Tensor:
        self.calls += 1
        if self.should_stop is not None and self.should_stop():
            raise Cancelled()
        return torch.from_numpy(self.loaded.logits(list(text_input_list), self.should_stop, self.batch_size))

    def tokenize(self, inputs: list[str], strip_prefix: bool = False) -> list[list[str]]:
        tokens = [self.tokenizer.convert_ids_to_tokens(self.tokenizer(x, truncation=True)["input_ids"])
                  for x in inputs]
        return [[t.replace("##", "") for t in seq] for seq in tokens] if strip_prefix else tokens

    def get_grad(self, text_input: str) -> dict:
        raise NotImplementedError("RobustLab's recipes are black-box; gradient-guided search is not wired up")


def _textattack():
    """Import TextAttack (slow, once) and make our wrapper one of its model wrappers."""
    import textattack
    from textattack.models.wrappers import ModelWrapper

    ModelWrapper.register(FastModelWrapper)
    return textattack


# ---------------------------------------------------------------- recipes

@dataclass(frozen=True)
class Requirement:
    """A resource a recipe needs, and how to tell whether it is on this machine."""
    what: str
    check: Callable[[], bool]


def _nltk(resource: str) -> Callable[[], bool]:
    def check() -> bool:
        import nltk

        try:
            nltk.data.find(resource)
            return True
        except LookupError:
            return False
    return check


def _ta_cache(rel: str) -> Callable[[], bool]:
    def check() -> bool:
        root = os.environ.get("TA_CACHE_DIR", os.path.expanduser("~/.cache/textattack"))
        return (Path(root) / rel).exists()
    return check


def _hf_cached(repo: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return False
        return isinstance(try_to_load_from_cache(repo, "config.json"), str)
    return check


def _module(name: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(name) is not None


def _tfhub_cached(url: str) -> Callable[[], bool]:
    def check() -> bool:
        root = Path(os.environ.get("TFHUB_CACHE_DIR") or Path(tempfile.gettempdir()) / "tfhub_modules")
        return _module("tensorflow_hub")() and (root / hashlib.sha1(url.encode()).hexdigest()).exists()
    return check


STOPWORDS = Requirement("NLTK English stopwords (corpora/stopwords)", _nltk("corpora/stopwords/english"))
WORDNET = Requirement("WordNet (corpora/wordnet in NLTK_DATA)", _nltk("corpora/wordnet"))
COUNTERFITTED = Requirement("counter-fitted PARAGRAM word embeddings (TextAttack cache word_embeddings/paragramcf)",
                            _ta_cache("word_embeddings/paragramcf"))
USE = Requirement("Universal Sentence Encoder (tensorflow_hub and the cached tfhub.dev model)",
                  _tfhub_cached("https://tfhub.dev/google/universal-sentence-encoder/3"))
POS_TAGGER = Requirement("NLTK part-of-speech tagger (taggers/averaged_perceptron_tagger_eng, universal_tagset)",
                         lambda: _nltk("taggers/averaged_perceptron_tagger_eng")() and
                         _nltk("taggers/universal_tagset")())
BERT_MLM = Requirement("bert-base-uncased masked language model in the Hugging Face cache",
                       _hf_cached("bert-base-uncased"))
GPT2 = Requirement("GPT-2 language model in the Hugging Face cache", _hf_cached("gpt2"))
GOOG_LM = Requirement("Alzantot's Google 1B language model (TextAttack cache)",
                      _ta_cache("constraints/semantics/language-models/alzantot-goog-lm"))
DISTILROBERTA = Requirement("distilroberta-base in the Hugging Face cache", _hf_cached("distilroberta-base"))
FLAIR_NER = Requirement("flair's English NER tagger (flair/ner-english in the Hugging Face cache)",
                        _hf_cached("flair/ner-english"))


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    summary: str
    edits: str                                  # "characters" or "words": what it changes
    needs: tuple[Requirement, ...]
    build: Callable[[FastModelWrapper], Any]    # -> textattack.Attack

    def missing(self) -> list[str]:
        return [r.what for r in self.needs if not r.check()]

    def available(self) -> bool:
        return not self.missing()


def _stock(module: str, cls: str) -> Callable[[FastModelWrapper], Any]:
    """Build one of TextAttack's own recipes, unchanged."""
    def build(wrapper: FastModelWrapper) -> Any:
        _textattack()
        return getattr(importlib.import_module(f"textattack.attack_recipes.{module}"), cls).build(wrapper)
    return build


def _pwws(wrapper: FastModelWrapper) -> Any:
    """PWWS (Ren et al. 2019) exactly as TextAttack builds it, with a WordNet swap that does not call
    `nltk.download` (TextAttack's asks the network for omw-1.4 even for English)."""
    ta = _textattack()
    from nltk.corpus import wordnet
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapWordNet

    class OfflineWordNetSwap(WordSwapWordNet):
        def __init__(self) -> None:
            if "eng" not in wordnet.langs():
                raise AttackError("WordNet is installed without English")
            self.language = "eng"

    return ta.Attack(UntargetedClassification(wrapper), [RepeatModification(), StopwordModification()],
                     OfflineWordNetSwap(), GreedyWordSwapWIR("weighted-saliency"))


def _textbugger_chars(wrapper: FastModelWrapper) -> Any:
    """TextBugger's character bugs (Li et al. 2018): insert a space, delete, swap neighbours, homoglyphs.
    The word-level bug (GloVe neighbours) and the sentence-encoder check need downloads and are left out."""
    ta = _textattack()
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import (CompositeTransformation, WordSwapHomoglyphSwap,
                                            WordSwapNeighboringCharacterSwap, WordSwapRandomCharacterDeletion,
                                            WordSwapRandomCharacterInsertion)

    transformation = CompositeTransformation([
        WordSwapRandomCharacterInsertion(random_one=True, letters_to_insert=" ", skip_first_char=True,
                                         skip_last_char=True),
        WordSwapRandomCharacterDeletion(random_one=True, skip_first_char=True, skip_last_char=True),
        WordSwapNeighboringCharacterSwap(random_one=True, skip_first_char=True, skip_last_char=True),
        WordSwapHomoglyphSwap(),
    ])
    return ta.Attack(UntargetedClassification(wrapper), [RepeatModification(), StopwordModification()],
                     transformation, GreedyWordSwapWIR(wir_method="delete"))


def _embedding_swap(wrapper: FastModelWrapper) -> Any:
    """Swap words for their nearest neighbours (cosine) in the victim model's own input embeddings."""
    ta = _textattack()
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR

    transformation = model_embedding_swap(wrapper.loaded)
    return ta.Attack(UntargetedClassification(wrapper), [RepeatModification(), StopwordModification()],
                     transformation, GreedyWordSwapWIR(wir_method="unk"))


def model_embedding_swap(loaded: LoadedModel, max_candidates: int = 8) -> Any:
    """A TextAttack `WordSwap` whose candidates are a word's nearest whole-word neighbours in the
    model's input embedding matrix (WordNet antonyms are dropped when WordNet is installed)."""
    _textattack()
    from textattack.transformations import WordSwap

    from engine.attribution import word_embedding_layer

    vocab = loaded.tokenizer.get_vocab()
    words = [w for w in vocab if len(w) > 1 and w.isalpha() and w.isascii() and not w.startswith("[")]
    ids = torch.tensor([vocab[w] for w in words])
    with loaded.lock, torch.no_grad():
        matrix = word_embedding_layer(loaded.model).weight[ids].float().cpu()
    matrix = torch.nn.functional.normalize(matrix, dim=-1)
    index = {w: i for i, w in enumerate(words)}
    antonyms = _antonym_lookup()

    class WordSwapModelEmbedding(WordSwap):
        def __init__(self) -> None:
            super().__init__()
            self._memo: dict[str, list[str]] = {}

        def _get_replacement_words(self, word: str) -> list[str]:
            low = word.lower()
            if low not in self._memo:
                row = index.get(low)
                if row is None:
                    self._memo[low] = []
                else:
                    sims = matrix @ matrix[row]
                    sims[row] = -2.0
                    banned = antonyms(low)
                    picked = []
                    for j in torch.topk(sims, max_candidates * 3).indices.tolist():
                        if words[j] not in banned and words[j] != low:
                            picked.append(words[j])
                        if len(picked) == max_candidates:
                            break
                    self._memo[low] = picked
            return [_match_case(word, w) for w in self._memo[low]]

        @property
        def deterministic(self) -> bool:
            return True

    return WordSwapModelEmbedding()


def _antonym_lookup() -> Callable[[str], set[str]]:
    if not WORDNET.check():
        return lambda word: set()
    from nltk.corpus import wordnet

    def antonyms(word: str) -> set[str]:
        return {a.name().lower() for s in wordnet.synsets(word) for lemma in s.lemmas() for a in lemma.antonyms()}
    return antonyms


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("deepwordbug", "DeepWordBug (Gao et al. 2018)",
           "Character edits (swap, substitute, delete, insert) on the most important words, greedily.",
           "characters", (STOPWORDS,), _stock("deepwordbug_gao_2018", "DeepWordBugGao2018")),
    Recipe("pruthi", "Pruthi et al. 2019",
           "One typo (keyboard neighbour, swap, insertion, deletion) inside a word of 4+ letters.",
           "characters", (STOPWORDS,), _stock("pruthi_2019", "Pruthi2019")),
    Recipe("pwws", "PWWS (Ren et al. 2019)",
           "WordNet synonyms, words ordered by probability-weighted saliency.",
           "words", (STOPWORDS, WORDNET), _pwws),
    Recipe("textbugger-chars", "TextBugger, character bugs (Li et al. 2018)",
           "TextBugger's character edits: split a word with a space, delete, swap, look-alike characters.",
           "characters", (STOPWORDS,), _textbugger_chars),
    Recipe("embedding-swap", "Embedding-neighbour swap",
           "Replace words by their nearest neighbours in the model's own embedding matrix. Neighbours are "
           "not always synonyms; read what it changed.", "words", (STOPWORDS,), _embedding_swap),
    Recipe("textbugger", "TextBugger, full (Li et al. 2018)", "Character bugs plus GloVe word swaps, "
           "checked by the Universal Sentence Encoder.", "both", (STOPWORDS, COUNTERFITTED, USE),
           _stock("textbugger_li_2018", "TextBuggerLi2018")),
    Recipe("textfooler", "TextFooler (Jin et al. 2019)", "Counter-fitted embedding synonyms with POS and "
           "sentence-encoder checks.", "words", (STOPWORDS, COUNTERFITTED, USE, POS_TAGGER),
           _stock("textfooler_jin_2019", "TextFoolerJin2019")),
    Recipe("bae", "BAE (Garg & Ramakrishnan 2019)", "BERT masked-LM replacements.", "words",
           (STOPWORDS, BERT_MLM, USE, POS_TAGGER), _stock("bae_garg_2019", "BAEGarg2019")),
    Recipe("bert-attack", "BERT-Attack (Li et al. 2020)", "BERT masked-LM replacements, sub-word aware.",
           "words", (STOPWORDS, BERT_MLM, USE), _stock("bert_attack_li_2020", "BERTAttackLi2020")),
    Recipe("clare", "CLARE (Li et al. 2020)", "Masked-LM replace, insert and merge.", "words",
           (STOPWORDS, DISTILROBERTA, USE), _stock("clare_li_2020", "CLARE2020")),
    Recipe("alzantot", "Alzantot et al. 2018", "Genetic search over embedding synonyms with a language model.",
           "words", (STOPWORDS, COUNTERFITTED, GOOG_LM), _stock("genetic_algorithm_alzantot_2018",
                                                                "GeneticAlgorithmAlzantot2018")),
    Recipe("kuleshov", "Kuleshov et al. 2017", "Greedy embedding synonyms with GPT-2 fluency checks.", "words",
           (STOPWORDS, COUNTERFITTED, GPT2), _stock("kuleshov_2017", "Kuleshov2017")),
    Recipe("checklist", "CheckList (Ribeiro et al. 2020)", "Invariance edits: names, places, numbers, "
           "contractions.", "words", (FLAIR_NER,), _stock("checklist_ribeiro_2020", "CheckList2020")),
]}


def recipe_table() -> list[dict[str, Any]]:
    """Every recipe with whether it can run here and, if not, what is missing (for the UI and CLI)."""
    rows = []
    for r in RECIPES.values():
        missing = r.missing()
        rows.append({"name": r.name, "title": r.title, "edits": r.edits, "summary": r.summary,
                     "available": not missing,
                     "reason": "" if not missing else "needs " + "; ".join(missing) + ": not on this machine, "
                     "and nothing is downloaded at run time"})
    return rows


def get_recipe(name: str) -> Recipe:
    """A recipe that can run now; AttackError naming what is missing otherwise."""
    if name not in RECIPES:
        raise AttackError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    missing = recipe.missing()
    if missing:
        raise AttackError(f"recipe {name} cannot run here: it needs {'; '.join(missing)}: not on this machine, "
                          f"and nothing is downloaded at run time. Recipes that run offline: "
                          f"{', '.join(r.name for r in RECIPES.values() if r.available())}")
    return recipe


# ---------------------------------------------------------------- budgets and results

@dataclass(frozen=True)
class Budget:
    """Limits on one attack: model queries, and the share of words it may change (None: no limit)."""
    max_queries: int | None = DEFAULT_MAX_QUERIES
    max_fraction: float | None = DEFAULT_MAX_FRACTION

    def check(self) -> None:
        if self.max_queries is not None and (not isinstance(self.max_queries, (int, np.integer))
                                             or self.max_queries < 1):
            raise AttackError(f"the query budget must be a whole number of at least 1 (got {self.max_queries!r}): "
                              "an attack needs at least one query to read the model's first prediction")
        if self.max_fraction is not None and not 0 < self.max_fraction <= 1:
            raise AttackError(f"the share of words an attack may change must be in (0, 1] "
                              f"(got {self.max_fraction!r}); 0 would allow no change at all")


@dataclass
class Progress:
    """A snapshot of a running attack, for a live view."""
    queries: int = 0
    best_text: str | None = None
    best_probs: list[float] | None = None
    original_probs: list[float] | None = None
    elapsed: float = 0.0


@dataclass
class AttackOutcome:
    """The result of attacking one text."""
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

    @property
    def fraction_changed(self) -> float:
        return self.words_changed / self.words_total if self.words_total else 0.0

    def row(self, label_names: list[str] | None = None) -> dict[str, Any]:
        """A flat record for JSONL and CSV: texts, diff, probabilities, cost."""
        names = label_names or [str(i) for i in range(len(self.original_probs))]
        out = {"index": self.index, "status": self.status, "label": names[self.label] if
               self.label < len(names) else self.label, "original": self.original_text,
               "perturbed": self.perturbed_text, "diff": diff_summary(self.original_text, self.perturbed_text),
               "queries": self.queries, "words_changed": self.words_changed, "words_total": self.words_total,
               "fraction_changed": round(self.fraction_changed, 4), "seconds": round(self.seconds, 3),
               "message": self.message}
        for name, p0, p1 in zip(names, self.original_probs, self.perturbed_probs):
            out[f"p_{name}_before"] = round(float(p0), 5)
            out[f"p_{name}_after"] = round(float(p1), 5)
        return out


# ---------------------------------------------------------------- attacking

class Attacker:
    """One recipe with one budget against one model; attacks texts one at a time.

    `should_stop` is polled on every query batch (cancel raises inside the search and the outcome is
    `cancelled`, with the best perturbation found so far); `on_progress` gets a `Progress` after each
    batch of candidates.
    """

    def __init__(self, loaded: LoadedModel, recipe: str, budget: Budget = Budget(),
                 should_stop: Callable[[], bool] | None = None,
                 on_progress: Callable[[Progress], None] | None = None, seed: int = 0) -> None:
        budget.check()
        self.recipe = get_recipe(recipe)
        self.loaded, self.budget, self.seed = loaded, budget, seed
        self.should_stop = should_stop or (lambda: False)
        self.on_progress = on_progress
        self.wrapper = FastModelWrapper(loaded, self.should_stop)
        self.attack = self.recipe.build(self.wrapper)
        _apply_budget(self.attack, budget)
        self._observe(self.attack)
        self._progress = Progress()
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
                    progress.best_text = result.attacked_text.text
                    progress.best_probs = result.raw_output.tolist()
            progress.elapsed = time.perf_counter() - self._started
            if self.on_progress:
                self.on_progress(Progress(**asdict(progress)))
            return results, over

        goal.get_results = observed
        attack.search_method.get_goal_results = observed

    def attack_text(self, text: str, label: int | None = None, index: int | None = None) -> AttackOutcome:
        """Attack one text. With no label, the model's own prediction is the label to flip."""
        if not text or not text.strip():
            raise AttackError("there is no text to attack")
        from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult
        from textattack.shared import AttackedText

        random.seed(self.seed)
        np.random.seed(self.seed)
        original_probs = self.loaded.probs([text])[0]
        source = "gold"
        if label is None:
            label, source = int(original_probs.argmax()), "prediction"
        if not 0 <= label < len(original_probs):
            raise AttackError(f"label {label} does not exist; the model has {len(original_probs)} classes")
        attacked = AttackedText(text)
        self._progress = Progress(original_probs=original_probs.tolist())
        self._best_score = -float("inf")
        self._started = time.perf_counter()
        n_words = len(attacked.words)
        base = dict(recipe=self.recipe.name, original_text=text, label=int(label), label_source=source,
                    original_probs=original_probs.tolist(), words_total=n_words, index=index)
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
                                 queries=best.queries, words_changed=_words_changed(text, perturbed),
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
        return AttackOutcome(**base, perturbed_text=final.attacked_text.text, status=status,
                             perturbed_probs=final.raw_output.tolist(), queries=queries, words_changed=changed,
                             seconds=seconds, message=message)


def _apply_budget(attack: Any, budget: Budget) -> None:
    from textattack.constraints.pre_transformation import MaxModificationRate

    if budget.max_queries is not None:
        attack.goal_function.query_budget = int(budget.max_queries)
    if budget.max_fraction is not None:
        attack.pre_transformation_constraints.append(MaxModificationRate(float(budget.max_fraction), min_threshold=1))


def _words_changed(a: str, b: str) -> int:
    return sum(1 for op in diff_tokens(a, b) if op[0] != "equal" and (op[1].strip() or op[2].strip()))


# ---------------------------------------------------------------- diffs

_TOKEN = re.compile(r"\s+|\S+")


def diff_tokens(a: str, b: str) -> list[tuple[str, str, str]]:
    """Word-level diff of two texts, whitespace kept: (op, old, new) with op equal/replace/delete/insert.

    Joining every `old` gives `a` back and every `new` gives `b`, so a view can highlight either side.
    """
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    out: list[tuple[str, str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        old, new = "".join(ta[i1:i2]), "".join(tb[j1:j2])
        if op == "replace" and i2 - i1 == j2 - j1:
            for x, y in zip(ta[i1:i2], tb[j1:j2]):
                out.append(("equal" if x == y else "replace", x, y))
        else:
            out.append((op, old, new))
    return out


def diff_chars(old: str, new: str) -> list[tuple[str, str, str]]:
    """Character-level diff inside one replaced word (which letters a typo attack touched)."""
    return [(op, old[i1:i2], new[j1:j2])
            for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()]


def diff_summary(a: str, b: str) -> str:
    """The changes as one line of text, e.g. `terrible -> terrib1e; movie -> film` (for tables and CSV)."""
    parts = []
    for op, old, new in diff_tokens(a, b):
        if op == "equal":
            continue
        old, new = old.strip(), new.strip()
        parts.append(f"{old or '∅'} -> {new or '∅'}")
    return "; ".join(parts)


# ---------------------------------------------------------------- batch attacks (a job kind)

SUMMARY_KEYS = ("success_rate", "avg_queries", "accuracy_under_attack", "original_accuracy",
                "avg_fraction_perturbed", "n", "succeeded", "failed", "skipped")


def summarize(outcomes: list[AttackOutcome]) -> dict[str, Any]:
    """TextAttack's summary numbers: success over attacked (not skipped) examples, accuracy under attack
    over all, queries over attacked, share of words perturbed over successful attacks."""
    n = len(outcomes)
    count = {s: sum(o.status == s for o in outcomes) for s in ("succeeded", "failed", "skipped", "cancelled")}
    attacked = [o for o in outcomes if o.status in ("succeeded", "failed")]
    won = [o for o in outcomes if o.status == "succeeded"]
    return {"n": n, **count,
            "success_rate": count["succeeded"] / len(attacked) if attacked else 0.0,
            "accuracy_under_attack": count["failed"] / n if n else 0.0,
            "original_accuracy": (n - count["skipped"]) / n if n else 0.0,
            "avg_queries": float(np.mean([o.queries for o in attacked])) if attacked else 0.0,
            "avg_fraction_perturbed": float(np.mean([o.fraction_changed for o in won])) if won else 0.0}


def batch_config(target: str, recipe: str, dataset: str, n: int, budget: Budget, seed: int = 0) -> dict[str, Any]:
    """The config of an attack run (kind "attack", parent = the target run)."""
    if n < 1:
        raise AttackError(f"attack at least 1 example (got n={n})")
    budget.check()
    get_recipe(recipe)
    return {"target": target, "recipe": recipe, "dataset": dataset, "n": int(n), "max_queries": budget.max_queries,
            "max_fraction": budget.max_fraction, "seed": seed, "method": f"attack-{recipe}"}


CONFIG_KEYS = ("target", "recipe", "dataset", "n", "max_queries", "max_fraction", "seed")


def find_cached(store, config: dict[str, Any]):
    """A finished attack run with the same target, recipe, dataset, n, budget and seed, or None."""
    for row in store.list(kind="attack", parent=config["target"], status="done"):
        run = store.get(row["id"])
        if all(run.config.get(k) == config.get(k) for k in CONFIG_KEYS):
            return run
    return None


def attack_summaries(store, target: str) -> list[dict[str, Any]]:
    """Every finished batch attack on one trained run, newest first: its settings and summary numbers
    (what a report table needs, without re-running anything)."""
    out = []
    for row in store.list(kind="attack", parent=target, status="done"):
        run = store.get(row["id"])
        out.append({"run_id": run.id, **{k: run.config.get(k) for k in CONFIG_KEYS},
                    **{k: run.results.get(k) for k in SUMMARY_KEYS}, "results_path": run.results.get("results_path")})
    return out


def read_results(run) -> list[dict[str, Any]]:
    """The per-example records of an attack run, in order."""
    return read_jsonl(run.dir / "results.jsonl")


def run_job(run, should_stop: Callable[[], bool], progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """The `attack` job kind: attack the first n examples of a dataset with one recipe and budget.

    Each example's record is appended to results.jsonl as soon as it is done; results.csv is written at
    the end (also after a cancel), and the summary becomes results.json.
    """
    from engine.data import load_dataset
    from engine.device import pick_device
    from engine.runs import RunStore

    config = run.config
    store = RunStore(run.dir.parent)
    target = store.get(config["target"])
    budget = Budget(config.get("max_queries"), config.get("max_fraction"))
    data = load_dataset(config["dataset"])
    n = min(int(config["n"]), len(data))
    loaded = LoadedModel.from_run(target.dir, pick_device())
    if data.num_labels > len(loaded.label_names):
        raise AttackError(f"{config['dataset']} has {data.num_labels} classes; the model knows {len(loaded.label_names)}")
    attacker = Attacker(loaded, config["recipe"], budget, should_stop=should_stop, seed=int(config.get("seed", 0)))
    run.log(f"attacking {n} examples of {config['dataset']} with {config['recipe']} against {target.id}; "
            f"budget {budget}")
    run.set_status(total_steps=n, step=0)
    jsonl = run.dir / "results.jsonl"
    outcomes: list[AttackOutcome] = []
    started = time.time()
    for i in range(n):
        if should_stop():
            break
        outcome = attacker.attack_text(data.texts[i], data.labels[i], index=i)
        if outcome.status == "cancelled":
            break
        outcomes.append(outcome)
        with open(jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(outcome.row(loaded.label_names), ensure_ascii=False) + "\n")
        so_far = summarize(outcomes)
        run.set_status(step=i + 1, success_rate=so_far["success_rate"], avg_queries=so_far["avg_queries"])
        if progress:
            progress(i + 1, n, so_far["success_rate"])
    cancelled = len(outcomes) < n
    csv_path = run.dir / "results.csv"
    write_csv(csv_path, [o.row(loaded.label_names) for o in outcomes])
    summary = summarize(outcomes)
    run.log(f"{'cancelled' if cancelled else 'done'}: {len(outcomes)}/{n} examples, success rate "
            f"{summary['success_rate']:.3f}, accuracy under attack {summary['accuracy_under_attack']:.3f}")
    return {**summary, "status": "cancelled" if cancelled else "done", "target": target.id,
            "recipe": config["recipe"], "dataset": config["dataset"], "n_requested": n,
            "results_path": str(csv_path), "jsonl_path": str(jsonl), "seconds": round(time.time() - started, 2)}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV, written to a temporary name first (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields or ["index"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
