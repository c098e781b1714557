"""The benchmark report: runs grouped by method (mean and spread over seeds), and the seed papers' claims
judged against those numbers.

Everything here reads what runs stored (eval.json, finished attack runs, recovery grids); nothing is
computed on the fly, except by `fill_missing`, which computes what a report lacks when asked. A metric a run
lacks is None and counted as missing, never a zero. A claim's verdict
comes from a 95 % Welch confidence interval of the difference of means over seeds: *supported* when the
interval lies on the claimed side of zero, *not supported* when it lies on the other side (or at zero),
*inconclusive* when it straddles zero or when there are too few seeds to measure the spread.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.data import DEV_SET
from engine.runs import ACTIVE, RunError, RunStore, read_json

METRICS = {"dev_accuracy": "clean dev accuracy", "advglue_sst2_accuracy": "AdvGLUE-SST2 accuracy",
           "attack_success_rate": "attack success rate", "accuracy_under_attack": "accuracy under attack"}
LEVEL = 0.95
SCALE_NOTE = (
    "These are small-scale replications: {models} instead of BERT-base or -large, a few thousand SST-2 sentences "
    "and a couple of epochs instead of full GLUE training, one attack recipe on the first dev sentences, a handful "
    "of seeds, on a CPU budget. AdvGLUE-SST2 has 148 sentences, so one sentence moves its accuracy by 0.7 points. "
    "On a GPU with full data the models would reach the papers' accuracies (about 92-94 % on SST-2), differences "
    "between methods would shrink in relative terms but be measured far more precisely, and more seeds would "
    "narrow the intervals that decide the verdicts; a claim that is inconclusive here may well be settled there.")


def scale_note(models: set[str | None]) -> str:
    """SCALE_NOTE for the models a report covers."""
    from engine.models import known_models

    names = [known_models().get(m, m).split(" (")[0] for m in sorted(m for m in models if m)]
    return SCALE_NOTE.format(models=" and ".join(names) or "all-MiniLM-L6-v2")


@dataclass(frozen=True)
class AttackSpec:
    """Which stored attack a report reads for each run (same recipe, examples and budget)."""
    recipe: str = "deepwordbug"
    dataset: str = "sst2-dev"
    n: int = 100

    def config_for(self, target: str) -> dict[str, Any]:
        from engine.attacks.attacker import Budget
        from engine.attacks.batch import batch_config

        return batch_config(target, self.recipe, self.dataset, self.n, Budget())


# ---------------------------------------------------------------- one row per run

def run_row(store: RunStore, run_id: str, attack: AttackSpec | None) -> dict[str, Any]:
    """A run's stored numbers; a metric it lacks is None and named in `missing`."""
    from engine.attacks.batch import find_cached

    row: dict[str, Any] = {"run_id": run_id, "method": None, "seed": None, "status": "deleted",
                           **{m: None for m in METRICS}, "attack_run": None, "missing": []}
    try:
        run = store.get(run_id)
    except RunError:
        return row
    config, status = run.config, run.status.get("status", "unknown")
    row.update(method=config.get("method"), seed=config.get("seed"), status=status, model=config.get("model"),
               train_size=config.get("train_size"), epochs=config.get("epochs"))
    if config.get("kind", "train") != "train":
        row["status"] = f"not a trained model ({config.get('kind')})"
        return row
    if status != "done":
        row["error"] = run.status.get("error")
        return row
    evals = read_json(run.dir / "eval.json", {})
    dev_name = DEV_SET.get(config.get("dataset", ""), "heldout")
    row["dev_accuracy"] = evals.get(dev_name, {}).get("accuracy")
    row["advglue_sst2_accuracy"] = evals.get("advglue-sst2", {}).get("accuracy")
    if attack is not None:
        found = find_cached(store, attack.config_for(run.id))
        if found is not None:
            results = found.results
            attacked = (results.get("succeeded") or 0) + (results.get("failed") or 0)
            row.update(attack_run=found.id, accuracy_under_attack=results.get("accuracy_under_attack"),
                       # no sentence the model got right: a success rate is undefined, not 0
                       attack_success_rate=results.get("success_rate") if attacked else None)
    wanted = [m for m in METRICS if attack is not None or m in ("dev_accuracy", "advglue_sst2_accuracy")]
    if dev_name == "heldout":
        wanted.remove("advglue_sst2_accuracy")
    row["missing"] = [m for m in wanted if row[m] is None]
    return row


def run_rows(store: RunStore, run_ids: list[str], attack: AttackSpec | None) -> list[dict[str, Any]]:
    return [run_row(store, run_id, attack) for run_id in run_ids]


# ---------------------------------------------------------------- grouping by method

def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None with fewer than two values: one seed has no spread)."""
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def method_order(methods: list[str]) -> list[str]:
    from engine.suite import default_methods

    order = default_methods()
    return sorted(set(methods), key=lambda m: (order.index(m) if m in order else len(order), m))


def values_by_method(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """{method: {metric: [value per finished run that has it]}}."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row["status"] == "done" and row["method"]:
            bucket = out.setdefault(row["method"], {m: [] for m in METRICS})
            for metric in METRICS:
                if row[metric] is not None:
                    bucket[metric].append(float(row[metric]))
    return out


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method: finished runs, mean and spread of each metric, and what is failed or missing."""
    values = values_by_method(rows)
    out = []
    for method in method_order([r["method"] for r in rows if r["method"]]):
        group = [r for r in rows if r["method"] == method]
        done = [r for r in group if r["status"] == "done"]
        row: dict[str, Any] = {"method": method, "n_runs": len(done),
                               "seeds": sorted(r["seed"] for r in done if r["seed"] is not None),
                               "n_failed": sum(r["status"] == "failed" for r in group),
                               "n_unfinished": sum(r["status"] not in ("done", "failed") for r in group)}
        for metric in METRICS:
            mean, std = mean_std(values.get(method, {}).get(metric, []))
            row[metric], row[f"{metric}_std"] = mean, std
            row[f"{metric}_n"] = len(values.get(method, {}).get(metric, []))
            row[f"{metric}_missing"] = sum(metric in r["missing"] for r in done)
        out.append(row)
    deleted = [r for r in rows if r["status"] == "deleted"]
    if deleted:
        out.append({"method": "(deleted runs)", "n_runs": 0, "seeds": [], "n_failed": 0,
                    "n_unfinished": len(deleted), **{k: None for m in METRICS for k in (m, f"{m}_std")},
                    **{f"{m}_{k}": 0 for m in METRICS for k in ("n", "missing")}})
    return out


# ---------------------------------------------------------------- comparing two groups

def compare(a: list[float], b: list[float] | float, higher_is_better: bool = True,
            level: float = LEVEL) -> dict[str, Any]:
    """Mean of `a` minus mean of `b` (a list of runs, or a fixed number), its Welch confidence interval,
    and the verdict on "a is better than b"."""
    from scipy import stats

    fixed = isinstance(b, (int, float))
    out: dict[str, Any] = {"mean_a": float(np.mean(a)) if a else None, "n_a": len(a),
                           "mean_b": float(b) if fixed else (float(np.mean(b)) if b else None),
                           "n_b": None if fixed else len(b), "diff": None, "ci_low": None, "ci_high": None}
    if out["mean_a"] is None or out["mean_b"] is None:
        return {**out, "verdict": "inconclusive", "reason": "no finished runs with this number on one side"}
    out["diff"] = out["mean_a"] - out["mean_b"]
    if len(a) < 2 or (not fixed and len(b) < 2):
        return {**out, "verdict": "inconclusive",
                "reason": "needs at least two seeds on each side to measure the spread"}
    va = float(np.var(a, ddof=1)) / len(a)
    vb = 0.0 if fixed else float(np.var(b, ddof=1)) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        half = 0.0
    else:
        df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1)) + (0 if fixed else vb ** 2 / (len(b) - 1)))
        half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    out["ci_low"], out["ci_high"] = out["diff"] - half, out["diff"] + half
    better_low, better_high = (out["ci_low"], out["ci_high"]) if higher_is_better else (-out["ci_high"], -out["ci_low"])
    if better_low > 0:
        verdict, reason = "supported", "the whole interval is on the claimed side"
    elif better_high <= 0:
        verdict, reason = "not supported", "the whole interval is on the other side, or at zero"
    else:
        verdict, reason = "inconclusive", "the interval includes zero: the spread over seeds is larger than the gap"
    return {**out, "verdict": verdict, "reason": reason}


def combine(verdicts: list[str]) -> str:
    """A claim with several parts: supported only if every part is; not supported if any part is not."""
    if verdicts and all(v == "supported" for v in verdicts):
        return "supported"
    return "not supported" if "not supported" in verdicts else "inconclusive"


# ---------------------------------------------------------------- the claims

@dataclass(frozen=True)
class Part:
    """One comparison a claim rests on: `group` is above `baseline` (a group, or a fixed number) on `metric`,
    or below it when `below`."""
    text: str
    metric: str
    group: str
    baseline: str | float
    below: bool = False


@dataclass(frozen=True)
class Claim:
    key: str
    paper: str
    claim: str
    paper_says: str
    parts: tuple[Part, ...]
    source: str = "methods"      # "methods": groups are methods; "recovery": groups of a recovery grid


CLAIMS = (
    Claim("im-bert", "IM-BERT (Kim, Park, Kim; EMNLP 2024)",
          "Higher AdvGLUE accuracy than vanilla fine-tuning, without adversarial training.",
          "about +8.3 points on AdvGLUE (BERT-base)",
          (Part("AdvGLUE-SST2: im-bert above vanilla", "advglue_sst2_accuracy", "im-bert", "vanilla"),)),
    Claim("rose", "ROSE (Jiang et al.; EMNLP 2022)",
          "Selective fine-tuning is more adversarially robust than vanilla fine-tuning; the ensemble beats both "
          "variants.", "ensemble above first- and second-order ROSE, all above vanilla on AdvGLUE",
          (Part("AdvGLUE-SST2: rose-ensemble above vanilla", "advglue_sst2_accuracy", "rose-ensemble", "vanilla"),
           Part("AdvGLUE-SST2: rose-ensemble above rose-first", "advglue_sst2_accuracy", "rose-ensemble",
                "rose-first"),
           Part("AdvGLUE-SST2: rose-ensemble above rose-second", "advglue_sst2_accuracy", "rose-ensemble",
                "rose-second"))),
    Claim("match-tuning", "Match-Tuning (Tong et al.; IJCAI 2022)",
          "Better clean accuracy than vanilla fine-tuning and more robust to adversarial attacks.",
          "+1.64 points on GLUE; lower attack success",
          (Part("dev accuracy: match-tuning above vanilla", "dev_accuracy", "match-tuning", "vanilla"),
           Part("attack success rate: match-tuning below vanilla", "attack_success_rate", "match-tuning",
                "vanilla", below=True))),
    Claim("uegr", "UEGR (Sun et al.; arXiv 2025)",
          "Better generalisation and better robustness at once.",
          "higher clean and adversarial accuracy than vanilla fine-tuning",
          (Part("dev accuracy: uegr above vanilla", "dev_accuracy", "uegr", "vanilla"),
           Part("AdvGLUE-SST2: uegr above vanilla", "advglue_sst2_accuracy", "uegr", "vanilla"))),
    Claim("healing", "Healing Powers of BERT (Han, Zhang, Simion; arXiv 2024)",
          "Corrupted models do not fully recover, and bottom-layer corruption hurts more than top-layer.",
          "recovery below the clean model; bottom layers worse than top layers",
          # judged per position: a pooled mean could hide one position that heals completely
          (Part("bottom-layer corruption: recovery ratio below 1", "recovery_ratio", "bottom", 1.0, below=True),
           Part("top-layer corruption: recovery ratio below 1", "recovery_ratio", "top", 1.0, below=True),
           Part("recovery ratio: bottom-layer corruption below top-layer", "recovery_ratio", "bottom", "top",
                below=True)),
          source="recovery"),
)


def recovery_values(grid_rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Recovery ratios of a grid's finished bottom-layer and top-layer runs.

    Each corrupted run (every k and seed) is one sample of its position, the grid's unit of replication."""
    groups: dict[str, dict[str, list[float]]] = {g: {"recovery_ratio": []} for g in ("bottom", "top")}
    for row in grid_rows:
        if row.get("status") == "done" and row.get("position") in groups and row.get("recovery_ratio") is not None:
            groups[row["position"]]["recovery_ratio"].append(row["recovery_ratio"])
    return groups


def judge(claim: Claim, values: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """A claim's row: each part's numbers and verdict, and the claim's verdict."""
    parts = []
    for part in claim.parts:
        a = values.get(part.group, {}).get(part.metric, [])
        b = values.get(part.baseline, {}).get(part.metric, []) if isinstance(part.baseline, str) else part.baseline
        result = compare(a, b, higher_is_better=not part.below)
        if result["mean_a"] is None or result["mean_b"] is None:
            absent = part.group if result["mean_a"] is None else part.baseline
            result["reason"] = f"no finished {absent} runs with {METRICS.get(part.metric, part.metric)}"
        parts.append({**asdict(part), **result})
    return {"key": claim.key, "paper": claim.paper, "claim": claim.claim, "paper_says": claim.paper_says,
            "verdict": combine([p["verdict"] for p in parts]), "parts": parts, "source": claim.source}


def judge_all(method_values: dict[str, dict[str, list[float]]],
              grid_rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    grid_values = recovery_values(grid_rows or [])
    out = []
    for claim in CLAIMS:
        row = judge(claim, grid_values if claim.source == "recovery" else method_values)
        if claim.source == "recovery" and grid_rows is None:
            for part in row["parts"]:
                part["reason"] = "no finished recovery grid: run one on the Corruption & recovery page"
        out.append(row)
    return out


# ---------------------------------------------------------------- the report

def latest_grid(store: RunStore) -> str | None:
    rows = store.list(kind="recover", status="done")
    return rows[0]["id"] if rows else None


def build_report(store: RunStore, run_ids: list[str], attack: AttackSpec | None,
                 grid_id: str | None = None) -> dict[str, Any]:
    """The whole report: per-run rows, per-method rows, claims, and where each number came from."""
    from engine.recovery.metrics import grid_rows

    rows = run_rows(store, list(dict.fromkeys(run_ids)), attack)   # a run named twice counts once
    grid = None
    if grid_id:
        try:
            grid = grid_rows(store, store.get(grid_id))
        except RunError:
            grid_id = None
    configs = {(r.get("model"), r.get("train_size"), r.get("epochs")) for r in rows if r["status"] == "done"}
    notes = [scale_note({r.get("model") for r in rows if r["status"] == "done"})]
    if len(configs) > 1:
        notes.append("The runs differ in model, training size or epochs: "
                     + "; ".join(f"{m} {n} examples x {e} epochs" for m, n, e in sorted(configs, key=str))
                     + ". Grouping them by method mixes those settings.")
    return {"methods": aggregate(rows), "claims": judge_all(values_by_method(rows), grid), "runs": rows,
            "attack": asdict(attack) if attack else None, "grid": grid_id, "level": LEVEL, "notes": notes}


def missing_work(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Which finished runs lack a stored evaluation, and which lack the attack."""
    evals = [r["run_id"] for r in rows if {"dev_accuracy", "advglue_sst2_accuracy"} & set(r["missing"])]
    attacks = [r["run_id"] for r in rows if "attack_success_rate" in r["missing"] and not r["attack_run"]]
    return {"evaluations": evals, "attacks": attacks}


def fill_missing(store: RunStore, todo: dict[str, list[str]], attack: AttackSpec | None, background: bool,
                 say: Callable[[str], None] | None = None) -> None:
    """Compute what `missing_work` found missing: each evaluation in this process (seconds each), then each
    attack, queued as a background job (`background`: a page) or run here one after another (the CLI).
    `say` hears a line as each part starts."""
    from engine import jobs
    from engine.evaluate import evaluate_run

    say = say or (lambda line: None)
    for run_id in todo["evaluations"]:
        say(f"evaluating {run_id}")
        evaluate_run(store, run_id, ["sst2-dev", "advglue-sst2"])
    for run_id in todo["attacks"]:
        say(f"attacking {run_id} with {attack.recipe}")
        if background:
            jobs.submit(store, attack.config_for(run_id), kind="attack", parent=run_id)
        else:
            run = store.create(attack.config_for(run_id), kind="attack", parent=run_id)
            jobs.execute(store, run, jobs.StopFlag().install())


def attacks_under_way(store: RunStore, attack: AttackSpec) -> set[str]:
    """Runs with this attack already queued or running, so a page does not queue it twice."""
    from engine.attacks.batch import CONFIG_KEYS

    out = set()
    for status in ACTIVE:
        for row in store.list(kind="attack", status=status):
            config = store.get(row["id"]).config
            wanted = attack.config_for(config["target"])
            if all(config.get(k) == wanted.get(k) for k in CONFIG_KEYS):
                out.add(config["target"])
    return out


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
    """Accuracy under attack against query budget, per method: mean and spread over the runs' stored attacks."""
    from engine.attacks.batch import read_results

    per_run = {}
    for row in rows:
        if row.get("attack_run"):
            try:
                per_run[row["run_id"]] = (row["method"], read_results(store.get(row["attack_run"])))
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


def fmt_value(mean: float | None, std: float | None, points: bool = True) -> str:
    if mean is None:
        return "missing"
    scale = 100 if points else 1
    text = f"{mean * scale:.1f}" if points else f"{mean:.3f}"
    if std is None:
        return text
    return text + (f" ± {std * scale:.1f}" if points else f" ± {std:.3f}")


def part_numbers(part: dict[str, Any]) -> str:
    """One line of numbers for a claim part: both means, the gap and its interval, in points."""
    percent = part["metric"] != "recovery_ratio"
    scale, unit = (100, " points") if percent else (1, "")
    def num(v):
        return "–" if v is None else (f"{v * scale:.1f}" if percent else f"{v:.3f}")
    text = f"{part['group']} {num(part['mean_a'])} (n={part['n_a']}) vs "
    text += (f"{part['baseline']} {num(part['mean_b'])} (n={part['n_b']})" if part["n_b"] is not None
             else num(part["mean_b"]))
    if part["diff"] is not None:
        text += f": {part['diff'] * scale:+.{1 if percent else 3}f}{unit}"
    if part["ci_low"] is not None:
        digits = 1 if percent else 3
        text += f", 95 % CI [{part['ci_low'] * scale:+.{digits}f}, {part['ci_high'] * scale:+.{digits}f}]"
    return text


def methods_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The methods rows as display/CSV records (accuracies in points, mean ± std)."""
    return [{"method": m["method"], "runs": m["n_runs"], "seeds": ",".join(map(str, m["seeds"])),
             "failed": m["n_failed"], "unfinished": m["n_unfinished"],
             **{label: fmt_value(m.get(metric), m.get(f"{metric}_std")) for metric, label in METRICS.items()}}
            for m in report["methods"]]


def claims_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"paper": c["paper"], "claim": c["claim"], "paper says": c["paper_says"], "verdict": c["verdict"],
             "our numbers": "; ".join(part_numbers(p) for p in c["parts"]),
             "why": "; ".join(f"{p['text']}: {p['verdict']} ({p['reason']})" for p in c["parts"])}
            for c in report["claims"]]


def to_csv(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["method"])
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def _markdown_table(records: list[dict[str, Any]]) -> str:
    if not records:
        return "_no rows_\n"
    head = list(records[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]).replace("|", "\\|") for h in head) + " |" for r in records]
    return "\n".join(lines) + "\n"


def to_markdown(report: dict[str, Any]) -> str:
    attack = report.get("attack")
    lines = ["# RobustLab benchmark", "",
             "Accuracies in points (mean ± sample standard deviation over seeds)"
             + (f"; attack: {attack['recipe']} on the first {attack['n']} {attack['dataset']} sentences." if attack
                else "."), "", "## Methods", "", _markdown_table(methods_table(report)), "## Claims", "",
             f"Verdicts from {int(report['level'] * 100)} % Welch confidence intervals of the difference of means.",
             "", _markdown_table(claims_table(report)), "## Scale", ""]
    lines += [note + "\n" for note in report["notes"]]
    return "\n".join(lines)
