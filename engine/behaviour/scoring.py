"""Which cases fail, and a test's failure rate.

MFT: a case fails when the prediction differs from its label; every case counts. INV and DIR count only the cases
whose original is predicted correctly (CheckList's rule: a model that already gets the original wrong says nothing
about invariance), and every result says how many that was. INV fails when the prediction changes; DIR when the
probability of the class it watches (`towards`, else the original's label) moves the wrong way by more than the
tolerance.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.behaviour.generate import Case
from engine.behaviour.spec import BehaviourTest


def case_failed(test: BehaviourTest, label: int, probs: np.ndarray, original_probs: np.ndarray | None,
                towards: int | None = None) -> tuple[bool, bool]:
    """(counted, failed) for one case; `label`, `towards` are class ids, `probs` the text's probabilities."""
    if test.kind == "MFT":
        return True, int(np.argmax(probs)) != label
    if int(np.argmax(original_probs)) != label:
        return False, False
    if test.kind == "INV":
        return True, int(np.argmax(probs)) != int(np.argmax(original_probs))
    watched = label if towards is None else towards
    change = float(probs[watched] - original_probs[watched])
    return True, (change < -test.tolerance) if test.direction == "up" else (change > test.tolerance)


def score_test(test: BehaviourTest, cases: list[Case], probs_of: Mapping[str, np.ndarray],
               label_names: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A test's summary (failure rate over the counted cases) and one record per case."""
    ids = {name: i for i, name in enumerate(label_names)}
    towards = ids[test.towards] if test.towards else None
    rows = []
    for case in cases:
        probs = probs_of[case.text]
        original = probs_of[case.original] if case.original is not None else None
        counted, failed = case_failed(test, ids[case.label], probs, original, towards)
        rows.append({**case.row(), "kind": test.kind, "capability": test.capability,
                     "pred": label_names[int(np.argmax(probs))], "probs": [round(float(p), 4) for p in probs],
                     "original_pred": None if original is None else label_names[int(np.argmax(original))],
                     "original_probs": None if original is None else [round(float(p), 4) for p in original],
                     "counted": counted, "failed": failed})
    counted = sum(r["counted"] for r in rows)
    failed = sum(r["failed"] for r in rows)
    summary = {"name": test.name, "capability": test.capability, "kind": test.kind, "description": test.description,
               "rule": test.rule(), "n_cases": len(rows), "n_counted": counted, "n_failed": failed,
               "failure_rate": failed / counted if counted else None,
               "counts_only_correct_originals": test.kind != "MFT"}
    return summary, rows
