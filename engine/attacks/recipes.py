"""The attack recipes: which run offline here, what each needs, and how each is built.

Most recipes are TextAttack's own, unchanged. PWWS gets a WordNet swap that never calls
`nltk.download`; `textbugger-chars` keeps TextBugger's character bugs only; `embedding-swap` swaps words
for their neighbours in the victim model's own embedding matrix.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.attacks.wrapper import FastModelWrapper, import_textattack
from engine.models.architecture import word_embeddings
from engine.models.heavy_imports import textattack_recipe
from engine.models.inference import LoadedModel
from engine.user_text import quoted


class AttackError(ValueError):
    """An attack cannot be started as asked (unknown or unavailable recipe, bad budget); says why."""


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
        import_textattack()
        return getattr(textattack_recipe(module), cls).build(wrapper)
    return build


def _pwws(wrapper: FastModelWrapper) -> Any:
    """PWWS (Ren et al. 2019) exactly as TextAttack builds it, with a WordNet swap that does not call
    `nltk.download` (TextAttack's asks the network for omw-1.4 even for English)."""
    ta = import_textattack()
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
    ta = import_textattack()
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import (
        CompositeTransformation,
        WordSwapHomoglyphSwap,
        WordSwapNeighboringCharacterSwap,
        WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion,
    )

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
    ta = import_textattack()
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR

    transformation = model_embedding_swap(wrapper.loaded)
    return ta.Attack(UntargetedClassification(wrapper), [RepeatModification(), StopwordModification()],
                     transformation, GreedyWordSwapWIR(wir_method="unk"))


def model_embedding_swap(loaded: LoadedModel, max_candidates: int = 8) -> Any:
    """A TextAttack `WordSwap` whose candidates are a word's nearest whole-word neighbours in the
    model's input embedding matrix (WordNet antonyms are dropped when WordNet is installed)."""
    import_textattack()
    from textattack.transformations import WordSwap

    vocab = loaded.tokenizer.get_vocab()
    words = [w for w in vocab if len(w) > 1 and w.isalpha() and w.isascii() and not w.startswith("[")]
    ids = torch.tensor([vocab[w] for w in words])
    with loaded.lock, torch.no_grad():
        matrix = word_embeddings(loaded.model).weight[ids].float().cpu()
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
        raise AttackError(f"unknown recipe {quoted(name)}; known: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    missing = recipe.missing()
    if missing:
        raise AttackError(f"recipe {name} cannot run here: it needs {'; '.join(missing)}: not on this machine, "
                          f"and nothing is downloaded at run time. Recipes that run offline: "
                          f"{', '.join(r.name for r in RECIPES.values() if r.available())}")
    return recipe

