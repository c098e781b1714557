"""A benchmark report as tables and text: the methods table, the claims table, CSV and Markdown, and the one
line of numbers a claim part shows. It takes engine.reporting.benchmark's report dicts and computes nothing new."""
from __future__ import annotations

import csv
import io
from typing import Any

from engine.reporting.advglue_score import score_table
from engine.reporting.benchmark import METRICS, metric_titles


def fmt_value(mean: float | None, std: float | None, points: bool = True) -> str:
    if mean is None:
        return "missing"
    scale = 100 if points else 1
    text = f"{mean * scale:.1f}" if points else f"{mean:.3f}"
    if std is None:
        return text
    return text + (f" ± {std * scale:.1f}" if points else f" ± {std:.3f}")


def part_numbers(part: dict[str, Any], level: float = 0.95) -> str:
    """One line of numbers for a claim part: both means, the gap and its interval (accuracies and rates in
    points, anything else with three decimals), which interval it is, and the seeds that would settle it."""
    percent = part["metric"] in METRICS
    scale, unit, digits = (100, " points", 1) if percent else (1, "", 3)

    def num(v: float | None) -> str:
        return "–" if v is None else f"{v * scale:.{digits}f}"

    group = part.get("group_row") or part["group"]
    baseline = part.get("baseline_row") or part["baseline"]
    text = f"{group} {num(part['mean_a'])} (n={part['n_a']}) vs "
    text += (f"{baseline} {num(part['mean_b'])} (n={part['n_b']})" if isinstance(part["baseline"], str)
             else num(part["mean_b"]))
    if part["diff"] is not None:
        text += f": {part['diff'] * scale:+.{digits}f}{unit}"
    if part["ci_low"] is not None:
        label = part.get("ci_label") or f"{int(level * 100)} % CI"
        text += f", {label} [{part['ci_low'] * scale:+.{digits}f}, {part['ci_high'] * scale:+.{digits}f}]"
    if part.get("kind") and part["kind"] != "none":
        text += f" ({part['kind']})"
    if part.get("margin") is not None and part.get("test") == "non-inferiority":
        text += f"; margin {part['margin'] * scale:g}{unit}"
    if part.get("seeds_needed"):
        text += (f"; about {part['seeds_needed']} seeds per side would likely settle it if the true difference "
                 "equals the observed one")
    elif part.get("seeds_over"):
        text += f"; over {part['seeds_over']:,} seeds per side would be needed"
    if part.get("repeats"):
        text += f"; the same comparison as '{part['repeats']}'"
    return text


def methods_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The method rows as display/CSV records (accuracies in points, mean ± std)."""
    return [{"method": m["method"], "runs": m["n_runs"], "seeds": ",".join(map(str, m["seeds"])),
             "did not learn": m["n_not_learned"], "failed": m["n_failed"], "unfinished": m["n_unfinished"],
             **{label: fmt_value(m.get(metric), m.get(f"{metric}_std"))
                for metric, label in metric_titles(report).items()},
             "thresholds": m.get("thresholds") or ""}
            for m in report["methods"]]


def claims_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    level = report.get("level", 0.95)
    return [{"paper": c["paper"], "claim": c["claim"], "paper says": c["paper_says"],
             "verdict": c.get("verdict_budget") or c["verdict"],
             "our numbers": "; ".join(f"{p['text']}: {part_numbers(p, level)}" for p in c["parts"]),
             "why": "; ".join(f"{p['text']}: {p['verdict']} ({p['reason']})" for p in c["parts"]),
             "seeds needed": "; ".join(f"{p['text']}: {p['seeds_text']}" for p in c["parts"]
                                       if p.get("seeds_text")),
             "notes": " ".join(c.get("statements", []))}
            for c in report["claims"]]


def excluded_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs left out of every mean and claim, with the reason."""
    return [{"run": e["run_id"], "method": e["method"], "seed": e["seed"], "why left out": e["reason"]}
            for e in report["excluded"]]


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
                else "."), ""]
    if report["statements"]:
        lines += ["## Read this first", ""] + [f"- {s}" for s in report["statements"]] + [""]
    lines += ["## Methods", "", _markdown_table(methods_table(report))]
    if report["excluded"]:
        lines += ["## Runs left out", "", _markdown_table(excluded_table(report))]
    look = report.get("look")
    lines += ["## Claims", ""] + ([look["text"], ""] if look else []) + [
              "Verdicts from confidence intervals (each part names its level): paired t over seeds when both "
              "methods' runs pair up on seed and training settings, Welch otherwise, a hierarchical bootstrap over "
              "seeds and sentences for AdvGLUE and attack numbers. Each part measured on AdvGLUE or an attack comes "
              "with a clean-accuracy part: dev accuracy no more than 1 point below the comparator.", "",
              _markdown_table(claims_table(report))]
    advglue = report.get("advglue")
    if advglue and (len(advglue["tasks_present"]) > 1 or set(advglue["tasks_present"]) - {"sst2"}):
        lines += ["## AdvGLUE score", "",
                  "Accuracy on each task's AdvGLUE dev set in points (MNLI: the mean of matched and mismatched), "
                  "mean over the counted runs of that task; the score is the macro average over the five tasks "
                  f"({', '.join(advglue['tasks'])}), given only when all five have a model.", "",
                  _markdown_table(score_table(advglue))]
    lines += ["## Scale", "", report["scale_note"] + "\n"]
    return "\n".join(lines)
