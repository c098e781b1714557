"""Behaviour results side by side: per test and per capability, for each run and, across a method's runs (its
seeds), as mean ± sample std. A capability's failure rate for one run is the mean of its tests' rates (each test
weighs the same, however many cases it has); a test with no counted case (INV/DIR whose originals were all
predicted wrongly) is left out of that mean. A run that did not learn is left out of every number: a model that
answers one class whatever it reads changes no prediction, so it would pass every INV test.
"""
from __future__ import annotations

from typing import Any

from engine.stats import mean_std


def _rates(results: dict[str, Any]) -> dict[str, float | None]:
    return {t["name"]: t["failure_rate"] for t in results.get("tests", [])}


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
    from engine.training.evaluate import learning_status

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
        tests.append({"name": test["name"], "capability": test["capability"], "kind": test["kind"],
                      "description": test["description"], "rule": test["rule"], "n_cases": test["n_cases"],
                      "failure_rates": per_run, "by_method": _by_method(per_run, methods)})
    per_capability = {run_id: capability_rates(r) for run_id, r in results.items()}
    capabilities = []
    for capability in dict.fromkeys(t["capability"] for t in first.get("tests", [])):
        per_run = {run_id: rates.get(capability) for run_id, rates in per_capability.items()}
        capabilities.append({"capability": capability, "failure_rates": per_run,
                             "by_method": _by_method(per_run, methods)})
    return {"suite": first.get("suite"), "runs": list(results), "methods": methods, "tests": tests,
            "capabilities": capabilities, "not_learned": excluded}


def mean_std_text(cell: dict[str, Any]) -> str:
    """`0.123 ± 0.045` (the spread left out for one run, `–` when nothing was counted)."""
    if cell.get("mean") is None:
        return "–"
    return f"{cell['mean']:.3f}" + (f" ± {cell['std']:.3f}" if cell.get("std") is not None else "")


def method_behaviour(store, rows: list[dict[str, Any]], suite: str) -> dict[str, Any] | None:
    """A Benchmark report's runs compared on a behaviour suite's stored results (the runs in its numbers only,
    grouped by their report row), or None when none of them has results of that suite."""
    from engine.behaviour.runner import stored_results

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
