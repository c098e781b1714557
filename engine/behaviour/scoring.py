"""Which cases fail, and a test's failure rate, as CheckList defines them (Ribeiro et al. 2020; the code of
github.com/marcotcr/checklist, `checklist/expect.py`, `test_types.py`, `abstract_test.py`).

Every case counts unless it cannot fail. MFT: a case fails when the prediction differs from its label
(`Expect.eq`); a test with `neutral_passes` ("not negative") passes a neutral answer too, which for a two-class
model is CheckList's band 1/3 < P(positive) < 2/3 (its tutorial's `pred_and_conf`). INV: a case fails when the
prediction changes and the probability of the original's predicted class moves by more than the tolerance
(`Expect.inv(threshold=0.1)`). DIR: the probability of the watched class (`towards`, else the original's
*predicted* class) must not move the wrong way by more than the tolerance; a case whose original leaves no room to
fail that way is not counted (`Expect.monotonic`).

Beside CheckList's rate each result keeps RobustLab's former view as a second number, clearly named: the same rule
counted only over cases whose original is predicted correctly (`failure_rate_correct_originals`). And each test says
what a constant answer of each class would score on its cases, and whether the model's rate is no better than that
(`no_better_than_constant`: a constant rate inside the Wilson 95 % interval of the model's rate, RobustLab's choice).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.behaviour.generate import Case
from engine.behaviour.spec import BehaviourTest

SCORING = 2                   # the rule results were scored with; results without it used RobustLab's former rule
NEUTRAL_BAND = (1 / 3, 2 / 3)  # CheckList tutorial 5: a binary P(positive) in this band is read as neutral
Z95 = 1.959963984540054       # the normal quantile of a two-sided 95 % interval
NEUTRAL = "neutral"           # the class name a multi-class model's neutral answer goes by


def judge(test: BehaviourTest, label: int, probs: Sequence[float], original_probs: Sequence[float] | None,
          towards: int | None = None, neutral: int | None = None) -> tuple[bool, bool]:
    """(counted, failed) for one case by CheckList's rule; `label`, `towards`, `neutral` are class ids."""
    probs = np.asarray(probs, dtype=float)
    if test.kind == "MFT":
        if test.neutral_passes and len(probs) == 2:
            return True, bool(probs[label] < NEUTRAL_BAND[0])
        pred = int(np.argmax(probs))
        return True, pred != label and not (test.neutral_passes and pred == neutral)
    original_probs = np.asarray(original_probs, dtype=float)
    original_pred = int(np.argmax(original_probs))
    if test.kind == "INV":
        if int(np.argmax(probs)) == original_pred:
            return True, False
        return True, bool(abs(probs[original_pred] - original_probs[original_pred]) > test.tolerance)
    watched = original_pred if towards is None else towards
    before, change = float(original_probs[watched]), float(probs[watched] - original_probs[watched])
    if test.direction == "up":
        return (False, False) if before <= test.tolerance else (True, change < -test.tolerance)
    return (False, False) if before >= 1 - test.tolerance else (True, change > test.tolerance)


def wilson(failed: int, counted: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a failure rate `failed / counted` (None when nothing was counted). Its ends are
    exactly 0 with no failure and exactly 1 with no pass, as the formula gives, not the float residue of it (a
    constant answer's rate of 0 must lie inside a model's interval for 0 failures)."""
    if counted <= 0:
        return None
    p, n = failed / counted, counted
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if failed == 0 else centre - half), (1.0 if failed == counted else centre + half)


def _class_ids(test: BehaviourTest, label_names: list[str]) -> tuple[dict[str, int], int | None, int | None]:
    ids = {name: i for i, name in enumerate(label_names)}
    return ids, ids[test.towards] if test.towards else None, ids.get(NEUTRAL)


def judged_row(test: BehaviourTest, row: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
    """A case record with `counted`, `failed` (CheckList's rule) and `original_correct` (None for MFT) set from its
    stored probabilities."""
    ids, towards, neutral = _class_ids(test, label_names)
    label = ids[row["label"]]
    original = row.get("original_probs")
    counted, failed = judge(test, label, row["probs"], original, towards, neutral)
    correct = None if original is None else int(np.argmax(original)) == label
    return {**row, "counted": counted, "failed": failed, "original_correct": correct}


def constant_rates(test: BehaviourTest, rows: list[dict[str, Any]],
                   label_names: list[str]) -> dict[str, dict[str, Any]]:
    """What a model answering class c with probability 1 for every text would score on these cases, per class."""
    ids, towards, neutral = _class_ids(test, label_names)
    out = {}
    for c, name in enumerate(label_names):
        one_hot = np.eye(len(label_names))[c]
        verdicts = [judge(test, ids[r["label"]], one_hot, None if r.get("original") is None else one_hot,
                          towards, neutral) for r in rows]
        counted = sum(v[0] for v in verdicts)
        failed = sum(v[1] for v in verdicts)
        out[name] = {"n_counted": counted, "n_failed": failed, "failure_rate": failed / counted if counted else None}
    return out


def within(value: float | None, interval: Sequence[float] | None) -> bool:
    return value is not None and interval is not None and interval[0] <= value <= interval[1]


def summarise(test: BehaviourTest, rows: list[dict[str, Any]], label_names: list[str]) -> dict[str, Any]:
    """A test's summary from its judged case records: CheckList's rate with its Wilson interval, the rate over
    correct originals only, and the constant answers' rates with the classes the model is no better than."""
    counted = sum(r["counted"] for r in rows)
    failed = sum(r["failed"] for r in rows)
    interval = wilson(failed, counted)
    perturbed = test.kind != "MFT"
    correct = [r for r in rows if r.get("original_correct") and r["counted"]] if perturbed else []
    n_bad = sum(r["failed"] for r in correct)
    constant = constant_rates(test, rows, label_names)
    return {"name": test.name, "capability": test.capability, "kind": test.kind, "description": test.description,
            "rule": test.rule(), "n_cases": len(rows), "n_counted": counted, "n_failed": failed,
            "failure_rate": failed / counted if counted else None,
            "interval": None if interval is None else [round(interval[0], 4), round(interval[1], 4)],
            "n_counted_correct_originals": len(correct) if perturbed else None,
            "n_failed_correct_originals": n_bad if perturbed else None,
            "failure_rate_correct_originals": n_bad / len(correct) if correct else None,
            "constant": constant,
            "no_better_than_constant": [name for name, c in constant.items() if within(c["failure_rate"], interval)],
            "scoring": SCORING}


def score_test(test: BehaviourTest, cases: list[Case], probs_of: Mapping[str, np.ndarray],
               label_names: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A test's summary and one record per case (probabilities stored rounded to 4 decimals; the verdicts are
    taken on the unrounded ones)."""
    rows = []
    for case in cases:
        probs = probs_of[case.text]
        original = probs_of[case.original] if case.original is not None else None
        exact = judged_row(test, {**case.row(), "probs": list(probs),
                                  "original_probs": None if original is None else list(original)}, label_names)
        rows.append({**case.row(), "kind": test.kind, "capability": test.capability,
                     "pred": label_names[int(np.argmax(probs))], "probs": [round(float(p), 4) for p in probs],
                     "original_pred": None if original is None else label_names[int(np.argmax(original))],
                     "original_probs": None if original is None else [round(float(p), 4) for p in original],
                     "counted": exact["counted"], "failed": exact["failed"],
                     "original_correct": exact["original_correct"]})
    return summarise(test, rows, label_names), rows
