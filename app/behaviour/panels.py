"""The Behaviour page's panels: which runs (or whole methods of a suite) and which test suite, the Run button
with each job's progress, the results table and chart, the failing-case browser with its export and Playground
link, and training a new run on the failing cases. Every number comes from engine.behaviour."""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from app.behaviour.figures import capability_figure
from app.components import job_panel, run_picker
from app.dataset_context import context_dataset, of_dataset
from app.formatting import short_dataset
from app.live import poll
from app.plain_text import markdown_text
from app.state import derived_marks_of, get_store
from engine.behaviour.compare import compare_runs, not_learned
from engine.behaviour.editor import SOURCES, editor_suite
from engine.behaviour.perturb import PERTURBATIONS
from engine.behaviour.runner import (
    behaviour_config,
    check_sentence_files,
    current_results,
    export_rows,
    read_cases,
    run_cases,
)
from engine.behaviour.spec import (
    BUILT_IN,
    DEFAULT_TOLERANCE,
    KINDS,
    BehaviourSuite,
    BehaviourSuiteError,
    load_behaviour_suite,
    parse_behaviour_suite,
)
from engine.execution import jobs
from engine.execution.kinds import find_done
from engine.limits import UPLOAD_FILE_BYTES, megabytes
from engine.store.owned_paths import page_roots
from engine.store.runs import ACTIVE, RunError
from engine.suite.job import list_suites, suite_items

RUNS, METHODS = "Runs I choose", "Whole methods of a suite"
BUILT, WRITE, UPLOAD = "Built-in", "Write a test", "Upload a suite file"
EXAMPLE_LINES = ("positive: The {thing} was {pos}.\nnegative: The {thing} was {neg}.")
EXAMPLE_WORDS = "thing: movie, plot, cast, ending\npos: good, great, lovely\nneg: bad, dull, awful"


@dataclass
class Chosen:
    """The runs to test and the column each goes in: its own (runs chosen one by one) or its method's."""
    run_ids: list[str]
    groups: dict[str, str]     # run id -> column label

    @property
    def by_method(self) -> bool:
        return len(set(self.groups.values())) < len(self.groups)


def _is_trained(row: dict) -> bool:
    return row.get("kind", "train") == "train" and row.get("status") == "done"


def _tag(row: dict) -> str:
    """A column's name: method, what makes the run derived (a corrupted recovery cell, extra data), seed, id tail."""
    return " · ".join([row.get("method") or "run", *derived_marks_of(row), f"seed {row.get('seed')}",
                       row["id"].rsplit("-", 1)[-1]])


def _forget_runs() -> None:
    """Another dataset chosen: the runs picked for the last one are not among its runs."""
    st.session_state.pop("bh-runs", None)


def choose_runs() -> Chosen:
    """Runs one by one (each its own column), or every finished seed of some methods of one suite (one column
    per method: mean ± std over its seeds)."""
    store = get_store()
    rows = [r for r in store.list() if _is_trained(r)]
    suites = [s for s in list_suites(store) if s["status"] in ("done", "cancelled", "running")]
    how = st.radio("Compare", [RUNS, METHODS] if suites else [RUNS], horizontal=True, key="bh-how")
    if how == RUNS:
        dataset = context_dataset(rows, st.session_state.get("bh-runs", []))
        datasets = list(dict.fromkeys(r["dataset"] for r in rows if r.get("dataset")))
        if len(datasets) > 1:   # runs of an uploaded CSV are tested like SST-2's; one dataset at a time
            dataset = st.selectbox("Dataset", datasets, index=datasets.index(dataset), format_func=short_dataset,
                                   key="bh-dataset", on_change=_forget_runs,
                                   help="The runs compared side by side are trained on one dataset.")
        picked = run_picker("Runs", key="bh-runs", multi=True, filter_fn=lambda r: _is_trained(r) and (
            r.get("dataset") == dataset), help="Finished training runs of one dataset; each gets a column.")
        by_id = {r["id"]: r for r in rows}
        return Chosen(picked, {run_id: _tag(by_id[run_id]) for run_id in picked if run_id in by_id})
    suite_id = st.selectbox("Suite", [s["id"] for s in suites], key="bh-suite-run")
    items = [i for i in suite_items(store.get(suite_id)) if i.get("train_status") == "done" and i.get("train_run")]
    methods = list(dict.fromkeys(i["method"] for i in items))
    chosen = st.multiselect("Methods", methods, default=methods[:2], key="bh-methods",
                            help="Every finished seed of each method; the table shows mean ± std over them.")
    picked = {i["train_run"]: i["method"] for i in items if i["method"] in chosen}
    of_data = {r["id"] for r in of_dataset(rows, context_dataset(rows, list(picked)))}
    return Chosen([r for r in picked if r in of_data], {r: m for r, m in picked.items() if r in of_data})


def show_problems(err: BehaviourSuiteError) -> None:
    for problem in err.problems:
        st.error(markdown_text(problem), icon=":material/error:")


def choose_suite() -> BehaviourSuite | None:
    """The built-in suite, a test written in the editor, or an uploaded suite file; None (after saying why)
    when the test or file cannot be used."""
    how = st.radio("Test suite", [BUILT, WRITE, UPLOAD], horizontal=True, key="bh-suite-how")
    try:
        if how == BUILT:
            name = st.selectbox("Built-in suite", list(BUILT_IN), key="bh-builtin")
            suite = load_behaviour_suite(name)
        elif how == UPLOAD:
            upload = st.file_uploader("Suite file (JSON, the built-in suite's format)", type=["json"],
                                      key="bh-file")
            if upload is None:
                st.caption("Upload a JSON file with `words` and `tests`, like the built-in suite (download it "
                           "below to start from it).")
                return None
            if upload.size > UPLOAD_FILE_BYTES:
                st.error(markdown_text(f"{upload.name} is {megabytes(upload.size)}; an upload may be at most "
                                       f"{megabytes(UPLOAD_FILE_BYTES)}"), icon=":material/error:")
                return None
            try:
                text = upload.getvalue().decode("utf-8-sig")
            except UnicodeDecodeError:
                st.error(markdown_text(f"{upload.name} is not UTF-8 text"), icon=":material/error:")
                return None
            suite = parse_behaviour_suite(text, fallback_name=upload.name.removesuffix(".json"))
        else:
            suite = _editor()
        check_sentence_files(suite, page_roots())   # a page reads only the upload and data folders
    except BehaviourSuiteError as err:
        show_problems(err)
        return None
    st.caption(f"{len(suite.tests)} test(s) over {len({t.capability for t in suite.tests})} capabilities.")
    st.download_button("Download this suite (JSON)", json.dumps(suite.source, indent=1, ensure_ascii=False),
                       file_name=f"{re.sub(r'[^A-Za-z0-9_-]', '_', suite.name)[:40] or 'suite'}.json",
                       mime="application/json", key="bh-suite-download",
                       icon=":material/download:")
    return suite


def _editor() -> BehaviourSuite:
    """One test from a form: a template per line with `{slots}` filled from word lists, or sentences."""
    top = st.columns(3)
    name = top[0].text_input("Test name", "my-test", key="bh-ed-name")
    kind = top[1].selectbox("Kind", KINDS, key="bh-ed-kind",
                            help="MFT: each case must get its label. INV: a perturbation must not change the "
                                 "prediction. DIR: it must move the label's probability one way.")
    capability = top[2].text_input("Capability", "Vocabulary", key="bh-ed-capability")
    description = st.text_input("What it tests", "", key="bh-ed-description")
    source = st.radio("Cases from", SOURCES, horizontal=True, key="bh-ed-source",
                      format_func={"templates": "templates and word lists", "sentences": "my sentences",
                                   "dataset": "an evaluation set"}.get)
    dataset, lines, words = "sst2-dev", "", ""
    if source == "dataset":
        dataset = st.text_input("Evaluation set", "sst2-dev", key="bh-ed-dataset",
                                help="sst2-dev, advglue-sst2, heldout (a CSV run's own dev split) or csv:PATH")
    else:
        lines = st.text_area("Templates, one per line: label: text (a pair for INV/DIR: label: text => changed "
                             "text)" if source == "templates" else "Sentences, one per line: label: text",
                             EXAMPLE_LINES, key="bh-ed-lines", height=120)
    if source == "templates":
        words = st.text_area("Word lists, one per line: name: word, word, word", EXAMPLE_WORDS, key="bh-ed-words",
                             height=100)
    perturbation, direction, tolerance, neutral_passes = None, None, DEFAULT_TOLERANCE, False
    if kind == "MFT":
        neutral_passes = st.checkbox("A neutral answer passes too (\"not negative\")", key="bh-ed-neutral",
                                     help="CheckList's \"not X\" tests: for a two-class model a case passes while "
                                          "P(its label) is at least 1/3 (CheckList's neutral band).")
    if kind != "MFT":
        cols = st.columns(3)
        choices = ["pairs (=> in the templates)", *PERTURBATIONS] if source == "templates" else [
            p for p, spec in PERTURBATIONS.items() if not spec.templates_only]
        chosen = cols[0].selectbox("Perturbation", choices, key="bh-ed-perturbation")
        if chosen in PERTURBATIONS:
            perturbation = {"type": chosen}
            for param, kind_of in PERTURBATIONS[chosen].params.items():
                value = cols[1].text_input(f"{param}", "1" if kind_of is int else "", key=f"bh-ed-{param}")
                perturbation[param] = int(value) if kind_of is int and value.strip().isdigit() else value
        if kind == "DIR":
            direction = cols[2].radio("P(original's predicted class) must", ["up", "down"], key="bh-ed-direction",
                                      format_func={"up": "not go down", "down": "not go up"}.get)
            tolerance = cols[2].number_input("by more than", 0.0, 0.99, DEFAULT_TOLERANCE, 0.05, key="bh-ed-tol")
        else:
            tolerance = cols[2].number_input("Tolerance", 0.0, 0.99, DEFAULT_TOLERANCE, 0.05, key="bh-ed-tol",
                                             help="A changed prediction passes while the probability of the "
                                                  "original's predicted class moved by no more than this "
                                                  "(CheckList's INV threshold).")
    n = st.number_input("Cases to make", min_value=1, max_value=1_000_000, value=100, key="bh-ed-n")
    return editor_suite(name, kind, capability, description, source, lines, words, dataset, perturbation,
                        direction, float(tolerance), int(n), neutral_passes)


def run_suite_panel(chosen: Chosen, suite: BehaviourSuite) -> dict[str, dict]:
    """Stored results of the suite on each chosen run, the Run button for those without, and each job's progress
    while it runs. Returns run id -> results for the runs done."""
    store = get_store()
    configs = {run_id: behaviour_config(run_id, suite) for run_id in chosen.run_ids}
    done = {run_id: cached for run_id, config in configs.items() if (cached := find_done(store, "behaviour", config))}
    started = st.session_state.setdefault("bh-jobs", {})
    active = {}
    for run_id in configs:
        job_id = started.get((run_id, suite.digest))
        if run_id not in done and job_id:
            try:
                job = store.get(job_id)
            except RunError:
                continue
            if job.status.get("status") in ACTIVE:
                active[run_id] = job_id
            elif job.status.get("status") == "failed":
                st.error(markdown_text(f"The suite failed on {run_id}: {job.status.get('error', 'no message')}"))
    todo = [r for r in configs if r not in done and r not in active]
    if todo and st.button(f"Run the suite on {len(todo)} run(s)", type="primary", icon=":material/play_arrow:",
                          key="bh-run"):
        try:
            for run_id in todo:
                target = store.get(run_id)
                run_cases(suite, 0, target, page_roots())
        except BehaviourSuiteError as err:
            show_problems(err)
        else:
            try:
                for run_id in todo:
                    started[(run_id, suite.digest)] = jobs.submit(store, configs[run_id], kind="behaviour",
                                                                  parent=run_id).id
            except RunError as err:   # the queue is full: the runs queued before it stay queued
                st.error(markdown_text(str(err)), icon=":material/block:")
            else:
                st.rerun()
    if active:
        poll(lambda: {r: store.get(j) for r, j in active.items()},
             lambda runs: any(run.status.get("status") in ACTIVE for run in runs.values()), _progress, every=1.0)
    elif todo:
        st.caption(f"{len(done)} of {len(configs)} run(s) have stored results of this suite.")
    return {run_id: {**current_results(run), "run_id": run.id} for run_id, run in done.items()}


def _progress(runs: dict, live: bool) -> None:
    for target, run in runs.items():
        status = run.status
        step, total = status.get("step") or 0, status.get("total_steps") or 0
        st.progress(min(step / total, 1.0) if total else 0.0,
                    text=f"{target}: {status.get('status')} — {step} of {total or '?'} texts predicted")
        if live and st.button("Cancel", key=f"bh-cancel-{run.id}", icon=":material/stop_circle:"):
            st.info(f"Cancel requested ({jobs.cancel(get_store(), run.id)}).")


def results_panel(chosen: Chosen, results: dict[str, dict]) -> None:
    """The tests with each column's failure rate, and the chart per capability."""
    groups = {r: chosen.groups[r] for r in results}
    excluded = not_learned(get_store(), list(results))
    if excluded:
        st.warning(markdown_text("Left out of every number, because it did not learn (a model that answers one "
                                 "class changes no prediction, so it would pass every INV test): "
                                 + "; ".join(f"{run_id} ({why})" for run_id, why in excluded.items()) + "."),
                   icon=":material/block:")
    comparison = compare_runs(results, groups, excluded)
    columns = list(dict.fromkeys(groups.values()))
    _old_results_notes(results, comparison)
    # the rates first, the long description last: at a projector's width the numbers stay in view
    table = [{"capability": t["capability"], "test": t["name"], "kind": t["kind"],
              **{k: v for c in columns for k, v in (
                  (c, _cell(t["by_method"].get(c))),
                  (f"{c} · vs constant", _flag_text(t["method_no_better_than_constant"].get(c),
                                                    t["by_method"].get(c))),
                  (f"{c} · correct originals only", "–" if t["kind"] == "MFT" else
                   _cell(t["correct_originals_by_method"].get(c))))},
              "constant answer": _constant_text(t["constant"]), "cases": t["n_cases"], "counts": t["counts"],
              "description": t["description"]}
             for t in comparison["tests"]]
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    st.caption("Failure rate in points, by CheckList's rules" + (
        " (mean ± sample std over each method's seeds)" if chosen.by_method else "") + ". MFT: share of cases "
        "whose prediction differs from the expected label (a test that lets neutral pass: P(expected) below 1/3). "
        "INV: share whose prediction changes with its probability moving by more than the tolerance (0.1). DIR: "
        "share whose watched probability moves the wrong way by more than the tolerance, over the cases that can "
        "fail (`counts`). *constant answer*: the rate a model answering one class for every text would get. "
        "*vs constant*: flagged when that rate lies within the spread of the model's (one run: the Wilson 95 % "
        "interval of its cases; several: the wider of the pooled cases' interval and mean ± std over seeds: "
        "RobustLab's choice; a constant answer never changes, so it scores 0 on INV and a model near 0 there is "
        "flagged too: an INV rate means little without the MFT rates). *correct originals only*: the same rule "
        "counted over the cases whose original is predicted correctly (RobustLab's former rate, not CheckList's).")
    st.plotly_chart(capability_figure(comparison, columns), key="bh-chart")


def _old_results_notes(results: dict[str, dict], comparison: dict) -> None:
    """Say which runs' results were stored before CheckList's rule (scored again from their cases) and which
    tests could not be scored again."""
    rescored = [run_id for run_id, r in results.items() if r.get("rescored")]
    if rescored:
        st.info(markdown_text("Stored before RobustLab used CheckList's rule, and scored again from their case "
                              "records (probabilities rounded to 4 decimals): " + ", ".join(rescored) + "."),
                icon=":material/history:")
    missing = [f"{t['name']} on {run_id} ({why})" for t in comparison["tests"] for run_id, why in t["missing"].items()]
    if missing:
        st.warning(markdown_text("No rate by CheckList's rule (shown as –): " + "; ".join(missing) + "."),
                   icon=":material/warning:")


def _constant_text(constant: dict[str, float | None]) -> str:
    """Each class's constant-answer failure rate in points, e.g. `negative 50.0 · positive 50.0`."""
    if not constant:
        return "not known"
    return " · ".join(f"{name} {'–' if rate is None else f'{rate * 100:.1f}'}" for name, rate in constant.items())


def _flag_text(flagged: list[str] | None, cell: dict | None) -> str:
    if not cell or cell.get("mean") is None:
        return "–"
    if flagged is None:
        return "not known"
    return f"no better than a constant answer ({', '.join(flagged)})" if flagged else ""


def _cell(cell: dict | None) -> str:
    """A failure rate in points, with ± the spread over seeds when there are several."""
    if not cell or cell.get("mean") is None:
        return "–"
    return f"{cell['mean'] * 100:.1f}" + (f" ± {cell['std'] * 100:.1f}" if cell.get("std") is not None else "")


def failures_panel(chosen: Chosen, results: dict[str, dict]) -> None:
    """Failing cases of one test on one run: the table, one case in full, the Playground link and the export."""
    store = get_store()
    tests = [t["name"] for t in next(iter(results.values()))["tests"]]
    left, right = st.columns(2)
    test = left.selectbox("Test", tests, key="bh-fail-test")
    run_id = right.selectbox("Run", list(results), format_func=chosen.groups.get, key="bh-fail-run")
    run = store.get(results[run_id]["run_id"])
    failing = read_cases(run, test, failed_only=True)
    if not failing:
        st.success("No failing case for this test on this run.", icon=":material/check_circle:")
    else:
        names = results[run_id].get("label_names") or []
        frame = pd.DataFrame([{"#": i, "original": r.get("original") or "", "text": r["text"], "expected": r["label"],
                               "original prediction": r.get("original_pred") or "", "prediction": r["pred"],
                               **{f"P({n})": r["probs"][j] for j, n in enumerate(names)}}
                              for i, r in enumerate(failing)])
        st.dataframe(frame, hide_index=True, width="stretch")
        index = st.number_input("Case", 0, len(failing) - 1, 0, key="bh-fail-case")
        _case_detail(failing[int(index)], names, run_id)
    every = read_cases(run, failed_only=True)
    st.download_button(f"Export the {len(every)} failing cases of this run (CSV)", _csv(export_rows(every)),
                       file_name=f"failures-{run_id}.csv", mime="text/csv", key="bh-export",
                       icon=":material/download:", disabled=not every)


def _case_detail(case: dict, names: list[str], run_id: str) -> None:
    with st.container(border=True):
        if case.get("original"):
            st.caption("Original")
            st.text(case["original"])
            st.caption("Original prediction: " + _probs_text(case["original_probs"], names))
        st.caption("Case" if not case.get("original") else "Perturbed")
        st.text(case["text"])
        st.caption(f"Expected {case['label']}; prediction: " + _probs_text(case["probs"], names))
        if st.button("Open in the Playground (word saliency)", key="bh-open", icon=":material/science:"):
            st.session_state["pg-run-a"] = run_id
            st.session_state["pg-text"] = case["text"]
            st.session_state.pop("pg-gold", None)
            try:
                st.switch_page("pages/playground.py")
            except StreamlitAPIException:   # the page alone (as in a test): no navigation to switch in
                st.info("The case is set in the Playground: open it from the navigation.")


def _probs_text(probs: list[float], names: list[str]) -> str:
    return ", ".join(f"{n} {p:.3f}" for n, p in zip(names, probs))


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["text", "label"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def train_panel(chosen: Chosen, results: dict[str, dict]) -> None:
    """Train a new run like a chosen one on its data plus its failing cases (with their correct labels)."""
    from engine.data.csv_reading import store_upload
    from engine.data.text_dataset import DataError
    from engine.training.config import ConfigError, TrainConfig
    from engine.training.train import environment, preflight

    store = get_store()
    run_id = st.selectbox("Run", list(results), format_func=chosen.groups.get, key="bh-train-run")
    failing = read_cases(store.get(results[run_id]["run_id"]), failed_only=True)
    st.caption(f"A new run with the same settings as this one, trained on its data plus its {len(failing)} failing "
               "cases with their correct labels (`train --extra-data`). When it is done, choose it above beside "
               "this one and run the suite again to see the failure rates move. The cases come from the suite, so "
               "the new run's failure rates on it are no longer a held-out measurement.")
    if st.button("Train on the failures", key="bh-train", icon=":material/model_training:", disabled=not failing):
        try:
            path = store_upload(_csv(export_rows(failing)).encode("utf-8"), f"failures-{run_id}.csv")
            config = TrainConfig.from_dict({**store.get(run_id).config, "extra_data": str(path)})
            preflight(config)
        except (ConfigError, DataError) as err:
            st.error(markdown_text(f"Cannot train on the failures: {err}"), icon=":material/error:")
        else:
            try:
                st.session_state["bh-trained"] = jobs.submit(store, {**config.to_dict(),
                                                                     "environment": environment()}).id
            except RunError as err:   # the queue is full
                st.error(markdown_text(f"Cannot train on the failures: {err}"), icon=":material/error:")
    if st.session_state.get("bh-trained"):
        job_panel(st.session_state["bh-trained"])
