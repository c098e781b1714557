"""The Healing Powers claim on one grid, as the Recovery page shows it: the verdict of each part judged per
seed (engine.recovery.claims), the statements that qualify it (seeds left out, a clean baseline that did
not learn), and the bottom-versus-top numbers per k, which describe and never conclude."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from engine.recovery.views import bottom_vs_top

CONCLUSIONS = {   # the bottom-below-top part's verdict, in words: the page concludes only from it
    "supported": "bottom-layer corruption recovered less than top-layer, as the paper reports",
    "not supported": "bottom-layer corruption did not recover less than top-layer, unlike the paper",
    "inconclusive": "this grid does not settle whether bottom-layer corruption hurts more",
}
# the same when a clean baseline failed or did not learn: only about the seeds that learned, never set against
# the paper, whose grid had no seed left out
CONCLUSIONS_WITHOUT_SOME_SEEDS = {
    "supported": "bottom-layer corruption recovered less than top-layer on the {n} seeds whose clean baseline "
                 "learned",
    "not supported": "bottom-layer corruption did not recover less than top-layer on the {n} seeds whose clean "
                     "baseline learned",
}


def fmt_part(part: dict[str, Any]) -> str:
    """One line of a part: verdict, the mean against its baseline, the gap's interval and test, why."""
    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    baseline = part["baseline"] if isinstance(part["baseline"], str) else num(part["baseline"])
    text = f"**{part['text']}**: *{part['verdict']}*. {part['group']} {num(part['mean_a'])} vs {baseline}"
    if part["ci_low"] is not None:
        text += (f", difference {part['diff']:+.3f}, 95 % CI [{part['ci_low']:+.3f}, {part['ci_high']:+.3f}] "
                 f"({part['kind']}, n = {part['n_a']} seeds)")
    text += f". {part['reason'].capitalize()}."
    if part.get("seeds_text"):
        text += f" {part['seeds_text']}"
    return text


def conclusion(part: dict[str, Any], seeds_left_out: bool) -> str:
    """The bottom-below-top part's verdict in words; set against the paper only when no seed was left out for a
    clean baseline that failed or did not learn."""
    if seeds_left_out and part["verdict"] in CONCLUSIONS_WITHOUT_SOME_SEEDS:
        return CONCLUSIONS_WITHOUT_SOME_SEEDS[part["verdict"]].format(n=part["n_a"])
    return CONCLUSIONS[part["verdict"]]


def healing_panel(claim: dict[str, Any], summary: list[dict[str, Any]], clean_notes: Sequence[str] = ()) -> None:
    """The claim's verdict and parts, its statements (but the grid's description and `clean_notes`, the seeds
    left out for their clean baseline, already on the page), then the per-k bottom and top numbers without a
    conclusion of their own."""
    st.markdown(f"**Healing claim on this grid: {claim['verdict']}**")
    if claim.get("verdict_budget"):
        st.caption(f"Verdict: {claim['verdict_budget']}. Recovery is read at the end of this budget, so \"does not "
                   "fully recover\" is partly \"recovers slowly\": a longer budget (Fine-tuning budget, above) may "
                   "recover more.")
    bottom_top = next(p for p in claim["parts"] if p["group"] == "bottom" and p["baseline"] == "top")
    st.markdown(f"Bottom or top: {conclusion(bottom_top, bool(clean_notes))}.")
    for part in claim["parts"]:
        st.markdown(f"- {fmt_part(part)}")
    for statement in claim["statements"][1:]:     # the first names the grid, shown above
        if statement not in clean_notes:
            st.caption(statement)
    rows = bottom_vs_top(summary)
    if rows:
        st.markdown("**Per k** (chance-corrected recovery ratio, raw dev accuracy in brackets; means over seeds)")
        for v in rows:
            emb = " (+ embeddings)" if v["embeddings"] else ""
            st.markdown(f"- k = {v['k']}{emb}: bottom **{v['bottom']:.3f}** ({v['bottom_accuracy']:.3f}), "
                        f"top **{v['top']:.3f}** ({v['top_accuracy']:.3f}); lower: {v['worse']}.")
