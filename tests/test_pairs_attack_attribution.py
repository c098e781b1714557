"""Sentence pairs in attribution and attacks, on a tiny model trained on generated pairs (pair_run_util):
saliency over both segments with the [SEP] boundary, an attack that edits one segment and leaves the other
byte for byte, the batch attack from the command line, and the messages for input of the wrong shape."""
from __future__ import annotations

import json

import pytest
from cli_util import refused
from pair_run_util import copy_run, pair_data

from engine.attacks.attacker import Attacker, Budget
from engine.attacks.batch import read_results
from engine.attacks.recipes import AttackError
from engine.explain.attribution import AttributionError, explain, fit_pair
from engine.models.inference import LoadedModel, segment_names_for

PAIR = ("the old man walked to the market .", "false , a farmer looked at the garden .")


@pytest.fixture(scope="module")
def loaded(pair_run):
    return LoadedModel.from_run(pair_run[1].dir)


@pytest.fixture(scope="module")
def own_store(pair_run, tmp_path_factory):
    """A copy of the pair run in a store of its own, for tests that add attack runs to it."""
    home = tmp_path_factory.mktemp("pair_attacks") / "runs"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROBUSTLAB_HOME", str(home))
        yield copy_run(pair_run[1], home)


def test_a_pair_run_knows_its_segments(pair_run, tiny_run, loaded):
    assert segment_names_for(pair_run[1].dir) == ("sentence1", "sentence2") == loaded.segment_names
    assert segment_names_for(tiny_run[1].dir) is None
    probs = loaded.probs(pair_data(64, 7).inputs)
    assert (probs.argmax(1) == pair_data(64, 7).labels).mean() > 0.9    # the model learned the pairs


@pytest.mark.parametrize("how", ["ig", "gxi", "attention"])
def test_saliency_covers_both_segments_and_the_boundary(loaded, how):
    a = explain(loaded, PAIR, how, steps=512)   # the pair model is steep: IG's path needs many steps to add up
    assert [w.text for w in a.words] == PAIR[0].split() + PAIR[1].split()
    assert [w.segment for w in a.words] == [0] * len(PAIR[0].split()) + [1] * len(PAIR[1].split())
    assert all(PAIR[w.segment][w.start:w.end] == w.text for w in a.words)
    assert a.text == PAIR[0] and a.text_b == PAIR[1] and a.segment_names == ("sentence1", "sentence2")
    boundary = a.tokens.index("[SEP]")
    assert a.boundary_score == a.token_scores[boundary] and boundary < len(a.tokens) - 1   # the middle [SEP]
    mapped = [w for w in a.token_word if w >= 0]
    assert mapped == sorted(mapped) and set(mapped) == set(range(len(a.words)))
    if how == "ig":
        assert a.completeness["relative_error"] < 0.05, a.completeness
    if how != "attention":   # the cue word of the hypothesis decides the class: it gets the largest share
        assert max(range(len(a.words)), key=lambda i: abs(a.scores[i])) == len(PAIR[0].split())


def test_saliency_reads_the_segment_ids(loaded, monkeypatch):
    """The model is given token_type_ids 1 over the second segment (without them a pair reads as one text)."""
    seen = []
    forward = loaded.model.forward

    def spy(*args, **kwargs):
        seen.append(kwargs.get("token_type_ids"))
        return forward(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", spy)
    for how in ("ig", "gxi", "attention"):
        seen.clear()
        explain(loaded, PAIR, how, target=0)
        assert seen and all(t is not None and int(t.max()) == 1 for t in seen), how


def test_pair_fitting_cuts_the_longer_segment_first(loaded):
    fitted = fit_pair(loaded.tokenizer, "word " * 200, "a short hypothesis", 32)
    assert fitted.text_b == "a short hypothesis" and fitted.truncated
    pieces = len(loaded.tokenizer(*fitted.input)["input_ids"])
    assert pieces <= 32 and "longer segment is cut first" in fitted.notices()[0]


def test_bad_pair_input_for_saliency(loaded, tiny_run):
    with pytest.raises(AttributionError, match="reads sentence pairs"):
        explain(loaded, "one sentence", "ig")
    with pytest.raises(AttributionError, match="sentence2 is empty"):
        explain(loaded, ("a premise", "  "), "ig")
    single = LoadedModel.from_run(tiny_run[1].dir)
    with pytest.raises(AttributionError, match="reads single sentences"):
        explain(single, PAIR, "ig")


@pytest.mark.parametrize("segment, attacked", [(None, 1), ("second", 1), ("first", 0), ("sentence1", 0)])
def test_attack_edits_one_segment_and_keeps_the_other_byte_for_byte(loaded, segment, attacked):
    from textattack.shared.utils import words_from_text

    attacker = Attacker(loaded, "deepwordbug", Budget(400, 0.5), segment=segment)
    data = pair_data(6, 3)
    outcomes = [attacker.attack_text(pair, label) for pair, label in zip(data.inputs, data.labels)]
    for pair, o in zip(data.inputs, outcomes):
        assert o.original_input == pair and o.attacked_segment == attacked
        assert o.perturbed_input[1 - attacked] == pair[1 - attacked]        # byte-identical
        assert o.fixed_text == pair[1 - attacked] and o.words_total == len(words_from_text(pair[attacked]))
        row = o.row(loaded.label_names)
        assert (row["first"], row["second"]) == pair and row["attacked_segment"] == ("sentence1", "sentence2")[attacked]
        assert row["original"] == pair[attacked] and row["perturbed"] == o.perturbed_text
    if attacked == 1:   # the label is read off the hypothesis: editing it flips the model
        assert any(o.status == "succeeded" and o.perturbed_text != o.original_text for o in outcomes)
        assert loaded.probs([outcomes[0].perturbed_input])[0].tolist() == pytest.approx(outcomes[0].perturbed_probs)


def test_segment_share_of_words_is_counted_on_the_attacked_segment(loaded):
    pair = ("the committee waited near the bridge and then talked about the wooden boat for hours .", "no , fine .")
    outcome = Attacker(loaded, "deepwordbug", Budget(400, 0.3)).attack_text(pair, 1)
    assert outcome.words_changed <= 1      # 30 % of 3 words, at least one: not 30 % of the pair's 20 words


def test_bad_pair_input_for_attacks(loaded, tiny_run):
    attacker = Attacker(loaded, "deepwordbug", Budget(50, 0.3))
    with pytest.raises(AttackError, match="sentence2 is empty: there is nothing to attack"):
        attacker.attack_text(("a premise", " "))
    with pytest.raises(AttackError, match="sentence1 is empty: a pair model reads both"):
        attacker.attack_text(("", "yes , a hypothesis"))
    with pytest.raises(AttackError, match="reads sentence pairs"):
        attacker.attack_text("one sentence")
    with pytest.raises(AttackError, match="segment 'third' does not exist; choose first or second"):
        Attacker(loaded, "deepwordbug", segment="third")
    single = LoadedModel.from_run(tiny_run[1].dir)
    with pytest.raises(AttackError, match="reads single sentences"):
        Attacker(single, "deepwordbug").attack_text(PAIR)
    with pytest.raises(AttackError, match="reads single sentences, so there is no segment"):
        Attacker(single, "deepwordbug", segment="second")


def test_cli_attacks_a_pair_run_on_the_chosen_segment(own_store, capsys):
    from engine.__main__ import main

    store, target = own_store
    for segment, attacked in (("second", "sentence2"), ("first", "sentence1")):
        assert main(["attack", target.id, "--dataset", "advglue-rte", "--n", "3", "--max-queries", "100",
                     "--segment", segment, "--json"]) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["n"] == 3 and out["segment"] == segment
        run = store.get(out["run_id"])
        assert run.config["segment"] == segment
        from engine.data.registry import load_dataset

        data = load_dataset("advglue-rte")
        rows = read_results(run)
        fixed = "second" if segment == "first" else "first"
        for i, row in enumerate(rows):
            assert (row["first"], row["second"]) == data.inputs[i] and row["attacked_segment"] == attacked
            assert row["original"] == row[segment]
        import csv

        with open(out["results_path"], encoding="utf-8", newline="") as f:
            table = list(csv.DictReader(f))
        assert [r[fixed] for r in table] == [r[fixed] for r in rows] and "attacked_segment" in table[0]
    # the default is the second segment, and the same attack typed by the segment's name is the cached one
    assert main(["attack", target.id, "--dataset", "advglue-rte", "--n", "3", "--max-queries", "100",
                 "--segment", "sentence2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["cached"] is True


def test_cli_refuses_pair_mismatches(own_store, tiny_run, capsys, monkeypatch):
    _, target = own_store
    assert refused(["attack", target.id, "--dataset", "advglue-rte", "--segment", "third"], capsys) == (
        "error: --segment: segment 'third' does not exist; choose first or second (sentence1 or sentence2)")
    assert refused(["attack", target.id, "--dataset", "sst2-dev"], capsys) == (
        "error: --dataset: sst2-dev holds single sentences, but this model reads sentence pairs "
        "(sentence1 / sentence2)")
    store, single = tiny_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    assert refused(["attack", single.id, "--dataset", "advglue-rte"], capsys) == (
        "error: --dataset: advglue-rte holds sentence pairs, but this model reads single sentences")
    assert refused(["attack", single.id, "--segment", "second"], capsys) == (
        "error: --segment: segment 'second': this model reads single sentences, so there is no segment to choose")
