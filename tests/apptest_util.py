"""Helpers shared by the AppTest page tests: load a page, fail on any exception it raised, read its texts (as
written, or as a reader sees escaped Markdown) and the titles of its charts.

Import it as `apptest_util`, not `tests.apptest_util`: flair installs a top-level `tests` package that shadows
this folder (see browser_util)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for one script run: the first run of a page imports torch and transformers


def page(name: str) -> AppTest:
    """A page of pages/ (or app/main.py when `name` is a path) ready to `.run()`."""
    path = ROOT / "pages" / name if "/" not in name else ROOT / name
    return AppTest.from_file(str(path), default_timeout=TIMEOUT)


def no_exception(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at, kind: str) -> list[str]:
    """The values of every element of one kind (title, info, error, caption, ...)."""
    return [str(e.value) for e in getattr(at, kind)]


def read_as(markdown: str) -> str:
    """What a reader sees of Markdown made by `app.plain_text.markdown_text`: escapes undone, word joiners gone."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def jobs_run_in_process(monkeypatch) -> None:
    """Make `jobs.submit` execute the job here and now (a worker process would outlive the test)."""
    from engine.execution import jobs

    def run_here(store, config, kind="train", parent=None):
        run = store.create(config, kind=kind, parent=parent)
        jobs.execute(store, run, lambda: False)
        return run

    monkeypatch.setattr(jobs, "submit", run_here)
