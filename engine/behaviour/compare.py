"""Behaviour results side by side: per test and per capability, for each run and, across a method's runs (its
seeds), as mean ± sample std. The rates are CheckList's (`scoring`); beside them each test carries RobustLab's
former view (the same rule over correct originals only) and what a constant answer of each class scores. A
capability's failure rate for one run is the mean of its tests' rates (each test weighs the same, however many
cases it has); a test with no counted case (a DIR test whose originals all leave no room to fail) is left out of
that mean. A run that did not learn is left out of every number: a model that answers one class whatever it reads
changes no prediction, so it would pass every INV test.

"No better than a constant answer" (RobustLab's choice of spread): for one run, a constant class's rate inside the
Wilson 95 % interval of the run's rate on the test's cases; for a method's runs, inside the wider of the Wilson
interval of their pooled cases and mean ± sample std over the runs.
"""
from __future__ import annotations

from typing import Any

from engine.behaviour.runner import stored_results
from engine.behaviour.scoring import wilson, within
from engine.stats import mean_std
from engine.training.evaluate import learning_status

COUNTS = {"MFT": "all cases", "INV": "all cases", "DIR": "cases that can fail"}


def _rates(results: dict[str, Any], key: str = "failure_rate") -> dict[str, float | None]:
    return {t["name"]: t.get(key) for t in results.get("tests", [])}


def _tests(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in results.get("tests", [])}


def method_spread(summaries: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The spread a method's rate on one test is judged within: the Wilson 95 % interval of its runs' pooled cases,
    widened to mean ± sample std over the runs when that is wider (None when no case was counted)."""
    counted = [s for s in summaries if s.get("n_counted")]
    pooled = wilson(sum(s["n_failed"] for s in counted), sum(s["n_counted"] for s in counted))
    if pooled is None:
        return None
    mean, std = mean_std([s["failure_rate"] for s in counted])
    if std is None:
        return pooled
    return min(pooled[0], mean - std), max(pooled[1], mean + std)


def constant_flags(summaries: list[dict[str, Any]]) -> list[str] | None:
    """The classes whose constant answer a method's runs are no better than on one test (see `method_spread`); a
    class's constant rate is pooled over the runs' cases. None when the results predate the constant rates."""
    known = [s for s in summaries if s.get("constant") is not None and s.get("n_counted")]
    if not known:
        return None
    spread = method_spread(known)
    flagged = []
    for name in known[0]["constant"]:
        counted = sum(s["constant"].get(name, {}).get("n_counted") or 0 for s in known)
        failed = sum(s["constant"].get(name, {}).get("n_failed") or 0 for s in known)
        if counted and within(failed / counted, spread):
            flagged.append(name)
    return flagged


def capability_rates(results: dict[str, Any]) -> dict[str, float | None]:
    """One run's failure rate per capability: the mean over its tests that counted any case."""
    by_capability: dict[str, list[float]] = {}
    for test in results.get("tests", []):
        values = by_capability.setdefault(test["capability"], [])
        if test["failure_rate"] is not None:
            values.append(test["failure_rate"])
    return {cap: (sum(v) / len(v) if v else None) for cap, v in by_capability.items()}


def _by_method(values: dict[str, float | None], methods: dict[str, str]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[float]] = {}
    for run_id, method in methods.items():
        grouped.setdefault(method, [])
        if values.get(run_id) is not None:
            grouped[method].append(values[run_id])
    out = {}
    for method, seeds in grouped.items():
        mean, std = mean_std(seeds)
        out[method] = {"mean": mean, "std": std, "n_runs": len(seeds)}
    return out


def not_learned(store, run_ids: list[str]) -> dict[str, str]:
    """The runs among `run_ids` known not to have learned (engine.training.evaluate.learning_status), each with why."""
    out = {}
    for run_id in run_ids:
        status = learning_status(store.get(run_id))
        if status["learned"] is False:
            out[run_id] = status["reason"]
    return out


def compare_runs(results: dict[str, dict[str, Any]], methods: dict[str, str],
                 excluded: dict[str, str] | None = None) -> dict[str, Any]:
    """Tests and capabilities with each run's failure rate and each method's mean ± std over its runs.
    `results`: run id -> a behaviour run's results (same suite); `methods`: run id -> the method it is grouped in;
    `excluded`: run id -> why its numbers are left out (`not_learned`)."""
    excluded = excluded or {}
    first = next(iter(results.values()), {})
    results = {run_id: r for run_id, r in results.items() if run_id not in excluded}
    methods = {run_id: m for run_id, m in methods.items() if run_id not in excluded}
    tests = []
    for test in first.get("tests", []):
        per_run = {run_id: _rates(r).get(test["name"]) for run_id, r in results.items()}
        correct = {run_id: _rates(r, "failure_rate_correct_originals").get(test["name"])
                   for run_id, r in results.items()}
        summaries = {run_id: _tests(r).get(test["name"]) or {} for run_id, r in results.items()}
        grouped: dict[str, list[dict]] = {}
        for run_id, method in methods.items():
            grouped.setdefault(method, []).append(summaries[run_id])
        tests.append({"name": test["name"], "capability": test["capability"], "kind": test["kind"],
                      "description": test["description"], "rule": test["rule"], "n_cases": test["n_cases"],
                      "counts": COUNTS.get(test["kind"], "all cases"),
                      "failure_rates": per_run, "by_method": _by_method(per_run, methods),
                      "correct_originals_rates": correct,
                      "correct_originals_by_method": _by_method(correct, methods),
                      "constant": {name: c["failure_rate"] for name, c in (test.get("constant") or {}).items()},
                      "no_better_than_constant": {run_id: s.get("no_better_than_constant")
                                                  for run_id, s in summaries.items()},
                      "method_no_better_than_constant": {m: constant_flags(group) for m, group in grouped.items()},
                      "missing": {run_id: s["missing"] for run_id, s in summaries.items() if s.get("missing")},
                      "former_rates": {run_id: s["former_failure_rate"] for run_id, s in summaries.items()
                                       if "former_failure_rate" in s}})
    per_capability = {run_id: capability_rates(r) for run_id, r in results.items()}
    capabilities = []
    for capability in dict.fromkeys(t["capability"] for t in first.get("tests", [])):
        per_run = {run_id: rates.get(capability) for run_id, rates in per_capability.items()}
        capabilities.append({"capability": capability, "failure_rates": per_run,
                             "by_method": _by_method(per_run, methods)})
    return {"suite": first.get("suite"), "runs": list(results), "methods": methods, "tests": tests,
            "capabilities": capabilities, "not_learned": excluded}


def method_behaviour(store, rows: list[dict[str, Any]], suite: str) -> dict[str, Any] | None:
    """A Benchmark report's runs compared on a behaviour suite's stored results (the runs in its numbers only,
    grouped by their report row), or None when none of them has results of that suite."""
    results, methods = {}, {}
    for row in rows:
        found = stored_results(store, row["run_id"], suite) if row.get("included") else None
        if found is not None:
            results[row["run_id"]] = found
            methods[row["run_id"]] = row.get("row") or row["method"]
    return compare_runs(results, methods) if results else None


def capability_table(comparison: dict[str, Any], methods: list[str],
                     beside: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Rows for a page or a note: each capability's failure rate per method in points (mean ± std over seeds),
    after an optional first row of other numbers (`beside`: method -> text, e.g. accuracy under attack)."""
    def points(cell: dict[str, Any] | None) -> str:
        if not cell or cell.get("mean") is None:
            return "–"
        return f"{cell['mean'] * 100:.1f}" + (f" ± {cell['std'] * 100:.1f}" if cell.get("std") is not None else "")

    rows = [{"capability": label, **{m: beside.get(m, "–") for m in methods}} for label in
            ["accuracy under attack"] if beside]
    rows += [{"capability": cap["capability"], **{m: points(cap["by_method"].get(m)) for m in methods}}
             for cap in comparison["capabilities"]]
    return rows
