"""Running a suite on a trained run: the `behaviour` job kind.

A behaviour run is a run of kind "behaviour" whose parent is the trained run, like a batch attack. Its config
holds the whole suite as read (so its cases can be made again from the config and the seed); its folder holds
`cases.jsonl` (every case with both predictions) and `results.json` (one summary per test). A finished run with
the same target, suite content and seed is reused (`engine.execution.kinds.find_done`). Predictions go through
`LoadedModel`, the
batched, length-sorted, cached path the attacks use, so a sentence shared by several tests is predicted once.

Results stored before CheckList's rule was used (no `scoring` key, or an older one) still read: `current_results`
scores them again from their case records (the probabilities stored rounded to 4 decimals) by today's rule, keeps
the stored rate as `former_failure_rate`, and where the records are gone says so in `missing` (rate None).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.behaviour.generate import Case, GenerationError, generate_cases
from engine.behaviour.scoring import NEUTRAL, SCORING, judged_row, score_test, summarise
from engine.behaviour.spec import BehaviourSuite, BehaviourSuiteError, behaviour_suite_from_data
from engine.data.text_dataset import DataError
from engine.models.device import pick_device
from engine.models.inference import Cancelled, LoadedModel, label_names_for, segment_names_for
from engine.store.owned_paths import OutsideRootsError, inside
from engine.store.runs import Run, RunStore, read_jsonl
from engine.training.evaluate import eval_set
from engine.user_text import quoted

CHUNK = 256          # texts per progress step (and per cancel check, besides the one before each batch)
CONFIG_KEYS = ("target", "suite_digest", "seed")


def behaviour_config(target: str, suite: BehaviourSuite, seed: int = 0) -> dict[str, Any]:
    """The config of a behaviour run (kind "behaviour", parent = the target run)."""
    return {"target": target, "suite": suite.name, "suite_digest": suite.digest, "suite_data": suite.source,
            "seed": int(seed), "method": f"behaviour-{suite.name}"}


def stored_results(store: RunStore, target: str, suite: str) -> dict[str, Any] | None:
    """The newest finished behaviour results of a suite (by name) on a run, or None (`current_results`)."""
    for row in store.list(kind="behaviour", parent=target, status="done"):
        run = store.get(row["id"])
        if run.config.get("suite") == suite:
            return {**current_results(run), "run_id": run.id}
    return None


def _stored_suite(run: Run) -> BehaviourSuite | None:
    try:
        return behaviour_suite_from_data(run.config["suite_data"], fallback_name=run.config.get("suite", "custom"))
    except (BehaviourSuiteError, KeyError):
        return None


def _label_names(run: Run) -> list[str]:
    names = run.results.get("label_names")
    return list(names) if names else label_names_for(RunStore(run.dir.parent).get(run.config["target"]).dir)


def current_results(run: Run) -> dict[str, Any]:
    """A behaviour run's results by today's rule (`scoring.SCORING`): as stored when they were scored by it, else
    scored again from `cases.jsonl`, each test keeping its stored rate as `former_failure_rate` (RobustLab's
    former rule: correct originals only, no INV tolerance, DIR watching the label). A test whose records or
    suite entry are gone keeps `failure_rate` None and says why in `missing`."""
    results = dict(run.results)
    if results.get("scoring") == SCORING or results.get("status") != "done":
        return results
    suite = _stored_suite(run)
    tests_of = {t.name: t for t in suite.tests} if suite else {}
    rows = read_jsonl(run.dir / "cases.jsonl") if (run.dir / "cases.jsonl").is_file() else []
    names = _label_names(run) if rows else []
    by_test: dict[str, list[dict]] = {}
    for row in rows:
        by_test.setdefault(row["test"], []).append(row)
    tests = []
    for old in results.get("tests", []):
        test, test_rows = tests_of.get(old["name"]), by_test.get(old["name"])
        if test is None or not test_rows:
            why = "its case records are gone" if not rows else (
                "the stored suite no longer reads" if suite is None else "it has no case records")
            tests.append({**old, "failure_rate": None, "n_counted": None, "n_failed": None,
                          "former_failure_rate": old.get("failure_rate"),
                          "missing": f"stored before CheckList's rule was used, and {why}: run the suite again"})
            continue
        summary = summarise(test, [judged_row(test, r, names) for r in test_rows], names)
        tests.append({**summary, "former_failure_rate": old.get("failure_rate"), "rescored": True})
    return {**results, "tests": tests, "scoring": SCORING, "stored_scoring": results.get("scoring", 1),
            "rescored": "scored again from the stored case records (probabilities rounded to 4 decimals)"}


def stored_suites(store: RunStore, targets: list[str]) -> list[str]:
    """The names of the suites with finished results on any of these runs, the built-in sentiment suite first."""
    names = {store.get(row["id"]).config.get("suite") for target in targets
             for row in store.list(kind="behaviour", parent=target, status="done")}
    return sorted(names - {None}, key=lambda name: (name != "sentiment", name))


def check_sentence_files(suite: BehaviourSuite, roots: Sequence[Path]) -> None:
    """Refuse a suite whose tests read `csv:PATH` sentences outside `roots` (a page's folders), naming each test,
    before any file is opened: `BehaviourSuiteError`."""
    problems = []
    for test in suite.tests:
        if isinstance(test.sentences, str) and test.sentences.startswith("csv:"):
            try:
                inside(test.sentences[4:], roots)
            except OutsideRootsError as err:
                problems.append(f"{_where(test)}: sentences: {err}")
    if problems:
        raise BehaviourSuiteError(problems)


def run_cases(suite: BehaviourSuite, seed: int, target: Run,
              roots: Sequence[Path] | None = None) -> dict[str, list[Case]]:
    """`model_cases` for a stored run's model: its classes and whether it reads sentence pairs."""
    return model_cases(suite, seed, target.config, label_names_for(target.dir), segment_names_for(target.dir), roots)


def model_cases(suite: BehaviourSuite, seed: int, target_config: dict[str, Any], label_names: list[str],
                segment_names: tuple[str, str] | None = None,
                roots: Sequence[Path] | None = None) -> dict[str, list[Case]]:
    """Every test's cases for one model, after checking the suite's labels against the model's classes. A test's
    `csv:PATH` sentences must lie inside `roots` when a page runs the suite (`engine.store.owned_paths.page_roots`).
    Raises `BehaviourSuiteError` naming each test whose label the model lacks or that makes no cases, or saying that
    a sentence-pair model (`segment_names`) is not what a suite's one-sentence cases can test."""
    if segment_names is not None:
        raise BehaviourSuiteError([f"this model reads sentence pairs ({' / '.join(segment_names)}); behavioural suites "
                              f"test single-sentence classifiers: each case is one sentence"])
    problems = []
    for test in suite.tests:
        unknown = sorted(test.labels() - set(label_names))
        if unknown:
            problems.append(f"{_where(test)}: label(s) {', '.join(map(quoted, unknown))} not among the model's "
                            f"classes ({', '.join(label_names)})")
        elif test.neutral_passes and len(label_names) > 2 and NEUTRAL not in label_names:
            problems.append(f"{_where(test)}: \"neutral_passes\" needs a two-class model (CheckList's neutral band) "
                            f"or a class named {NEUTRAL} (the model has {', '.join(label_names)})")
    if problems:
        raise BehaviourSuiteError(problems)
    pools: dict[str, list[tuple[str, str]]] = {}

    def sentences_of(name: str) -> list[tuple[str, str]]:
        if name not in pools:
            data = eval_set(target_config, name, label_names, roots)
            pools[name] = [(text, label_names[label]) for text, label in zip(data.texts, data.labels)]
        return pools[name]

    cases = {}
    for test in suite.tests:
        try:
            cases[test.name] = generate_cases(test, seed, sentences_of)
        except DataError as err:
            problems.append(f"{_where(test)}: sentences {quoted(test.sentences)}: {err}")
        except GenerationError as err:
            problems.append(f"{_where(test)}: {err}")
    if problems:
        raise BehaviourSuiteError(problems)
    return cases


def _where(test) -> str:
    return f"line {test.line}, test {quoted(test.name)}" if test.line else f"test {quoted(test.name)}"


def evaluate_suite(loaded, suite: BehaviourSuite, seed: int, target_config: dict[str, Any],
                   should_stop: Callable[[], bool] = lambda: False,
                   progress: Callable[[int, int], None] | None = None) -> tuple[list[dict], list[dict]]:
    """Each test's summary and every case's record for one loaded model: the cases are made, each distinct text
    is predicted once (in chunks, `should_stop` checked between them: raises `Cancelled`), then each test scored."""
    cases = model_cases(suite, seed, target_config, loaded.label_names, loaded.segment_names)
    texts = list(dict.fromkeys(t for group in cases.values() for c in group for t in (c.original, c.text) if t))
    probs_of: dict[str, Any] = {}
    for start in range(0, len(texts), CHUNK):
        if should_stop():
            raise Cancelled()
        chunk = texts[start:start + CHUNK]
        probs_of.update(zip(chunk, loaded.probs(chunk, should_stop)))
        if progress:
            progress(len(probs_of), len(texts))
    summaries, rows = [], []
    for test in suite.tests:
        summary, test_rows = score_test(test, cases[test.name], probs_of, loaded.label_names)
        summaries.append(summary)
        rows.extend(test_rows)
    return summaries, rows


def run_job(run: Run, should_stop: Callable[[], bool], progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """The `behaviour` job kind: the suite's results on the target run, written to results.json and cases.jsonl."""
    config = run.config
    store = RunStore(run.dir.parent)
    target = store.get(config["target"])
    suite = behaviour_suite_from_data(config["suite_data"], fallback_name=config.get("suite", "custom"))
    seed = int(config.get("seed", 0))
    started = time.time()
    loaded = LoadedModel.from_run(target.dir, pick_device())
    run.log(f"suite {suite.name}: {len(suite.tests)} tests on {target.id}, seed {seed}")

    def advance(done: int, total: int) -> None:
        run.set_status(step=done, total_steps=total)
        if progress:
            progress(done, total, 0.0)

    try:
        summaries, rows = evaluate_suite(loaded, suite, seed, target.config, should_stop, advance)
    except Cancelled:
        run.log("cancelled")
        return {"status": "cancelled", "target": target.id, "suite": suite.name, "tests": []}
    with open(run.dir / "cases.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    seconds = time.time() - started
    run.log(f"done: {len(rows)} cases in {seconds:.1f} s")
    return {"status": "done", "target": target.id, "suite": suite.name, "suite_digest": suite.digest, "seed": seed,
            "scoring": SCORING,
            "label_names": loaded.label_names, "tests": summaries, "n_cases": len(rows), "seconds": round(seconds, 2),
            "cases_per_second": round(len(rows) / seconds, 1) if seconds else None}


def read_cases(run: Run, test: str | None = None, failed_only: bool = False) -> list[dict[str, Any]]:
    """The case records of a behaviour run (one test's, the failing ones only when asked); records stored before
    today's rule are judged again by it (`current_results`)."""
    rows = [row for row in read_jsonl(run.dir / "cases.jsonl") if test is None or row["test"] == test]
    if run.results.get("scoring") != SCORING and rows:
        suite = _stored_suite(run)
        tests_of = {t.name: t for t in suite.tests} if suite else {}
        names = _label_names(run)
        rows = [judged_row(tests_of[r["test"]], r, names) if r["test"] in tests_of else r for r in rows]
    return [row for row in rows if row["failed"] or not failed_only]


def export_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failing cases as a dataset: the text, the label it should get, the model's label, the test (and the original
    text of an INV/DIR case); `train --extra-data` reads the text and label columns."""
    return [{"text": r["text"], "label": r["label"], "model_label": r["pred"], "test": r["test"],
             "original": r.get("original") or ""} for r in rows]
