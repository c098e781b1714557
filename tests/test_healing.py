"""The Healing Powers claim judged per seed on synthetic recovery grids (no training): the chance-corrected
recovery ratio, the four parts (below 1 for bottom and top, bottom below top paired by seed, a per-seed slope
over k), too few seeds, clean baselines that failed or did not learn, which grid is judged, and
`report --grid` with an id that names no grid."""
from __future__ import annotations

import numpy as np
import pytest
from recovery_util import DEV_CHANCE, fake_grid
from scipy import stats as sps

from engine.recovery.claims import judge_grid, judge_healing
from engine.recovery.metrics import chance_corrected_ratio, grid_rows, summarise_by_label
from engine.store.runs import RunError, RunStore
from engine.training.evaluate import dev_chance

CLEAN = {0: 0.85, 1: 0.82, 2: 0.84, 3: 0.86}
# chance-corrected recovery ratio per seed at k = 1, 2, 3: the seeds differ a lot (seed 1 heals least), bottom
# is about 0.10 below top within every seed, and every seed loses about 0.05 per extra corrupted layer
BOTTOM = {0: [0.80, 0.75, 0.70], 1: [0.68, 0.62, 0.57], 2: [0.74, 0.69, 0.63], 3: [0.78, 0.72, 0.69]}
TOP = {0: [0.90, 0.86, 0.80], 1: [0.78, 0.73, 0.68], 2: [0.83, 0.79, 0.72], 3: [0.88, 0.83, 0.77]}


def accuracy_of(ratios: dict[str, dict[int, list[float]]], clean: dict[int, float | None] = CLEAN):
    """The accuracy function of fake_grid whose cells have these chance-corrected ratios."""
    def accuracy(position: str, k: int, seed: int) -> float | None:
        if position == "clean":
            return clean[seed]
        reference = clean[seed] or CLEAN[seed]     # a failed clean run: the corrupted cells still finish
        return DEV_CHANCE + ratios[position][seed][k - 1] * (reference - DEV_CHANCE)
    return accuracy


def parts_of(row: dict) -> dict[str, dict]:
    return {p["text"].split(":")[0]: p for p in row["parts"]}


@pytest.fixture
def store(run_home) -> RunStore:
    return RunStore(run_home)


def test_chance_corrected_ratio():
    assert chance_corrected_ratio(0.8, 0.9, 0.5) == pytest.approx(0.75)
    assert chance_corrected_ratio(0.5, 0.9, 0.5) == 0.0                        # at chance: nothing recovered
    # a clean model barely above chance: the raw ratio says 98 %, the corrected one two thirds
    assert chance_corrected_ratio(0.52, 0.53, 0.5) == pytest.approx(2 / 3)
    assert chance_corrected_ratio(0.6, 0.5, 0.5) is None                       # clean at chance: undefined
    assert chance_corrected_ratio(None, 0.9, 0.5) is None and chance_corrected_ratio(0.8, 0.9, None) is None


def test_grid_rows_carry_the_chance_corrected_ratio_beside_raw_accuracy(store):
    grid = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0], levels=[1])
    rows = {r["label"]: r for r in grid_rows(store, grid)}
    bottom = rows["bottom-1"]
    raw = DEV_CHANCE + 0.80 * (0.85 - DEV_CHANCE)
    assert bottom["final_accuracy"] == pytest.approx(raw) and bottom["clean_accuracy"] == 0.85
    assert bottom["chance_accuracy"] == pytest.approx(DEV_CHANCE)
    assert bottom["recovery_ratio"] == pytest.approx(0.80)                    # not raw / 0.85 = 0.906
    assert rows["clean"]["recovery_ratio"] == pytest.approx(1.0) and rows["clean"]["learned"] is True
    summary = {e["label"]: e for e in summarise_by_label(list(rows.values()))}
    assert summary["top-1"]["recovery_ratio_mean"] == pytest.approx(0.90)


def test_dev_chance_counts_the_dev_labels_when_the_run_did_not_store_it(store):
    grid = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0], levels=[1])
    child = store.get(grid_rows(store, grid)[0]["run_id"])
    (child.dir / "results.json").write_text('{"status": "done", "dev_set": "sst2-dev", "dev_accuracy": 0.85}')
    assert dev_chance(child) == pytest.approx(444 / 872)


def test_healing_parts_take_the_seed_as_the_unit(store):
    grid = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1, 2])
    row = judge_healing(store, grid.id)
    parts = parts_of(row)
    assert row["verdict"] == "supported", row["parts"]
    assert [p["verdict"] for p in row["parts"]] == ["supported"] * 4
    assert all(p["n_a"] == 3 for p in row["parts"])                          # 3 seeds, not 9 (level, seed) runs
    bottom_means = [np.mean(BOTTOM[s]) for s in range(3)]
    top_means = [np.mean(TOP[s]) for s in range(3)]
    below_one = parts["bottom-layer corruption"]
    assert below_one["mean_a"] == pytest.approx(np.mean(bottom_means)) and below_one["baseline"] == 1.0
    # bottom below top: a paired t over the seed-wise differences of the per-seed means
    paired = parts["recovery ratio"]
    assert paired["kind"] == "paired t" and paired["baseline"] == "top"
    diffs = np.array(bottom_means) - np.array(top_means)
    half = sps.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert paired["diff"] == pytest.approx(diffs.mean())
    assert (paired["ci_low"], paired["ci_high"]) == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    # unpaired, the seeds' spread would swamp the gap: Welch over the same seed means includes zero
    assert sps.ttest_ind(bottom_means, top_means, equal_var=False).pvalue > 0.05
    # more corrupted layers, lower recovery: one slope per seed (bottom and top slopes averaged), against 0
    slope = parts["more corrupted layers, lower recovery"]
    per_seed = [np.mean([np.polyfit([1, 2, 3], BOTTOM[s], 1)[0], np.polyfit([1, 2, 3], TOP[s], 1)[0]])
                for s in range(3)]
    assert slope["mean_a"] == pytest.approx(np.mean(per_seed)) and slope["baseline"] == 0.0
    assert slope["ci_high"] < 0
    assert all(p["seeds_needed"] is None for p in row["parts"])              # nothing left open


def test_recovery_that_rises_with_k_fails_the_slope_part(store):
    rising = {p: {s: v[::-1] for s, v in table.items()} for p, table in (("bottom", BOTTOM), ("top", TOP))}
    row = judge_healing(store, fake_grid(store, accuracy_of(rising), seeds=[0, 1, 2]).id)
    parts = parts_of(row)
    assert parts["more corrupted layers, lower recovery"]["verdict"] == "not supported"
    assert parts["recovery ratio"]["verdict"] == "supported"                 # the other parts stand
    assert row["verdict"] == "not supported"


def test_one_level_leaves_the_slope_open(store):
    row = judge_healing(store, fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1, 2],
                                         levels=[1]).id)
    slope = parts_of(row)["more corrupted layers, lower recovery"]
    assert slope["verdict"] == "inconclusive" and "one level" in slope["reason"]


def test_fewer_than_three_seeds_is_inconclusive_with_seeds_needed(store):
    row = judge_healing(store, fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1]).id)
    assert row["verdict"] == "inconclusive"
    for part in row["parts"]:
        assert part["verdict"] == "inconclusive" and part["n_a"] == 2
        assert "too few runs" in part["reason"], part["reason"]
        assert isinstance(part["seeds_needed"], int) and part["seeds_needed"] >= 3
    one = judge_healing(store, fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0]).id)
    assert all(p["verdict"] == "inconclusive" and p["seeds_needed"] is None for p in one["parts"])


@pytest.mark.parametrize("clean, says", [
    ({0: None, 1: None, 2: None}, "its clean baseline failed"),
    ({0: 0.55, 1: 0.52, 2: 0.60}, "did not learn the task"),
])
def test_clean_runs_that_failed_or_did_not_learn_give_no_verdict(store, clean, says):
    row = judge_healing(store, fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}, clean),
                                         seeds=[0, 1, 2]).id)
    assert row["verdict"] == "inconclusive"
    assert all(p["verdict"] == "inconclusive" and p["mean_a"] is None for p in row["parts"])
    assert all("no clean baseline finished and learned" in p["reason"] for p in row["parts"])
    assert sum(says in s for s in row["statements"]) == 3
    assert any(s.startswith("No verdict") for s in row["statements"])


def test_a_seed_whose_clean_run_failed_is_left_out(store):
    clean = {**CLEAN, 3: None}
    row = judge_healing(store, fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}, clean),
                                         seeds=[0, 1, 2, 3]).id)
    assert all(p["n_a"] == 3 for p in row["parts"]) and row["verdict"] == "supported"
    assert any(s.startswith("Seed 3 is left out") for s in row["statements"])


def test_the_row_names_the_grid_and_its_budget(store):
    older = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1, 2])
    newest = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1, 2], corruption_kind="noise")
    fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0], status="running")   # not finished
    row = judge_healing(store, None)
    assert row["grid"]["id"] == newest.id and newest.id in row["statements"][0]
    grid = row["grid"]
    assert grid["corruption"] == "noise (scale 0.5)" and grid["levels"] == [1, 2, 3] and grid["seeds"] == [0, 1, 2]
    assert (grid["train_size"], grid["epochs"], grid["lr"], grid["model"]) == (2000, 2, 2e-4, "minilm")
    assert grid["clean_accuracy"] == {"0": 0.85, "1": 0.82, "2": 0.84}
    assert "2,000 training examples x 2 epoch(s) at learning rate 0.0002" in row["statements"][1]
    assert judge_healing(store, older.id)["grid"]["corruption"] == "reinit (kaiming-normal weights)"
    view = judge_grid(older, grid_rows(store, older))
    assert view["statements"][0].startswith(f"Recovery grid {older.id} (done): reinit (kaiming-normal weights) "
                                            "corruption")
    linear = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0], init="linear-default")
    assert "reinit (linear-default weights) corruption" in judge_grid(linear, grid_rows(store, linear))["statements"][0]


def test_no_grid_and_unknown_grids(store):
    row = judge_healing(store, None)
    assert row["grid"] is None and row["verdict"] == "inconclusive"
    assert "no finished recovery grid" in row["statements"][0]
    with pytest.raises(RunError, match="no recovery grid nope"):
        judge_healing(store, "nope")


def test_report_grid_must_name_a_recovery_grid(store, capsys):
    from engine.__main__ import main

    grid = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0])
    child = grid_rows(store, grid)[0]["run_id"]
    assert main(["report", "--json", "--runs", child, "--grid", "nope"]) == 2
    captured = capsys.readouterr()
    assert "no recovery grid nope" in captured.err and captured.out == ""
    assert main(["report", "--json", "--runs", child, "--grid", child]) == 2
    assert "is a train run, not a recovery grid" in capsys.readouterr().err


def test_cka_hidden_states_of_a_pair_run_cover_both_segments():
    """A pair run's CKA probe reads its dev pairs, so the compared token states hold both segments' tokens."""
    from engine.models.loading import build_classifier, load_tokenizer
    from engine.recovery.analysis import token_states

    tokenizer = load_tokenizer("tiny")
    pairs = [("a cat sat", "on the mat"), ("dogs", "bark at night")]
    states = token_states(build_classifier("tiny", 2, 0), tokenizer, pairs, 32)
    # [CLS] a cat sat [SEP] on the mat [SEP] and [CLS] dogs [SEP] bark at night [SEP]
    assert len(states) == 3 and all(s.shape == (9 + 7, 32) for s in states)
