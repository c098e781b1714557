"""Runs of another dataset never leak into a comparison: the Benchmark's rows and claims, the ODE page's default
runs and the UEGR page's vanilla overlay keep to one dataset (SST-2 unless a run of another one was chosen), and
the choice is visible. Runs are written by hand (benchmark_util), nothing trains."""
from __future__ import annotations

from pathlib import Path

from apptest_util import no_exception, page
from benchmark_util import fake_run

from engine.store.runs import Run, RunStore, write_json


def news_csv(folder: Path) -> str:
    path = folder / "news.csv"
    path.write_text("text,label\n" + "\n".join(f"story {i},{i % 5}" for i in range(50)) + "\n", encoding="utf-8")
    return f"csv:{path}"


def news_run(store: RunStore, method: str, seed: int, dev: float, dataset: str) -> Run:
    """A finished run on the news CSV: its dev accuracy is on the split held out of it, chance 0.2."""
    run = fake_run(store, method, seed, dev, dataset=dataset)
    write_json(run.dir / "eval.json", {"heldout": {"accuracy": dev, "n": 10, "chance_accuracy": 0.2}})
    write_json(run.dir / "results.json", {"status": "done", "dev_set": "heldout", "dev_accuracy": dev,
                                          "chance_accuracy": 0.2, "learned": True})
    store.update_index(run)
    return run


# ---------------------------------------------------------------- the report

def test_claims_are_judged_on_one_dataset_and_the_report_says_so(run_home, tmp_path):
    """More news-corpus runs than SST-2 runs: a claim about fine-tuning methods is still judged on the SST-2 rows,
    every part of it, and the report says the other dataset's rows are not in the claims."""
    from engine.reporting.benchmark import build_report

    store = RunStore(run_home)
    news = news_csv(tmp_path)
    ids = [fake_run(store, m, s, d, lr=2e-4).id for m, s, d in
           (("vanilla", 0, 0.80), ("vanilla", 1, 0.81), ("vanilla", 2, 0.82),
            ("match-tuning", 0, 0.83), ("match-tuning", 1, 0.84), ("match-tuning", 2, 0.85))]
    ids += [news_run(store, m, s, d, news).id for m, s, d in
            [("vanilla", s, 0.60 + s / 50) for s in range(4)] + [("match-tuning", s, 0.50 + s / 50) for s in range(4)]]
    report = build_report(store, ids, None)
    rows = {m["method"]: m for m in report["methods"]}
    assert all(m["n_runs"] in (3, 4) for m in rows.values())                # no row pools the two datasets
    match = next(c for c in report["claims"] if c["key"] == "match-tuning")
    used = {p[k] for p in match["parts"] for k in ("group_row", "baseline_row") if p[k]}
    assert used and not any("csv:" in label for label in used), used
    assert any("news" in s and "not in the claims" in s for s in report["statements"]), report["statements"]


# ---------------------------------------------------------------- the pages

def test_benchmark_runs_chosen_by_hand_keep_to_one_dataset(run_home, tmp_path):
    store = RunStore(run_home)
    news = news_csv(tmp_path)
    sst2 = [fake_run(store, "vanilla", s, 0.80 + s / 100, lr=2e-4).id for s in (0, 1)]
    [news_run(store, "vanilla", s, 0.3, news) for s in (0, 1)]
    at = page("benchmark.py")
    at.session_state["bench-source"] = "Runs I choose"
    at.run()
    dataset = at.selectbox(key="bench-dataset")
    assert dataset.value == "sst2" and any("upload news" in o for o in dataset.options)   # the choice is visible
    at.multiselect(key="bench-whole").set_value(["vanilla"])
    at.selectbox(key="bench-recipe-read").set_value("none").run()
    no_exception(at)
    table = next(df.value for df in at.dataframe if "clean dev accuracy" in df.value.columns)
    assert list(table["method"]) == ["vanilla"] and list(table["runs"]) == [2]
    runs = next(df.value for df in at.dataframe if "run_id" in df.value.columns or "run" in df.value.columns)
    assert set(runs.get("run_id", runs.get("run"))) == set(sst2)


def test_ode_page_defaults_to_runs_of_one_dataset(run_home, tmp_path):
    """The newest vanilla run is a news model; the default comparison is the SST-2 vanilla and IM-BERT."""
    store = RunStore(run_home)
    sst2 = [fake_run(store, m, 0, 0.8).id for m in ("vanilla", "im-bert")]
    news_run(store, "vanilla", 0, 0.9, news_csv(tmp_path))
    at = page("ode_stability.py").run()
    no_exception(at)
    assert sorted(at.multiselect(key="ode-runs").value) == sorted(sst2)


def test_uegr_vanilla_overlay_offers_only_vanilla_runs_of_the_same_dataset(run_home, tmp_path):
    from app.methods.views import vanilla_runs_with

    store = RunStore(run_home)
    uegr = fake_run(store, "uegr", 0, 0.8)
    alike = fake_run(store, "vanilla", 0, 0.8)
    longer = fake_run(store, "vanilla", 1, 0.8, epochs=2)
    news = news_run(store, "vanilla", 0, 0.9, news_csv(tmp_path))
    for run in (alike, longer, news):
        run.append_metrics([{"step": 1, "split": "dev", "name": "input_grad_norm", "value": 1.0}])
    assert [r.id for r in vanilla_runs_with(uegr, "dev", "input_grad_norm")] == [alike.id, longer.id]
