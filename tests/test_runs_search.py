"""The Runs page when its search or filters keep no run: it says that nothing matches (the search shown as text),
never that there are no runs yet."""
from __future__ import annotations

from apptest_util import no_exception, page, texts

from engine.store.runs import RunStore
from engine.training.config import TrainConfig


def test_a_search_with_no_match_says_so_and_shows_the_search_as_text(run_home):
    store = RunStore()
    for seed in (0, 1):
        store.create(TrainConfig(model="tiny", seed=seed).to_dict())
    at = no_exception(page("runs.py").run())
    search = "**nothing** [like](https://example.org) this"
    at.text_input(key="runs-f-search").set_value(search).run()
    infos = texts(no_exception(at), "info")
    assert not any("No runs to choose from yet" in i for i in infos), infos
    assert any("No run matches" in i and "2 runs" in i for i in infos), infos
    assert search in texts(at, "text")           # the search as typed, as plain text (never Markdown)
    assert not any(search in m for m in texts(at, "markdown"))
