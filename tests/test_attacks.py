"""Attacks through TextAttack on the tiny model: the wrapper, the recipes, budgets, cancel, batch jobs, CLI."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from engine.attacks.attacker import Attacker, AttackOutcome, Budget, summarize, summarize_rows
from engine.attacks.batch import read_results
from engine.attacks.diff import count_changed_words, diff_summary, diff_tokens
from engine.attacks.recipes import RECIPES, AttackError, Recipe, Requirement, get_recipe, recipe_table
from engine.attacks.wrapper import FastModelWrapper
from engine.models.inference import LoadedModel

TEXTS = ["a charming and often affecting journey .", "unflinchingly bleak and desperate",
         "it 's a lovely film with lovely performances by buy and accorsi .", "bad",
         "the acting , costumes , music , cinematography and sound are all astounding given the production 's "
         "austere locales ."]


def sensitive_tiny_run(tiny_run, home: Path):
    """A copy of the tiny run in a store of its own (indexed like any run), with its classifier head refit by ridge
    regression on the pooled features of 512 SST-2 training sentences.

    The tiny run's 4 training steps leave it predicting about 0.50 for every input, which no attack can
    flip; the refit head (seconds) makes its predictions depend on the words, as a trained model's do.
    Returns (store, run).
    """
    import torch

    from engine.data.batching import encode, model_inputs, pad_batch
    from engine.data.registry import load_dataset
    from engine.models.loading import load_trained, save_trained
    from engine.store.runs import RunStore

    source = tiny_run[1]
    store = RunStore(home)
    run = store.create({k: v for k, v in source.config.items() if k not in ("kind", "run_id")})
    shutil.copytree(source.dir / "model", run.dir / "model")
    for name in ("results.json", "metrics.jsonl", "eval.json"):
        if (source.dir / name).exists():
            shutil.copy(source.dir / name, run.dir / name)
    model, tok, _ = load_trained(run.dir)
    data = load_dataset("sst2").sample(512, 0)
    encoded = encode(tok, data.texts, 64)
    with torch.no_grad():
        feats = [model.bert(**model_inputs(pad_batch(encoded, range(i, min(i + 128, len(data))), tok.pad_token_id)))
                 .pooler_output.double() for i in range(0, len(data), 128)]
    x = torch.cat(feats).numpy()
    y = np.array(data.labels) * 2.0 - 1
    mu, sd = x.mean(0), x.std(0) + 1e-12
    z = (x - mu) / sd
    w = np.linalg.solve(z.T @ z + 0.1 * len(z) * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    k = 1.5 / (z @ w).std()
    with torch.no_grad():
        model.classifier.weight[1] = torch.tensor(w / sd * k / 2, dtype=torch.float32)
        model.classifier.weight[0] = -model.classifier.weight[1]
        model.classifier.bias[1] = float((-(mu / sd) @ w + y.mean()) * k / 2)
        model.classifier.bias[0] = -model.classifier.bias[1]
    save_trained(model, tok, model.config, run.dir / "model")
    run.set_status("done", finished=time.time())
    store.update_index(run)
    return store, run


@pytest.fixture(scope="module")
def sensitive(tiny_run, tmp_path_factory):
    return sensitive_tiny_run(tiny_run, tmp_path_factory.mktemp("sensitive") / "runs")


@pytest.fixture(scope="module")
def loaded(sensitive):
    return LoadedModel.from_run(sensitive[1].dir)


@pytest.fixture
def own_store(sensitive, monkeypatch):
    """The module's store as the current ROBUSTLAB_HOME, for the CLI."""
    monkeypatch.setenv("ROBUSTLAB_HOME", str(sensitive[0].home))
    return sensitive


def test_wrapper_matches_plain_model(tiny_run, loaded):
    """Same probabilities as evaluate.predict_probs, in input order: on the trained tiny run (to float
    precision) and on the refit head (which magnifies padding round-off, hence the looser tolerance)."""
    from engine.models.inference import predict_probs

    plain_run = LoadedModel.from_run(tiny_run[1].dir)
    for model, atol in ((plain_run, 1e-6), (loaded, 2e-4)):
        wrapper = FastModelWrapper(model, batch_size=2)
        plain = predict_probs(model.model, model.method, model.tokenizer, TEXTS, max_length=model.max_length)
        np.testing.assert_allclose(wrapper(TEXTS).softmax(-1).numpy(), plain, atol=atol)
    wrapper = FastModelWrapper(loaded, batch_size=2)
    plain = wrapper(TEXTS).softmax(-1).numpy()
    hits = loaded.stats["cache_hits"]
    again = wrapper(list(reversed(TEXTS))).softmax(-1).numpy()
    np.testing.assert_allclose(again, plain[::-1], atol=1e-6)
    assert loaded.stats["cache_hits"] == hits + len(TEXTS)


def test_offline_recipes_listed_and_missing_resources_explained(monkeypatch):
    table = {row["name"]: row for row in recipe_table()}
    for name in ("deepwordbug", "pruthi", "pwws", "textbugger-chars", "embedding-swap"):
        assert table[name]["available"], table[name]["reason"]
    missing = Requirement("a resource that is not here", lambda: False)
    monkeypatch.setitem(RECIPES, "needs-more", Recipe("needs-more", "t", "s", "words", (missing,), lambda w: None))
    row = {r["name"]: r for r in recipe_table()}["needs-more"]
    assert not row["available"] and "a resource that is not here" in row["reason"]
    with pytest.raises(AttackError, match="a resource that is not here"):
        get_recipe("needs-more")
    with pytest.raises(AttackError, match="unknown recipe"):
        get_recipe("nope")


@pytest.mark.parametrize("budget", [Budget(0, 0.3), Budget(10, 0.0), Budget(10, 1.5)])
def test_bad_budget_refused(loaded, budget):
    with pytest.raises(AttackError):
        Attacker(loaded, "deepwordbug", budget)


@pytest.mark.slow
def test_deepwordbug_flips_the_tiny_model_with_a_real_diff(loaded):
    seen = []
    attacker = Attacker(loaded, "deepwordbug", Budget(500, 1.0), on_progress=seen.append)
    outcome = attacker.attack_text(TEXTS[0])
    assert outcome.status == "succeeded", outcome.message
    assert outcome.perturbed_text != outcome.original_text
    assert any(op == "replace" for op, _, _ in diff_tokens(outcome.original_text, outcome.perturbed_text))
    assert diff_summary(outcome.original_text, outcome.perturbed_text)
    replayed = loaded.probs([outcome.perturbed_text])[0]
    np.testing.assert_allclose(replayed, outcome.perturbed_probs, atol=1e-5)
    assert int(np.argmax(replayed)) != outcome.label == int(np.argmax(outcome.original_probs))
    assert outcome.words_total == len(TEXTS[0].split()) - 1 == 6      # TextAttack's words: no "."
    changed = [old for op, old, _ in diff_tokens(outcome.original_text, outcome.perturbed_text) if op != "equal"]
    assert outcome.words_changed == len(changed) >= 1 and outcome.queries > 1
    assert seen and seen[-1].queries <= outcome.queries and seen[-1].best_text


@pytest.mark.slow
def test_query_budget_is_respected(loaded):
    outcome = Attacker(loaded, "pwws", Budget(3, 1.0)).attack_text(TEXTS[4])
    assert outcome.queries <= 3
    assert outcome.status == "failed" and "query budget" in outcome.message, outcome.message


def test_cancel_stops_the_search(loaded):
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    loaded_fresh = LoadedModel(loaded.model, loaded.tokenizer, loaded.method, loaded.max_length, loaded.label_names)
    outcome = Attacker(loaded_fresh, "deepwordbug", Budget(5000, 1.0), should_stop=stop_after_two).attack_text(
        TEXTS[4])
    assert outcome.status == "cancelled" and "cancelled" in outcome.message


def test_misclassified_example_is_skipped_with_a_reason(loaded):
    text = TEXTS[0]
    wrong = 1 - int(np.argmax(loaded.probs([text])[0]))
    outcome = Attacker(loaded, "deepwordbug", Budget(100, 0.3)).attack_text(text, label=wrong)
    assert outcome.status == "skipped" and "already predicts" in outcome.message


def test_text_with_no_words_is_skipped(loaded):
    outcome = Attacker(loaded, "deepwordbug", Budget(100, 0.3)).attack_text("😀 🎬 \u200b !!")
    assert outcome.status == "skipped" and "no words" in outcome.message
    with pytest.raises(AttackError):
        Attacker(loaded, "deepwordbug").attack_text("   ")


def nearest_whole_words(loaded: LoadedModel, word: str, k: int) -> list[str]:
    """The k whole words (alphabetic, not special tokens) closest by cosine to `word` in the model's own input
    embeddings, computed here independently of the recipe."""
    import torch

    vocab = loaded.tokenizer.get_vocab()
    words = [w for w in vocab if len(w) > 1 and w.isalpha() and w.isascii() and not w.startswith("[")]
    with torch.no_grad():
        matrix = torch.nn.functional.normalize(
            loaded.model.get_input_embeddings().weight[[vocab[w] for w in words]].float(), dim=-1)
        sims = matrix @ matrix[words.index(word)]
    return [words[j] for j in torch.topk(sims, k + 1).indices.tolist() if words[j] != word][:k]


def test_embedding_swap_uses_model_neighbours(loaded):
    outcome = Attacker(loaded, "embedding-swap", Budget(300, 1.0)).attack_text(TEXTS[1])
    assert outcome.status == "succeeded", outcome.message          # this sentence is known to flip
    swaps = [(old, new) for op, old, new in diff_tokens(outcome.original_text, outcome.perturbed_text)
             if op == "replace"]
    assert swaps
    for old, new in swaps:   # a neighbour among the 8 the recipe offers, after up to 16 dropped as antonyms
        assert new.strip().lower() in nearest_whole_words(loaded, old.strip().lower(), 24), (old, new)


def test_diff_round_trip():
    a, b = "the film is  terrible , really", "the flim is  terrib1e , really truly"
    ops = diff_tokens(a, b)
    assert "".join(o for _, o, _ in ops) == a and "".join(n for _, _, n in ops) == b
    assert diff_summary(a, b).startswith("film -> flim")


# (original, perturbed, its one-line summary, words changed): a replacement, an insertion and a deletion each show,
# with ∅ on the empty side; a change of white space alone is no change of words
DIFFS = [
    ("the film is bad", "the movie is bad", "film -> movie", 1),
    ("the film", "the good film", "∅ -> good", 1),
    ("the very good film", "the good film", "very -> ∅", 1),
    ("a b c", "a x c d", "b -> x; ∅ -> d", 2),
    ("a b c d", "a c", "b -> ∅; d -> ∅", 2),
    ("a b", "a x y b", "∅ -> x y", 2),
    ("one two", "three", "one two -> three", 2),
    ("the  film", "the film", "", 0),
    ("same words", "same words", "", 0),
]


@pytest.mark.parametrize("a, b, summary, changed", DIFFS, ids=[f"{a!r}->{b!r}" for a, b, _, _ in DIFFS])
def test_diff_summary_and_changed_words_count_insertions_and_deletions(a, b, summary, changed):
    assert diff_summary(a, b) == summary
    assert count_changed_words(a, b) == changed


def test_summary_of_stored_rows_and_of_outcomes():
    """TextAttack's numbers: success over attacked, accuracy under attack over all, queries over attacked,
    share of words changed over successes; the same from outcomes and from their stored rows."""
    def outcome(status: str, queries: int, changed: int, total: int) -> AttackOutcome:
        return AttackOutcome("deepwordbug", "a b", "a c", 1, "gold", status, [0.2, 0.8], [0.6, 0.4], queries,
                             changed, total, 0.1)

    outcomes = [outcome("succeeded", 10, 1, 4), outcome("succeeded", 30, 1, 3), outcome("failed", 50, 0, 5),
                outcome("skipped", 0, 0, 6)]
    expected = {"n": 4, "succeeded": 2, "failed": 1, "skipped": 1, "cancelled": 0, "success_rate": 2 / 3,
                "accuracy_under_attack": 1 / 4, "original_accuracy": 3 / 4, "avg_queries": 30.0,
                "avg_fraction_perturbed": (1 / 4 + 1 / 3) / 2}
    assert summarize_rows([o.row(["neg", "pos"]) for o in outcomes]) == pytest.approx(expected)
    assert summarize(outcomes) == pytest.approx(expected)
    assert summarize_rows([])["success_rate"] == 0.0


def test_cli_batch_attack_json_and_cache(own_store, capsys):
    from engine.__main__ import main

    store, target = own_store
    assert main(["attack", target.id, "--recipe", "deepwordbug", "--dataset", "sst2-dev", "--n", "4",
                 "--max-queries", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("success_rate", "avg_queries", "accuracy_under_attack", "n", "results_path"):
        assert key in out
    assert out["n"] == 4 and out["cached"] is False
    rows = read_results(store.get(out["run_id"]))
    assert len(rows) == 4 and all(r["status"] in ("succeeded", "failed", "skipped") for r in rows)
    count = {s: sum(r["status"] == s for r in rows) for s in ("succeeded", "failed", "skipped")}
    assert out["succeeded"] == count["succeeded"] >= 1
    assert out["accuracy_under_attack"] == count["failed"] / 4
    assert out["original_accuracy"] == (4 - count["skipped"]) / 4
    assert out["success_rate"] == count["succeeded"] / (count["succeeded"] + count["failed"])
    with open(out["results_path"], encoding="utf-8") as f:
        assert len(f.read().strip().splitlines()) == 5
    assert main(["attack", target.id, "--recipe", "deepwordbug", "--dataset", "sst2-dev", "--n", "4",
                 "--max-queries", "200", "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["cached"] is True and again["run_id"] == out["run_id"]


def test_cli_rejects_bad_input(own_store, capsys):
    from engine.__main__ import main

    _, target = own_store
    assert main(["attack", target.id, "--max-queries", "0", "--json"]) == 2
    assert "query budget" in capsys.readouterr().err
    assert main(["attack", target.id, "--recipe", "textfooler-nope", "--json"]) == 2
    assert main(["attack", "no-such-run", "--json"]) == 2


@pytest.mark.parametrize("inference, cached", [("in-batch", False), ("bypass", True)])
def test_textattack_caches_no_logits_that_depend_on_the_batch(inference, cached):
    """TextAttack keeps each text's model output; Match-Tuning's in-batch logits change with the batch, so its
    attacks must ask the model every time."""
    from engine.methods import make_method
    from engine.models.loading import build_classifier, load_tokenizer

    method = make_method("match-tuning", {"inference": inference})
    model = method.prepare_model(build_classifier("tiny", 2, seed=0)).eval()
    attacker = Attacker(LoadedModel(model, load_tokenizer("tiny"), method), "deepwordbug", Budget(50, 1.0))
    assert attacker.attack.goal_function.use_cache is cached
