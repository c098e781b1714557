"""The benchmark report: runs grouped into method rows (mean and spread over seeds), and the seed papers'
claims judged against those rows (engine.reporting.claims; the Healing claim from engine.recovery.claims).

Everything here reads what runs stored (eval.json, results.json, finished attack runs, recovery grids);
nothing is computed on the fly, except by `fill_missing`, which computes what a report lacks when asked. A
metric a run lacks is None and counted as missing, never a zero. A run that did not learn (dev accuracy
within 10 points of its dev set's chance rate) is left out of every mean and claim and listed with the
reason. A row never pools runs trained with different settings (the dataset among them): a method whose runs
differ is split into one row per setting, labelled by what differs; the claims are judged on the rows of one
dataset (`claims_dataset`).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.attacks.attacker import Budget
from engine.attacks.batch import CONFIG_KEYS, batch_config, read_results
from engine.data.advglue import TASK_SETS, advglue_chance, advglue_label, task_accuracy
from engine.data.registry import load_dataset
from engine.data.splits import task_of
from engine.execution import jobs
from engine.execution.kinds import find_done, job_kind
from engine.limits import MAX_SEEDS
from engine.methods import make_method
from engine.methods.rose import thresholds_text
from engine.recovery.claims import judge_healing
from engine.reporting.advglue_score import advglue_scores
from engine.reporting.claims import Look, judge_methods
from engine.stats import DESIGN, LEVEL, LOOK1_ALPHA, mean_std
from engine.store.runs import ACTIVE, RunError, RunStore, read_json
from engine.suite.job import SuiteSpec, default_methods, list_suites, suite_items
from engine.training.evaluate import chance_accuracy, dev_set_name, evaluate_run, learning_status, own_sets

# advglue_accuracy: each run's own task's AdvGLUE accuracy (official scoring, MNLI the mean of its two parts); a page
# names the task with it (`metric_titles`)
METRICS = {"dev_accuracy": "clean dev accuracy", "advglue_accuracy": "AdvGLUE accuracy",
           "attack_success_rate": "attack success rate", "accuracy_under_attack": "accuracy under attack"}
MIN_SEEDS = 3


@dataclass(frozen=True)
class AttackSpec:
    """Which stored attack a report reads for each run (same recipe, examples and budget)."""
    recipe: str = "deepwordbug"
    dataset: str = "sst2-dev"
    n: int = 100

    def config_for(self, target: str) -> dict[str, Any]:
        return batch_config(target, self.recipe, self.dataset, self.n, Budget())


# ---------------------------------------------------------------- one row per run

def training_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What decides a trained model besides its method and seed (the training settings), and the method's
    settings with their defaults filled in."""
    values = job_kind("train").reuse_key(config)
    settings = values.pop("settings")
    for key in ("method", "seed"):
        values.pop(key, None)
    return values, settings


def run_row(store: RunStore, run_id: str, attack: AttackSpec | None) -> dict[str, Any]:
    """A run's stored numbers and whether it learned; a metric it lacks is None and named in `missing`.
    `included`: the run counts in means and claims (finished, and not known to have failed to learn)."""
    row: dict[str, Any] = {"run_id": run_id, "method": None, "seed": None, "status": "deleted",
                           **{m: None for m in METRICS}, "attack_run": None, "missing": [], "included": False,
                           "learned": None, "learning_reason": None, "chance_accuracy": None,
                           "training": None, "settings": None, "per_sentence": [], "task": None,
                           "advglue_sentences": False, "missing_sets": []}
    try:
        run = store.get(run_id)
    except RunError:
        return row
    config, status = run.config, run.status.get("status", "unknown")
    row.update(method=config.get("method"), seed=config.get("seed"), status=status, model=config.get("model"),
               train_size=config.get("train_size"), epochs=config.get("epochs"), task=task_of(config))
    if config.get("kind", "train") != "train":
        row["status"] = f"not a trained model ({config.get('kind')})"
        return row
    row["training"], row["settings"] = training_settings(config)
    if status != "done":
        row["error"] = run.status.get("error")
        return row
    learning = learning_status(run)
    row.update(learned=learning["learned"], learning_reason=learning["reason"],
               chance_accuracy=learning["chance_accuracy"], included=learning["learned"] is not False)
    evals = read_json(run.dir / "eval.json", {})
    dev_name = dev_set_name(config)
    row["dev_accuracy"] = evals.get(dev_name, {}).get("accuracy")
    sets = TASK_SETS.get(row["task"], ())
    row["advglue_accuracy"] = task_accuracy(row["task"], evals)
    row["missing_sets"] = [name for name in own_sets(config) if name not in evals]
    row["advglue_sentences"] = bool(sets) and all("correct" in evals.get(name, {}) for name in sets)
    if row["advglue_sentences"] and len(sets) == 1:
        # MNLI's score is the mean of two parts' accuracies, not a mean over one sentence set: no per-sentence form
        row["per_sentence"].append("advglue_accuracy")
    if attack is not None:
        found = find_done(store, "attack", attack.config_for(run.id))
        if found is not None:
            results = found.results
            attacked = (results.get("succeeded") or 0) + (results.get("failed") or 0)
            row.update(attack_run=found.id, accuracy_under_attack=results.get("accuracy_under_attack"),
                       # no sentence the model got right: a success rate is undefined, not 0
                       attack_success_rate=results.get("success_rate") if attacked else None)
            row["per_sentence"].append("accuracy_under_attack")
    wanted = [m for m in METRICS if attack is not None or m in ("dev_accuracy", "advglue_accuracy")]
    if not sets:   # a task AdvGLUE has no set for (an uploaded CSV of its own)
        wanted.remove("advglue_accuracy")
    row["missing"] = [m for m in wanted if row[m] is None]
    return row


def advglue_task(rows: list[dict[str, Any]]) -> str | None:
    """The one task whose AdvGLUE accuracy the counted runs report, or None when they report none or several (a
    page then says plain "AdvGLUE accuracy", each run's on its own task)."""
    tasks = {r["task"] for r in rows if r["included"] and r["advglue_accuracy"] is not None}
    return tasks.pop() if len(tasks) == 1 else None


def metric_titles(report: dict[str, Any]) -> dict[str, str]:
    """METRICS as a page titles them for this report: the AdvGLUE metric named by the runs' task (AdvGLUE-RTE
    accuracy)."""
    return {**METRICS, "advglue_accuracy": f"{advglue_label(report.get('advglue_task'))} accuracy"}


def run_rows(store: RunStore, run_ids: list[str], attack: AttackSpec | None) -> list[dict[str, Any]]:
    return [run_row(store, run_id, attack) for run_id in run_ids]


def sentence_results(store: RunStore, rows: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Per-sentence results of the counted runs, in the data set's order: AdvGLUE correctness (eval.json), and
    1 where the attack failed (the model is still right after it) over every attacked sentence. (The success
    rate counts only the sentences a model had right, a different set per run, so it has no per-sentence
    form here.)"""
    out: dict[str, dict[str, np.ndarray]] = {}
    for row in rows:
        if not row["included"] or not row["per_sentence"]:
            continue
        found: dict[str, np.ndarray] = {}
        if "advglue_accuracy" in row["per_sentence"]:   # a task with one AdvGLUE set (`run_row`)
            evals = read_json(store.get(row["run_id"]).dir / "eval.json", {})
            (name,) = TASK_SETS[row["task"]]
            found["advglue_accuracy"] = np.asarray(evals[name]["correct"], dtype=float)
        if row["attack_run"]:
            try:
                records = sorted(read_results(store.get(row["attack_run"])), key=lambda r: r.get("index", 0))
            except RunError:   # the attack was deleted since the rows were read
                records = []
            if records:
                found["accuracy_under_attack"] = np.asarray([r["status"] == "failed" for r in records], float)
        out[row["run_id"]] = found
    return out


# ---------------------------------------------------------------- method rows, split by settings

def method_order(methods: list[str]) -> list[str]:
    order = default_methods()
    return sorted(set(methods), key=lambda m: (order.index(m) if m in order else len(order), m))


def _fmt_setting(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _varying(dicts: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for d in dicts for k in d})
    return [k for k in keys if len({json.dumps(d.get(k), sort_keys=True) for d in dicts}) > 1]


def group_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Method rows: the runs of one method trained with the same settings. A method whose runs differ gets
    one row per setting, labelled by what differs (e.g. "vanilla (lr=0.0002)"). Each row: label, method,
    training, settings, split_by, runs (every run row of it, counted or not)."""
    buckets: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["method"] and row["training"] is not None:
            key = (row["method"], json.dumps(row["training"], sort_keys=True),
                   json.dumps(row["settings"], sort_keys=True))
            buckets.setdefault(key, []).append(row)
    groups = []
    for method in method_order([k[0] for k in buckets]):
        keys = [k for k in buckets if k[0] == method]
        merged = [{**json.loads(k[1]), **json.loads(k[2])} for k in keys]
        varying = _varying(merged)
        mine = []
        for key, values in zip(keys, merged):
            split_by = ", ".join(f"{k}={_fmt_setting(values.get(k))}" for k in varying)
            mine.append({"label": f"{method} ({split_by})" if split_by else method, "method": method,
                         "training": json.loads(key[1]), "settings": json.loads(key[2]), "split_by": split_by,
                         "runs": buckets[key]})
        groups += sorted(mine, key=lambda g: g["split_by"])
    for group in groups:
        for row in group["runs"]:
            row["row"] = group["label"]
    return groups


def aggregate(groups: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method row: counted runs, mean and spread of each metric, and what is failed, missing or
    left out because it did not learn; a ROSE row also its thresholds and whose they are (`thresholds`)."""
    out = []
    for group in groups:
        runs = group["runs"]
        counted = [r for r in runs if r["included"]]
        row: dict[str, Any] = {"method": group["label"], "method_name": group["method"],
                               "split_by": group["split_by"], "training": group["training"],
                               "settings": group["settings"], "n_runs": len(counted),
                               "seeds": sorted(r["seed"] for r in counted if r["seed"] is not None),
                               "seeds_tried": sorted({r["seed"] for r in runs if r["seed"] is not None}),
                               "n_not_learned": sum(r["learned"] is False for r in runs),
                               "n_failed": sum(r["status"] == "failed" for r in runs),
                               "n_unfinished": sum(r["status"] not in ("done", "failed") for r in runs),
                               "thresholds": thresholds_text(group["method"], group["settings"] or {},
                                                             (group["training"] or {}).get("lr"))}
        for metric in METRICS:
            values = [float(r[metric]) for r in counted if r[metric] is not None]
            row[metric], row[f"{metric}_std"] = mean_std(values)
            row[f"{metric}_n"] = len(values)
            row[f"{metric}_missing"] = sum(metric in r["missing"] for r in counted)
        out.append(row)
    deleted = [r for r in rows if r["status"] == "deleted"]
    if deleted:
        out.append({"method": "(deleted runs)", "method_name": None, "split_by": "", "training": None,
                    "thresholds": "",
                    "settings": None, "n_runs": 0, "seeds": [], "seeds_tried": [], "n_not_learned": 0,
                    "n_failed": 0, "n_unfinished": len(deleted),
                    **{k: None for m in METRICS for k in (m, f"{m}_std")},
                    **{f"{m}_{k}": 0 for m in METRICS for k in ("n", "missing")}})
    return out


# ---------------------------------------------------------------- what the report says in words

def excluded_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished runs left out of every mean and claim because they did not learn, with the reason."""
    return [{"run_id": r["run_id"], "method": r["method"], "seed": r["seed"], "row": r.get("row"),
             "reason": f"did not learn: {r['learning_reason']}"} for r in rows if r["learned"] is False]


def claims_dataset(groups: list[dict[str, Any]]) -> str | None:
    """The one dataset the claims are judged on, so that no claim mixes rows of two: SST-2 (the papers' task)
    when a row has it, else the dataset with the most counted runs."""
    counted = Counter()
    for group in groups:
        counted[group["training"].get("dataset")] += sum(r["included"] for r in group["runs"])
    if "sst2" in counted:
        return "sst2"
    return counted.most_common(1)[0][0] if counted else None


def statements(groups: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """Plain-words warnings about the runs a report covers: runs of several datasets, rows split by settings,
    rows trained differently, runs left out because they did not learn, too few seeds to decide anything."""
    out = []
    datasets = sorted({g["training"].get("dataset") for g in groups})
    if len(datasets) > 1:
        judged = claims_dataset(groups)
        out.append(f"These runs come from {len(datasets)} datasets ({', '.join(datasets)}): no row pools two of them, "
                   f"and the claims are judged on the {judged} rows only; the rows of "
                   f"{', '.join(d for d in datasets if d != judged)} are not in the claims.")
    for method in dict.fromkeys(g["method"] for g in groups):
        mine = [g for g in groups if g["method"] == method]
        if len(mine) > 1:
            out.append(f"The {method} runs were trained with different settings, so they are not pooled: one row "
                       f"per setting ({'; '.join(g['label'] for g in mine)}).")
    trainings = {json.dumps(g["training"], sort_keys=True) for g in groups}
    if len(trainings) > 1:
        differ = _varying([g["training"] for g in groups])
        out.append("The rows were trained with different settings (" + ", ".join(differ) + "): a claim compares "
                   "only rows trained alike and refuses, naming the difference, where there are none.")
    dropped = excluded_runs(rows)
    if dropped:
        out.append(f"{len(dropped)} run(s) did not learn and are left out of every mean and claim: "
                   + "; ".join(f"{d['run_id']} ({d['method']} seed {d['seed']}, {d['reason']})" for d in dropped))
    unknown = [r["run_id"] for r in rows if r["status"] == "done" and r["learned"] is None]
    if unknown:
        out.append(f"{len(unknown)} run(s) could not be checked for learning (no dev accuracy or chance rate "
                   f"stored): {', '.join(unknown)}.")
    counts = {g["label"]: sum(r["included"] for r in g["runs"]) for g in groups}
    if counts and max(counts.values()) <= 1:
        out.append("One seed per method row: there is no spread to measure, so no claim gets a verdict. "
                   f"Run at least {MIN_SEEDS} seeds per method.")
    elif any(n < MIN_SEEDS for n in counts.values()):
        few = [f"{label} ({n})" for label, n in counts.items() if n < MIN_SEEDS]
        out.append(f"Rows with fewer than {MIN_SEEDS} counted seeds cannot decide a claim: {', '.join(few)}.")
    return out


def scale_note(groups: list[dict[str, Any]], attack: AttackSpec | None) -> str:
    """What these runs are, beside what the papers used; it claims nothing that was not measured."""
    from engine.models.loading import known_models

    counted = [g for g in groups if any(r["included"] for r in g["runs"])]
    if not counted:
        return "No run counts in this report yet, so it measures nothing."

    def values(key: str) -> str:
        found = sorted({json.dumps(g["training"].get(key)) for g in counted})
        return " / ".join(_fmt_setting(json.loads(v)) for v in found)

    models = sorted({g["training"].get("model") for g in counted})
    names = [known_models().get(m, m).split(" (")[0] for m in models]
    sizes = sorted({g["training"].get("train_size") for g in counted}, key=lambda v: (v is None, v))
    size_text = " / ".join("the whole training set" if s is None else str(s) for s in sizes)
    seeds = sorted({sum(r["included"] for r in g["runs"]) for g in counted})
    seed_text = " to ".join(map(str, (seeds[0], seeds[-1]) if len(seeds) > 1 else seeds))
    text = (f"What was measured: {' and '.join(names)} fine-tuned on {size_text} "
            f"{values('dataset').replace('sst2', 'SST-2')} examples for {values('epochs')} epoch(s) at learning "
            f"rate {values('lr')} (batch {values('batch_size')}), {seed_text} counted seed(s) per method row; "
            + ("dev accuracy on the SST-2 dev set (872 sentences), AdvGLUE-SST2 accuracy on its 148 sentences (one "
               "sentence is 0.7 points)" if values("dataset") == "sst2" else "dev accuracy on each data set's "
               "held-out split"))
    text += (f", and {attack.recipe} on the first {attack.n} {attack.dataset} sentences. " if attack else ". ")
    text += ("The papers fine-tuned BERT-base or larger on full GLUE training sets. These runs are small-scale "
             "replications: their verdicts are about these runs only, not about the methods at the papers' scale.")
    return text


def chance_lines(rows: list[dict[str, Any]], attack: AttackSpec | None) -> dict[str, float]:
    """Where a model that predicts one class for everything would sit on each accuracy chart: the dev set's
    majority-class rate, that of the AdvGLUE sentences of the runs' task (MNLI: the mean over its two parts; none
    when the runs' tasks differ), and that of the attacked sentences (an attack cannot flip a constant prediction)."""
    counted = [r for r in rows if r["included"]]
    out: dict[str, float] = {}
    dev = Counter(r["chance_accuracy"] for r in counted if r["chance_accuracy"] is not None)
    if dev:
        out["dev_accuracy"] = float(dev.most_common(1)[0][0])
    task = advglue_task(rows)
    if task is not None and (chance := advglue_chance(task)) is not None:
        out["advglue_accuracy"] = chance
    if attack is not None and any(r["accuracy_under_attack"] is not None for r in counted):
        out["accuracy_under_attack"] = chance_accuracy(load_dataset(attack.dataset).labels[:attack.n])
    return out


# ---------------------------------------------------------------- the report

def report_look(store: RunStore, run_ids: list[str]) -> dict[str, Any]:
    """Which look of the two-look design (engine.stats.DESIGN) a report over these runs is: look 2 when any of
    them was trained as a new seed of a look-2 suite (queued by `extra_seed_suites`), with the seeds each method
    counted at look 1; else look 1."""
    wanted, first, suites = set(run_ids), {}, []
    for row in list_suites(store):
        try:
            suite = store.get(row["id"])
        except RunError:
            continue
        spec = SuiteSpec.from_dict(suite.config)
        if spec.look != 2 or not spec.first_look:
            continue
        new = {i["train_run"] for i in suite_items(suite)
               if i.get("train_run") and i["seed"] not in spec.first_look.get(i["method"], [])}
        if new & wanted:
            suites.append(suite.id)
            for method, seeds in spec.first_look.items():
                first.setdefault(method, set()).update(seeds)
    return {"number": 2 if suites else 1, "of": 2, "suites": suites,
            "first_seeds": {m: sorted(s) for m, s in first.items()}}


def look_text(look: dict[str, Any]) -> str:
    """The look a report is, and what that means for its verdicts, in words."""
    if look["number"] == 1:
        return (f"Look 1 of 2 ({DESIGN}). The method claims' verdicts keep a 5 % error rate over both looks: this "
                f"look spends {LOOK1_ALPHA * 100:.2f} % ({(1 - LOOK1_ALPHA) * 100:.2f} % intervals), so adding the "
                "seeds an open part asks for and judging again (look 2) does not inflate the false-positive rate. "
                "The Healing claim is one analysis at 95 %.")
    return (f"Look 2 of 2 ({DESIGN}), after the extra seeds of suite(s) {', '.join(look['suites'])}; look 1 counted "
            + "; ".join(f"{m} seeds {', '.join(map(str, s))}" for m, s in look["first_seeds"].items())
            + ". An open part combines look 1's seeds with the new ones; a part look 1 settled keeps its verdict. "
            "The design allows no third look.")


def build_report(store: RunStore, run_ids: list[str], attack: AttackSpec | None,
                 grid_id: str | None = None) -> dict[str, Any]:
    """The whole report: per-run rows, method rows, claims, what was left out and why, and the chance lines.
    `grid_id`: the recovery grid for the Healing claim (None: the newest finished one). The method claims are
    judged at the report's look of the two-look design (`report_look`)."""
    run_ids = list(dict.fromkeys(run_ids))    # a run named twice counts once
    rows = run_rows(store, run_ids, attack)
    groups = group_runs(rows)
    healing = judge_healing(store, grid_id)
    judged = claims_dataset(groups)
    look = report_look(store, run_ids)
    claims = [*judge_methods([g for g in groups if g["training"].get("dataset") == judged],
                             sentence_results(store, rows), Look(look["number"], look["first_seeds"])), healing]
    return {"methods": aggregate(groups, rows), "claims": claims, "runs": rows, "excluded": excluded_runs(rows),
            "statements": statements(groups, rows), "scale_note": scale_note(groups, attack),
            "chance": chance_lines(rows, attack), "attack": asdict(attack) if attack else None,
            "grid": (healing.get("grid") or {}).get("id"), "level": LEVEL, "advglue": advglue_scores(rows),
            "advglue_task": advglue_task(rows),
            "look": {**look, "text": look_text(look)}}


def missing_work(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Which finished runs lack a stored evaluation (or its per-sentence results), and which lack the attack."""
    evals = [r["run_id"] for r in rows if r["missing_sets"]   # its dev set or its task's AdvGLUE sets
             or (r["advglue_accuracy"] is not None and not r["advglue_sentences"])]
    attacks = [r["run_id"] for r in rows if "attack_success_rate" in r["missing"] and not r["attack_run"]]
    return {"evaluations": evals, "attacks": attacks}


def fill_missing(store: RunStore, todo: dict[str, list[str]], attack: AttackSpec | None, background: bool,
                 say: Callable[[str], None] | None = None) -> None:
    """Compute what `missing_work` found missing: each evaluation in this process (seconds each), then each
    attack, queued as a background job (`background`: a page) or run here one after another (the CLI).
    `say` hears a line as each part starts."""
    say = say or (lambda line: None)
    for run_id in todo["evaluations"]:
        say(f"evaluating {run_id}")
        evaluate_run(store, run_id, own_sets(store.get(run_id).config), need_correct=True)
    for run_id in todo["attacks"]:
        say(f"attacking {run_id} with {attack.recipe}")
        if background:
            jobs.submit(store, attack.config_for(run_id), kind="attack", parent=run_id)
        else:
            run = store.create(attack.config_for(run_id), kind="attack", parent=run_id)
            jobs.execute(store, run, jobs.StopFlag().install())


def attacks_under_way(store: RunStore, attack: AttackSpec) -> set[str]:
    """Runs with this attack already queued or running, so a page does not queue it twice."""
    out = set()
    for status in ACTIVE:
        for row in store.list(kind="attack", status=status):
            config = store.get(row["id"]).config
            wanted = attack.config_for(config["target"])
            if all(config.get(k) == wanted.get(k) for k in CONFIG_KEYS):
                out.add(config["target"])
    return out


# ---------------------------------------------------------------- seeds that would settle the open parts

def extra_seed_suites(report: dict[str, Any]) -> list[tuple[Any, list[int]]]:
    """Suites that would bring each method row of an inconclusive claim part up to the seeds it needs
    (`seeds_needed`): the row's seeds plus new seed numbers (the smallest not tried yet), the same training
    settings and the report's attack. The finished runs are reused by the suite, so only the new seeds train,
    and the suite's report holds them all. Rows with the same seeds and default method settings share a suite.
    Each suite is look 2 of the two-look design: it records that and the seeds each of its methods counted at
    look 1. A report at look 2 gets none (the design has no third look), nor does a part needing more seeds than
    one suite may run (`too_many_seeds` lists those). Returns (SuiteSpec, the new seeds) pairs."""
    if (report.get("look") or {}).get("number") == 2:
        return []
    needed: dict[str, int] = {}
    for claim in report["claims"]:
        for part in claim["parts"] if claim.get("source") == "methods" else ():
            if (part["verdict"] == "inconclusive" and part.get("seeds_needed")
                    and part["seeds_needed"] <= MAX_SEEDS):
                for label in (part["group_row"], part["baseline_row"]):
                    needed[label] = max(needed.get(label, 0), part["seeds_needed"])
    rows = {m["method"]: m for m in report["methods"]}
    attack = report.get("attack")
    plans: dict[tuple, dict[str, Any]] = {}
    for label, total in needed.items():
        row = rows[label]
        if row["n_runs"] >= total:
            continue
        new, seed = [], 0
        while len(new) < total - row["n_runs"]:
            if seed not in row["seeds_tried"]:
                new.append(seed)
            seed += 1
        own = row["settings"] if row["settings"] != make_method(row["method_name"]).settings else None
        seeds = sorted([*row["seeds_tried"], *new])
        key = (json.dumps(row["training"], sort_keys=True), tuple(seeds),
               (row["method_name"], json.dumps(own, sort_keys=True)) if own is not None else None)
        plan = plans.setdefault(key, {"methods": [], "seeds": seeds, "new": new, "training": row["training"],
                                      "settings": own, "first": {}})
        plan["methods"].append(row["method_name"])
        plan["first"][row["method_name"]] = list(row["seeds"])
    suites = []
    for plan in plans.values():
        train = {k: v for k, v in plan["training"].items() if k not in ("train_size", "epochs", "model", "dataset")}
        if plan["settings"] is not None:
            train["settings"] = plan["settings"]
        t = plan["training"]
        suites.append((SuiteSpec(methods=method_order(plan["methods"]), seeds=plan["seeds"],
                                 train_size=t["train_size"], epochs=t["epochs"], model=t["model"],
                                 dataset=t["dataset"], recipe=attack["recipe"] if attack else None,
                                 attack_dataset=attack["dataset"] if attack else "sst2-dev",
                                 attack_n=attack["n"] if attack else 0, train=train, look=2,
                                 first_look=plan["first"]), plan["new"]))
    return suites


def too_many_seeds(report: dict[str, Any]) -> list[str]:
    """The open method-claim parts whose seeds-needed figure is more than one suite may run, in words."""
    return [f"{part['text']}: {part['seeds_text']}" for claim in report["claims"] if claim.get("source") == "methods"
            for part in claim["parts"] if part["verdict"] == "inconclusive" and
            (part.get("seeds_over") or (part.get("seeds_needed") or 0) > MAX_SEEDS)]


# ---------------------------------------------------------------- curves and exports

def budget_curve(results: list[dict[str, Any]], budgets: list[int]) -> list[float]:
    """Accuracy under attack if the attack had stopped after each query budget.

    A sentence counts as still correct at budget q when the model was right to begin with and the attack
    either failed or needed more than q queries to succeed (the search is deterministic, so a smaller
    budget follows the same path and stops earlier)."""
    n = len(results)
    if n == 0:
        return []
    return [sum(1 for r in results if r["status"] == "failed" or (r["status"] == "succeeded" and r["queries"] > q)) / n
            for q in budgets]


def budget_curves(store: RunStore, rows: list[dict[str, Any]], points: int = 41) -> dict[str, Any]:
    """Accuracy under attack against query budget, per method row: mean and spread over the stored attacks of
    the runs that count (a run that did not learn is left out here too)."""
    per_run = {}
    for row in rows:
        if row.get("attack_run") and row["included"]:
            try:
                per_run[row["run_id"]] = (row.get("row") or row["method"], read_results(store.get(row["attack_run"])))
            except RunError:  # the attack was deleted since the rows were read
                continue
    top = max((r["queries"] for _, results in per_run.values() for r in results), default=0)
    budgets = sorted({int(round(x)) for x in np.linspace(0, top, points)})
    methods: dict[str, list[list[float]]] = {}
    for method, results in per_run.values():
        methods.setdefault(method, []).append(budget_curve(results, budgets))
    return {"budgets": budgets, "methods": {
        m: {"mean": np.mean(c, axis=0).tolist(), "std": np.std(c, axis=0, ddof=1).tolist() if len(c) > 1 else None,
            "n": len(c)} for m, c in methods.items()}}
