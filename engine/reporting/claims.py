"""The seed papers' claims about methods, judged against a benchmark's rows.

A claim is a list of parts, each "method A above (or below) method B on a metric". A part compares two
method rows trained alike (same training settings; for IM-BERT against EX-BERT also the same step size,
vector field and layers); runs that did not learn are never in a row's numbers. The interval comes from
engine.stats: a hierarchical bootstrap over seeds and sentences for AdvGLUE accuracy and accuracy under
attack when every run has its per-sentence results, else a paired t-interval when both rows have the same
seeds, else Welch.
Every part measured on AdvGLUE or an attack has a companion part on clean accuracy: the method's dev
accuracy no more than one point below its comparator (non-inferiority), so a model that did not fit cannot
win a robustness claim. An inconclusive part says how many seeds per side would likely settle it, and what that
figure assumes (the true difference equals the observed one; for a metric over one sentence set, the smallest
difference those sentences can ever decide).

A report is a look of RobustLab's two-look design (`engine.stats.DESIGN`, fixed before the first look): `Look(1)`
judges at the level look 1 spends (99.44 %), `Look(2, first_seeds)` judges the parts still open after the extra
seeds by combining look 1's seeds with the new ones. Without a look (`look=None`) each part is one analysis at 95 %.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine import stats
from engine.data.advglue import advglue_label
from engine.data.splits import task_of

ROBUST_METRICS = ("advglue_accuracy", "attack_success_rate", "accuracy_under_attack")
SENTENCE_METRICS = ("advglue_accuracy", "accuracy_under_attack")   # scored on one fixed sentence set
CLEAN_MARGIN = 0.01      # a robustness gain may cost at most one point of clean dev accuracy
# advglue_accuracy: the AdvGLUE accuracy of the task the compared runs learned (official scoring)
METRIC_NAMES = {"dev_accuracy": "clean dev accuracy", "advglue_accuracy": "AdvGLUE accuracy",
                "attack_success_rate": "attack success rate", "accuracy_under_attack": "accuracy under attack"}
EULER_DEFINING = ("h", "field", "layers")   # what makes an EX-BERT the explicit twin of an IM-BERT
VANILLA_TWIN = ("EX-BERT with h = 1 and the residual field is vanilla BERT exactly, so the vanilla runs are "
                "this IM-BERT's explicit control")
NO_SEPARATE_CONTROL = ("at h = 1 with the residual field there is no explicit control apart from vanilla: this part "
                       "is the comparison with vanilla again, not a second piece of evidence (train IM-BERT with "
                       "another h, e.g. --set h=0.5 beside EX-BERT's default, for an explicit control that differs)")


@dataclass(frozen=True)
class Look:
    """Which look of the two-look design a report is: 1, or 2 with the seeds each method's row counted at look 1
    (by method name; a row not extended keeps its look-1 verdict)."""
    number: int = 1
    first_seeds: Mapping[str, list[int]] | None = None


@dataclass(frozen=True)
class Part:
    """One comparison a claim rests on: `group` above `baseline` on `metric` (below it when `below`), or for a
    non-inferiority part, `group` no more than `margin` below `baseline`. `matched`: method settings both rows
    must share."""
    text: str
    metric: str
    group: str
    baseline: str
    below: bool = False
    test: str = "superiority"
    margin: float | None = None
    matched: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    key: str
    paper: str
    claim: str
    paper_says: str
    parts: tuple[Part, ...]


def with_clean_checks(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """The parts, each one measured on AdvGLUE or an attack followed by the clean-accuracy non-inferiority
    part for the same two methods (once per pair)."""
    out: list[Part] = []
    checked: set[tuple[str, str]] = set()
    for part in parts:
        out.append(part)
        if part.metric in ROBUST_METRICS and (part.group, part.baseline) not in checked:
            checked.add((part.group, part.baseline))
            out.append(Part(f"dev accuracy: {part.group} no more than {CLEAN_MARGIN * 100:g} point below "
                            f"{part.baseline}", "dev_accuracy", part.group, part.baseline,
                            test="non-inferiority", margin=CLEAN_MARGIN, matched=part.matched))
    return tuple(out)


def _above(metric: str, group: str, baseline: str, matched: tuple[str, ...] = ()) -> Part:
    label = {"advglue_accuracy": "AdvGLUE", "dev_accuracy": "dev accuracy"}.get(metric, METRIC_NAMES[metric])
    return Part(f"{label}: {group} above {baseline}", metric, group, baseline, matched=matched)


CLAIMS = (
    Claim("im-bert", "IM-BERT (Kim, Park, Kim; EMNLP 2024)",
          "Higher AdvGLUE accuracy than vanilla fine-tuning and than the explicit EX-BERT, without adversarial "
          "training.",
          "about +8.3 points on AdvGLUE over vanilla (BERT-base); the implicit step beats the explicit one with "
          "the same step size",
          with_clean_checks((_above("advglue_accuracy", "im-bert", "vanilla"),
                             _above("advglue_accuracy", "im-bert", "ex-bert", matched=EULER_DEFINING)))),
    Claim("rose", "ROSE (Jiang et al.; EMNLP 2022)",
          "Selective fine-tuning is more adversarially robust than vanilla fine-tuning; the ensemble beats both "
          "variants.", "first-order, second-order and ensemble ROSE each above vanilla on AdvGLUE; the ensemble "
          "above both variants",
          with_clean_checks((_above("advglue_accuracy", "rose-first", "vanilla"),
                             _above("advglue_accuracy", "rose-second", "vanilla"),
                             _above("advglue_accuracy", "rose-ensemble", "vanilla"),
                             _above("advglue_accuracy", "rose-ensemble", "rose-first"),
                             _above("advglue_accuracy", "rose-ensemble", "rose-second")))),
    Claim("match-tuning", "Match-Tuning (Tong et al.; IJCAI 2022)",
          "Better clean accuracy than vanilla fine-tuning and more robust to adversarial attacks.",
          "+1.64 points on GLUE; lower attack success",
          with_clean_checks((_above("dev_accuracy", "match-tuning", "vanilla"),
                             Part("attack success rate: match-tuning below vanilla", "attack_success_rate",
                                  "match-tuning", "vanilla", below=True)))),
    Claim("uegr", "UEGR (Sun et al.; arXiv 2025)",
          "Better generalisation and better robustness at once.",
          "higher clean and adversarial accuracy than vanilla fine-tuning",
          with_clean_checks((_above("dev_accuracy", "uegr", "vanilla"),
                             _above("advglue_accuracy", "uegr", "vanilla")))),
)


def combine(verdicts: list[str]) -> str:
    """A claim with several parts: supported only if every part is; not supported if any part is not."""
    if verdicts and all(v == "supported" for v in verdicts):
        return "supported"
    return "not supported" if "not supported" in verdicts else "inconclusive"


# ---------------------------------------------------------------- which two rows a part compares

def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [f"{key} {a.get(key)!r} vs {b.get(key)!r}" for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)]


def _counted(group: Mapping[str, Any], metric: str) -> list[dict[str, Any]]:
    """A row's runs that count for a metric: finished, learned (or not known to have failed to), with the number."""
    return [r for r in group["runs"] if r.get("included") and r.get(metric) is not None]


def choose_rows(part: Part, groups: list[dict[str, Any]]) -> tuple[dict | None, dict | None, str]:
    """The two rows a part compares: trained with the same settings (and sharing `part.matched` method
    settings); among several such pairs, the one with the most runs. Without a pair: (None, None, why)."""
    mine = [g for g in groups if g["method"] == part.group and _counted(g, part.metric)]
    theirs = [g for g in groups if g["method"] == part.baseline and _counted(g, part.metric)]
    if mine and not theirs and part.baseline == "ex-bert":
        twin = _vanilla_twin(part, mine, groups)
        if twin:
            return twin
    for side, name in ((mine, part.group), (theirs, part.baseline)):
        if not side:
            left_out = [r for g in groups if g["method"] == name for r in g["runs"] if r.get("learned") is False]
            why = f"no finished {name} runs with {METRIC_NAMES.get(part.metric, part.metric)}"
            if left_out:
                why += f" that learned ({len(left_out)} did not learn and are left out)"
            return None, None, why
    pairs = [(a, b) for a in mine for b in theirs if a["training"] == b["training"]
             and all(a["settings"].get(k) == b["settings"].get(k) for k in part.matched)]
    if not pairs and part.baseline == "ex-bert":
        twin = _vanilla_twin(part, mine, groups)
        if twin:
            return twin
    if not pairs:
        a, b = mine[0], theirs[0]
        diff = _differences(a["training"], b["training"]) + [
            f"{k} {a['settings'].get(k)!r} vs {b['settings'].get(k)!r}" for k in part.matched
            if a["settings"].get(k) != b["settings"].get(k)]
        return None, None, (f"refused: no {part.group} and {part.baseline} runs trained with the same settings "
                            f"({part.group} vs {part.baseline}: {'; '.join(diff)})")
    a, b = _most_runs(pairs, part.metric)
    return a, b, ""


def _vanilla_twin(part: Part, mine: list[dict], groups: list[dict[str, Any]]) -> tuple[dict, dict, str] | None:
    """The IM-BERT row at h = 1 (residual) and the vanilla row trained alike: the explicit control there is
    vanilla BERT exactly. None when there is no such pair."""
    twins = [(a, b) for a in mine if is_vanilla_when_explicit(a["settings"])
             for b in groups if b["method"] == "vanilla" and _counted(b, part.metric)
             and a["training"] == b["training"]]
    if not twins:
        return None
    a, b = _most_runs(twins, part.metric)
    return a, b, VANILLA_TWIN


def _most_runs(pairs: list[tuple[dict, dict]], metric: str) -> tuple[dict, dict]:
    return max(pairs, key=lambda p: (min(len(_counted(p[0], metric)), len(_counted(p[1], metric))),
                                     len(_counted(p[0], metric)) + len(_counted(p[1], metric))))


def is_vanilla_when_explicit(settings: Mapping[str, Any]) -> bool:
    """An IM-BERT whose explicit twin is vanilla BERT: x + 1 * (Layer(x) - x) = Layer(x) on every layer."""
    return settings.get("h") == 1 and settings.get("field") == "residual"


# ---------------------------------------------------------------- the interval of one part

def _unique_seeds(runs: list[dict[str, Any]]) -> list[int] | None:
    seeds = [r.get("seed") for r in runs]
    return sorted(seeds) if None not in seeds and len(set(seeds)) == len(seeds) else None


def part_interval(metric: str, a_runs: list[dict[str, Any]], b_runs: list[dict[str, Any]],
                  sentences: Mapping[str, Mapping[str, np.ndarray]],
                  level: float = stats.LEVEL) -> tuple[stats.Interval, str]:
    """The interval of mean(a) - mean(b) and a note on the data it used.

    Paired by seed when both sides have exactly the same seeds (each once). Per sentence (hierarchical
    bootstrap) for AdvGLUE accuracy and accuracy under attack when every run has its per-sentence results on
    the same sentences, paired when the seeds are. Not for the attack success rate: it counts only the
    sentences each model had right, a different set per run, so it gets the seed-level test."""
    va = [float(r[metric]) for r in a_runs]
    vb = [float(r[metric]) for r in b_runs]
    seeds_a, seeds_b = _unique_seeds(a_runs), _unique_seeds(b_runs)
    paired = seeds_a is not None and seeds_a == seeds_b
    note = ""
    if metric in SENTENCE_METRICS:
        arrays = [sentences.get(r["run_id"], {}).get(metric) for r in (*a_runs, *b_runs)]
        if all(x is not None for x in arrays) and len({len(x) for x in arrays}) == 1:
            keys_a = [r["seed"] for r in a_runs] if paired else list(range(len(a_runs)))
            keys_b = [r["seed"] for r in b_runs] if paired else list(range(len(b_runs)))
            pa = {k: sentences[r["run_id"]][metric] for k, r in zip(keys_a, a_runs)}
            pb = {k: sentences[r["run_id"]][metric] for k, r in zip(keys_b, b_runs)}
            return stats.compare(va, vb, per_sentence=(pa, pb), paired_sentences=paired, level=level), ""
        missing = sum(x is None for x in arrays)
        note = (f"{missing} run(s) lack per-sentence results, so the interval covers seeds only" if missing else
                "the runs were scored on different numbers of sentences, so the interval covers seeds only")
    elif metric == "attack_success_rate":
        note = "a success rate counts only the sentences each model had right, so the interval covers seeds only"
    if paired:
        by_seed_b = {r["seed"]: float(r[metric]) for r in b_runs}
        return stats.compare(va, vb, pairs=[(float(r[metric]), by_seed_b[r["seed"]]) for r in a_runs],
                             level=level), note
    return stats.compare(va, vb, level=level), note


def _stage(runs: list[dict[str, Any]], method: str, look: Look | None, first: bool) -> list[dict[str, Any]]:
    """The runs of look 1 (`first`) or the runs added for look 2 (none for a row that was not extended)."""
    known = (look.first_seeds or {}) if look else {}
    if method not in known:
        return runs if first else []
    return [r for r in runs if (r.get("seed") in set(known[method])) == first]


def _interval(part: Part, a_runs: list[dict[str, Any]], b_runs: list[dict[str, Any]],
              sentences: Mapping[str, Mapping[str, np.ndarray]], look: Look | None
              ) -> tuple[stats.Interval, str, stats.Interval | None, str]:
    """The interval a part is judged on, a note on its data, the look-1 interval when look 2 re-judges the part
    (for the record), and the interval's label."""
    if look is None:
        iv, note = part_interval(part.metric, a_runs, b_runs, sentences)
        return iv, note, None, f"{stats.LEVEL * 100:g} % CI"
    group, baseline = a_runs[0]["method"], b_runs[0]["method"]
    first_a, first_b = _stage(a_runs, group, look, True), _stage(b_runs, baseline, look, True)
    if look.number == 1 or not (first_a and first_b):
        iv, note = part_interval(part.metric, a_runs, b_runs, sentences, stats.LOOK1_LEVEL)
        return iv, note, None, f"{stats.LOOK1_LEVEL * 100:.2f} % CI (look 1 of 2)"
    first, note = part_interval(part.metric, first_a, first_b, sentences, stats.LOOK1_LEVEL)
    new_a, new_b = _stage(a_runs, group, look, False), _stage(b_runs, baseline, look, False)
    higher = not part.below
    opened = (stats.non_inferiority(first, part.margin, higher_is_better=higher) if part.test == "non-inferiority"
              else stats.verdict(first, higher_is_better=higher))[0] == "inconclusive"
    if not opened or not (new_a or new_b):
        why = ("settled at look 1, so look 1's verdict stands" if not opened
               else "no new seeds on either side, so look 1's verdict stands")
        return first, "; ".join(n for n in (note, why) if n), None, f"{stats.LOOK1_LEVEL * 100:.2f} % CI (look 1 of 2)"
    if not (new_a and new_b):
        gone = group if not new_a else baseline
        first = dataclasses.replace(first, low=None, high=None)
        return first, f"look 2 has no new {gone} seeds, so the two stages cannot be combined", None, "look 2 of 2"
    second, _ = part_interval(part.metric, new_a, new_b, sentences)
    pooled, pooled_note = part_interval(part.metric, a_runs, b_runs, sentences)
    return stats.two_look_interval(first, second, pooled), pooled_note, first, "look-2 interval (look 2 of 2)"


def _plan(part: Part, iv: stats.Interval, effect: float, look: Look | None) -> stats.SeedsPlan:
    """What more seeds would do for an open part: one analysis at 95 % (no look), look 2 of the design (look 1),
    nothing (look 2: the design has no third look)."""
    what = "gap to the margin" if part.test == "non-inferiority" else "difference"
    if look is not None and look.number == 2:
        return stats.SeedsPlan(None, None, stats.sentence_floor(iv), "",
                               "this is look 2 of RobustLab's two-look design: it allows no third look, so more "
                               "seeds cannot be added to this question under the 5 % error rate")
    if look is None:
        return stats.seeds_plan(iv, effect, what=what)
    delta = 0.0 if part.test != "non-inferiority" else (-part.margin if not part.below else part.margin)
    return stats.second_look_plan(iv, effect, delta, what=what)


def judge_part(part: Part, groups: list[dict[str, Any]], sentences: Mapping[str, Mapping[str, np.ndarray]],
               look: Look | None = None) -> dict[str, Any]:
    """A part's row: the rows it compares, their means, the interval, the verdict and, when inconclusive,
    the seeds per side that would likely settle it, with what that figure assumes (`seeds_plan`)."""
    out: dict[str, Any] = {**asdict(part), "matched": list(part.matched), "kind": "none", "mean_a": None,
                           "mean_b": None, "n_a": 0, "n_b": 0, "diff": None, "ci_low": None, "ci_high": None,
                           "sd": None, "seeds_needed": None, "seeds_over": None, "seeds_floor": None,
                           "seeds_text": "", "ci_label": None, "group_row": None, "baseline_row": None,
                           "repeats": None, "look": look.number if look else None}
    a, b, why = choose_rows(part, groups)
    if a is None:
        return {**out, "verdict": "inconclusive", "reason": why}
    note = why
    a_runs, b_runs = _counted(a, part.metric), _counted(b, part.metric)
    iv, data_note, first, label = _interval(part, a_runs, b_runs, sentences, look)
    note = "; ".join(n for n in (note, data_note) if n)
    higher = not part.below
    if part.test == "non-inferiority":
        verdict, reason = stats.non_inferiority(iv, part.margin, higher_is_better=higher)
        effect = None if iv.diff is None else iv.diff + (part.margin if higher else -part.margin)
    else:
        verdict, reason = stats.verdict(iv, higher_is_better=higher)
        effect = iv.diff
    plan = None
    if verdict == "inconclusive" and effect is not None and iv.sd:
        plan = _plan(part, first or iv, effect, look)
    reason = f"{reason} ({iv.note})" if iv.note and iv.note not in reason else reason
    return {**out, "group_row": a["label"], "baseline_row": b["label"], "kind": iv.kind,
            "mean_a": float(np.mean([r[part.metric] for r in a_runs])),
            "mean_b": float(np.mean([r[part.metric] for r in b_runs])), "n_a": iv.n_a, "n_b": iv.n_b,
            "diff": iv.diff, "ci_low": iv.low, "ci_high": iv.high, "sd": iv.sd, "verdict": verdict,
            "reason": reason + (f"; {note}" if note else ""), "ci_label": label,
            "repeats": _repeats(part, b), **plan_fields(plan)}


def plan_fields(plan: stats.SeedsPlan | None) -> dict[str, Any]:
    """A part's seeds-needed fields: the figure (never capped at 100; `seeds_over` when the search gave up),
    the sentence floor, and one sentence that says what the figure assumes or why there is none."""
    if plan is None:
        return {"seeds_needed": None, "seeds_over": None, "seeds_floor": None, "seeds_text": ""}
    return {"seeds_needed": plan.seeds, "seeds_over": plan.over, "seeds_floor": plan.floor,
            "seeds_text": seeds_sentence(plan)}


def seeds_sentence(plan: stats.SeedsPlan) -> str:
    """The seeds-needed figure in words with its assumption; or why there is no figure."""
    floor = ""
    if plan.floor is not None:
        floor = (f" These sentences can never decide a difference below about {plan.floor * 100:.2f} points "
                 "(the interval's half-width with unlimited seeds).")
    if plan.seeds is not None:
        return (f"About {plan.seeds} seeds per side would likely settle it (power 0.8), {plan.assumes}."
                + floor)
    return (plan.why[0].upper() + plan.why[1:] + (f" ({plan.assumes})" if plan.assumes else "") + "."
            + ("" if "cannot be decided" in plan.why else floor))


def _repeats(part: Part, baseline_row: dict[str, Any]) -> str | None:
    """The text of the part this one repeats: IM-BERT against EX-BERT when vanilla stands in for it."""
    if part.baseline == "ex-bert" and baseline_row["method"] == "vanilla":
        return part.text.replace("ex-bert", "vanilla")
    return None


def judge_claim(claim: Claim, groups: list[dict[str, Any]], sentences: Mapping[str, Mapping[str, np.ndarray]],
                look: Look | None = None) -> dict[str, Any]:
    """A claim's row: each part judged, the claim's verdict, and plain-words statements about the runs used."""
    parts = [judge_part(part, groups, sentences, look) for part in claim.parts]
    for part in parts:
        if part["repeats"]:
            part["reason"] = f"{NO_SEPARATE_CONTROL}; {part['reason']}"
    statements = []
    used = {label for p in parts for label in (p["group_row"], p["baseline_row"]) if label}
    for group in groups:
        if group["label"] in used:
            dropped = [r for r in group["runs"] if r.get("learned") is False]
            if dropped:
                statements.append(f"{len(dropped)} {group['label']} run(s) did not learn and are left out: "
                                  + "; ".join(f"{r['run_id']} ({r['learning_reason']})" for r in dropped))
    split = sorted(g["label"] for g in groups if g["label"] in used and g["label"] != g["method"])
    if split:
        statements.append("Runs of one method were trained with different settings; this claim uses the rows "
                          + ", ".join(split) + ".")
    statements += [f"{p['text']}: {p['reason']}" for p in parts if p["reason"].startswith("refused")]
    repeated = [p["text"] for p in parts if p["repeats"]]
    if repeated:
        statements.append("No separate EX-BERT control: this IM-BERT runs at h = 1 with the residual field, where "
                          "the explicit step is vanilla BERT exactly, so " + " and ".join(repeated)
                          + " repeat the comparisons with vanilla; the claim has one piece of evidence, not two.")
    few = sorted({p["text"] for p in parts if p["kind"] != "none" and min(p["n_a"], p["n_b"]) < 3})
    if few:
        statements.append("Fewer than 3 seeds on a side, so no verdict: " + "; ".join(few) + ".")
    return {"key": claim.key, "paper": claim.paper, "claim": claim.claim, "paper_says": claim.paper_says,
            "verdict": combine([p["verdict"] for p in parts]), "parts": parts, "source": "methods",
            "statements": statements}


def judge_methods(groups: list[dict[str, Any]], sentences: Mapping[str, Mapping[str, np.ndarray]],
                  look: Look | None = None) -> list[dict[str, Any]]:
    """Every method claim judged on the benchmark's rows (`groups`: label, method, training, settings, runs), at
    `look` of the two-look design (None: one analysis at 95 %). The AdvGLUE parts are named by the task the rows
    learned (AdvGLUE-RTE: ...): each run's AdvGLUE accuracy is its own task's."""
    tasks = {task_of(g["training"]) for g in groups if g.get("training")}
    task = tasks.pop() if len(tasks) == 1 else None
    return [judge_claim(named_for(claim, task), groups, sentences, look) for claim in CLAIMS]


def named_for(claim: Claim, task: str | None) -> Claim:
    """The claim with its AdvGLUE parts' text naming the task (AdvGLUE-SST2: im-bert above vanilla); plain AdvGLUE
    when the task is unknown or the rows mix tasks."""
    label = advglue_label(task)
    return dataclasses.replace(claim, parts=tuple(
        dataclasses.replace(p, text=p.text.replace("AdvGLUE:", f"{label}:", 1)) if p.metric == "advglue_accuracy"
        else p for p in claim.parts))
