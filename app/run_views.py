"""Views of a run's recorded data, shared by the job panel, the Runs page and method pages:
its curves, its final results, and a side-by-side comparison of several runs."""
from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from app.figures import accuracy_figure, comparison_figure, has_series, loss_figure
from app.formatting import distinct_labels, fmt_acc, fmt_duration, learned_text, short_dataset, short_model
from app.plain_text import markdown_text
from engine.data.advglue import run_advglue
from engine.models.inference import label_names_for
from engine.store.runs import Run, RunStore
from engine.training.evaluate import learning_status

LOSS_CAPTION = ("How to read it: the solid line is the training loss (averaged over a few steps), the dotted "
                "line the loss on the dev set at each evaluation. Both should fall; a dev loss that turns up "
                "while the training loss keeps falling means the model has started to overfit.")
ACC_CAPTION = ("How to read it: dev accuracy at each evaluation (higher is better). Diamonds are the final "
               "accuracy on robustness sets such as AdvGLUE-SST2, sentences written to fool models; the gap "
               "between the dev line and a diamond is how much the model loses under attack. The dashed "
               "line is chance.")


def num_labels_of(run: Run) -> int | None:
    """Number of classes, from the saved model's config, else known for the SST-2 datasets."""
    saved = run.dir / "model" / "config.json"
    try:
        return len(json.loads(saved.read_text())["id2label"])
    except (OSError, KeyError, ValueError):
        pass
    dataset = run.config.get("dataset") or ""
    return 2 if dataset.startswith(("sst2", "advglue-sst2")) else None


def show_curves(run: Run, rows: list[dict] | None = None, key: str = "", stacked: bool = False) -> None:
    """Loss and accuracy curves side by side (or one above the other), each with its caption; a message
    when nothing is logged yet."""
    rows = run.metrics() if rows is None else rows
    if not has_series(rows, "train", "loss"):
        if run.config.get("kind", "train") == "train":
            st.info("No training steps logged yet: curves appear after the first few steps.")
        return
    left, right = (st.container(), st.container()) if stacked else st.columns(2)
    with left:
        st.plotly_chart(loss_figure(rows), key=f"loss-{key}{run.id}")
        st.caption(LOSS_CAPTION)
    with right:
        if has_series(rows, "dev", "accuracy") or has_series(rows, "heldout", "accuracy"):
            st.plotly_chart(accuracy_figure(rows, num_labels_of(run)), key=f"acc-{key}{run.id}")
            st.caption(ACC_CAPTION)
        else:
            st.info("No dev evaluation yet: the first comes about a quarter of the way through training.")


def show_results(run: Run, narrow: bool = False) -> None:
    """The final numbers of a finished run as metrics (two rows when `narrow`), and any other results
    in a small table."""
    results = run.results
    if not results:
        st.info("No final results: the run has not finished (or stopped before its final evaluation).")
        return
    if run.config.get("kind", "train") != "train":  # attack, recovery, ...: their own pages explain them
        table = [{"result": k.replace("_", " "), "value": _plain(v)} for k, v in results.items()
                 if isinstance(v, (int, float, str)) and k != "run_id"]
        st.dataframe(pd.DataFrame(table), hide_index=True)
        return
    learning = learning_status(run)
    if learning["learned"] is False:
        st.warning(f"This run did not learn: {learning['reason']}. Its robustness numbers say nothing about its "
                   "method; train longer or at a higher learning rate.", icon=":material/trending_flat:")
    cols = st.columns(3) + st.columns(3) if narrow else st.columns(5)
    cols[0].metric("Dev accuracy", fmt_acc(results.get("dev_accuracy")),
                   help=f"accuracy on {results.get('dev_set', 'the dev set')} after training; chance (always "
                        f"the majority class) is {fmt_acc(learning['chance_accuracy'])}")
    advglue_name, advglue = run_advglue(run.config, results)
    cols[1].metric(f"{advglue_name} accuracy", fmt_acc(advglue),
                   help="accuracy on the AdvGLUE adversarial sentences of the run's own task (MNLI: the mean of "
                        "matched and mismatched, as AdvGLUE scores it); none for a task AdvGLUE has no set for")
    cols[2].metric("Steps", f"{results.get('steps', '–')} / {results.get('total_steps', '–')}")
    cols[3].metric("Training time", fmt_duration(results.get("train_seconds")),
                   help=f"whole run including evaluation: {fmt_duration(results.get('seconds'))}")
    cols[4].metric("Examples / s", results.get("train_examples_per_second", "–"), help=results.get("device"))
    names = label_names_for(run.dir)
    if names:
        st.caption("Classes (id, name): " + " · ".join(f"{i} {markdown_text(name)}" for i, name in enumerate(names)))
    shown = {"label_names", "dev_accuracy", "advglue_accuracy", "steps", "total_steps", "train_seconds", "seconds",
             "train_examples_per_second", "device", "run_id", "status", "method_summary", "dev_set",
             "chance_accuracy", "learned"}
    extra = {k: v for k, v in results.items() if k not in shown and isinstance(v, (int, float, str))}
    summary = results.get("method_summary") or {}
    if extra or summary:
        table = [{"result": k.replace("_", " "), "value": _plain(v)} for k, v in extra.items()]
        table += [{"result": f"method: {k.replace('_', ' ')}", "value": _plain(v)} for k, v in summary.items()]
        st.dataframe(pd.DataFrame(table), hide_index=True)


def _plain(value: object) -> str:
    """A result as text: integers as integers, other numbers to four significant digits."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.4g}"
    return str(value)


def results_table(rows: Sequence[dict], store: RunStore) -> pd.DataFrame:
    """One line per run for comparison: what it was, how it did and whether it learned at all."""
    table = []
    for row in rows:
        run = store.get(row["id"])
        results = run.results if row["status"] == "done" else {}
        table.append({"run": row["id"], "method": row.get("method") or row.get("kind"),
                      "dataset": short_dataset(row.get("dataset")), "model": short_model(row.get("model")),
                      "seed": row.get("seed"), "status": row.get("status"), "dev acc": row.get("dev_accuracy"),
                      "learned": learned_text(learning_status(run)) if results else None,
                      "AdvGLUE acc (own task)": row.get("advglue_accuracy"),
                      "steps": results.get("steps"), "train s": results.get("train_seconds"),
                      "examples/s": results.get("train_examples_per_second")})
    return pd.DataFrame(table)


def show_comparison(store: RunStore, rows: Sequence[dict]) -> None:
    """Overlaid training loss and dev accuracy of the chosen runs, then a table of their results."""
    labels = distinct_labels(list(rows))
    metrics = {labels[row["id"]]: store.get(row["id"]).metrics() for row in rows}
    left, right = st.columns(2)
    with left:
        st.plotly_chart(comparison_figure(metrics, "train", "loss", "Training loss"), key="cmp-loss")
        st.caption("How to read it: one line per run, training loss over steps. Lines that fall faster learn "
                   "the training set faster; that alone says nothing about robustness.")
    with right:
        st.plotly_chart(comparison_figure(metrics, "dev", "accuracy", "Dev accuracy"), key="cmp-acc")
        st.caption("How to read it: one line per run, dev accuracy at each evaluation. Compare where the lines "
                   "end; the table below adds each run's AdvGLUE accuracy on its own task, the robustness score.")
    st.dataframe(results_table(rows, store), hide_index=True, placeholder="–",
                 column_config={"dev acc": st.column_config.NumberColumn(format="%.3f"),
                                "AdvGLUE acc (own task)": st.column_config.NumberColumn(format="%.3f")})
