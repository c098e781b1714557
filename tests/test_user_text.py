"""Typed text echoed in messages: shortened, invisible characters shown, and shown as text in Markdown.

The helpers (`engine.user_text`, `app.plain_text`) are tested as plain functions; the pages (AppTest) and the
CLI are tested with the inputs a newcomer typed: a Markdown link and image, a right-to-left override, HTML and
strings of 1,700 to 12,000 characters. tests/test_browser_hostile.py checks the same in a real browser.
"""
from __future__ import annotations

import re

import pytest
from apptest_util import no_exception, page, read_as

from app.plain_text import markdown_text
from engine.user_text import quoted, shown, visible

LINK = "[click me](https://evil.invalid/link)"
IMAGE = "![img](https://evil.invalid/img.png)"
RTL = "\u202egnp.exe a good movie"
HTML = "<img src=x onerror=alert(1)>"
LONG = ("lorem ipsum dolor sit amet " * 500)[:12_000]
MESSAGE_CHARS = 400    # a message that repeats a typed value stays about this short, whatever was typed


def assert_shown_as_text(markdown: str) -> None:
    """No Markdown construct, formula or bidi control comes out of this message."""
    assert not re.search(r"(?<!\\)[\[<$]", markdown), markdown   # no link, image or :color[], no HTML, no LaTeX
    assert not re.search(r"https?://|www\.", markdown), markdown                        # no bare URL to link
    assert "\u202e" not in markdown, markdown


# ---------------------------------------------------------------- the helpers

def test_short_values_are_quoted_as_repr_and_long_ones_are_cut_with_their_length():
    assert quoted("0, x") == repr("0, x") and quoted(42) == "42"
    assert quoted(LONG) == repr(LONG[:60]) + "… (12,000 characters)"
    assert shown(LONG, 20) == LONG[:20].strip() + "… (12,000 characters)"
    assert shown("a\n\n  b") == "a b"


def test_invisible_characters_are_written_as_their_code_point():
    assert visible(RTL) == "⟨U+202E⟩gnp.exe a good movie"
    assert visible("zero\u200bwidth\x07 tab\tnewline\n") == "zero⟨U+200B⟩width⟨U+0007⟩ tab\tnewline\n"
    assert quoted(RTL) == repr("⟨U+202E⟩gnp.exe a good movie") and shown(RTL).startswith("⟨U+202E⟩")


@pytest.mark.parametrize("text", [LINK, IMAGE, RTL, HTML, "$x^2$ and $$y$$", ":material/home: :streamlit: :red[x]",
                                  "see https://evil.invalid or www.evil.invalid or me@evil.invalid",
                                  "**bold** _it_ `code` ~~gone~~ a|b", "# heading\n- item\n1. first\n> quote"])
def test_markdown_text_reads_as_the_text_and_makes_nothing_of_it(text):
    markdown = markdown_text(text)
    assert read_as(markdown) == visible(text)
    assert_shown_as_text(markdown)
    assert not re.search(r"(?<!\\)[*_`~#\[]|:(material|streamlit|red)\b|^\s*([-+>]|\d+\.)", markdown, re.MULTILINE)


# ---------------------------------------------------------------- pages

HOSTILE = [LINK, IMAGE, RTL, HTML, "a" * 1_700, LONG]


@pytest.mark.parametrize("typed", HOSTILE)
def test_train_model_field_refuses_hostile_names_with_a_short_message(run_home, typed):
    from engine.store.runs import RunStore

    at = no_exception(page("train.py").run())
    at.radio(key="train-model").set_value("other").run()
    at.text_input(key="train-model-path").input(typed).run()
    warnings = [w.value for w in no_exception(at).warning]
    assert warnings and all(len(w) < MESSAGE_CHARS for w in warnings), warnings
    for warning in warnings:
        assert_shown_as_text(warning)
    at.button(key="train-start").click().run()
    errors = [e.value for e in no_exception(at).error if "Not started" in e.value]
    assert errors and all(len(e) < MESSAGE_CHARS for e in errors), errors
    assert_shown_as_text(errors[0])
    if len(typed) > 1_000:     # refused from the text alone, before the file system is asked
        assert "too long for a folder or hub id" in warnings[0]
        assert f"({len(typed.strip()):,} characters)" in errors[0]       # the form strips what is typed
    assert RunStore().list() == []


@pytest.mark.parametrize("typed", [LINK, RTL, LONG])
def test_recovery_seeds_echo_the_input_as_text(run_home, typed):
    at = no_exception(page("recovery.py").run())
    at.radio(key="rec-model").set_value("tiny").run()
    at.text_input(key="rec-levels").set_value("1").run()
    at.text_input(key="rec-seeds").set_value(typed).run()
    errors = [e.value for e in no_exception(at).error]
    assert len(errors) == 1 and "Seeds takes whole numbers" in read_as(errors[0]) and len(errors[0]) < MESSAGE_CHARS
    assert_shown_as_text(errors[0])
    assert at.button(key="rec-queue").disabled


@pytest.mark.parametrize("typed", [IMAGE, RTL, LONG])
def test_benchmark_seeds_echo_the_input_as_text(run_home, typed):
    at = no_exception(page("benchmark.py").run())
    at.text_input(key="bench-seeds").input(typed).run()
    errors = [e.value for e in no_exception(at).error]
    assert len(errors) == 1 and "seeds are whole numbers" in read_as(errors[0]) and len(errors[0]) < MESSAGE_CHARS
    assert_shown_as_text(errors[0])


# ---------------------------------------------------------------- CLI

def test_cli_refuses_a_long_model_name_in_one_short_line(run_home, capsys):
    from engine.__main__ import main
    from engine.store.runs import RunStore

    assert main(["train", "--model", LONG, "--train-size", "16", "--batch-size", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and len(err) < MESSAGE_CHARS and "(12,000 characters)" in err, err[:500]
    assert RunStore().list() == []


def test_cli_echoes_bad_seeds_shortened(run_home, capsys):
    from engine.__main__ import main

    assert main(["recover", "--model", "tiny", "--seeds", LONG]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err) < MESSAGE_CHARS and "--seeds takes whole numbers" in err and "(12,000 characters)" in err


# ---------------------------------------------------------------- Playground

@pytest.fixture
def playground(tiny_run, tmp_path, monkeypatch):
    from test_attacks import sensitive_tiny_run

    home = tmp_path / "runs"
    _, run = sensitive_tiny_run(tiny_run, home)
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = page("playground.py")
    at.session_state["pg-run-a"] = run.id   # picked by hand: the tiny run stays at chance, never a default
    return no_exception(at.run())


def test_playground_says_a_very_long_word_is_one_unknown_token(playground):
    at = playground
    at.text_area(key="pg-text").input("a fine film " + "w" * 10_000).run()
    notices = [read_as(w.value) for w in no_exception(at).warning]
    assert "A word of 10,000 characters was read as one unknown token [UNK]" in " ".join(notices), notices
    at.text_area(key="pg-text").input("a fine film").run()
    assert not any("unknown token" in w.value for w in no_exception(at).warning)


def test_attack_header_shows_the_typed_text_as_text(playground):
    at = playground
    at.text_area(key="pg-text").input(f"{RTL} {LINK} {IMAGE}").run()
    at.number_input(key="pg-budget-queries").set_value(20)
    at.button(key="pg-attack").click().run()
    live = at.session_state["pg-live"]
    assert live.wait(120), "the attack did not end"
    header = next(m.value for m in no_exception(at.run()).markdown if m.value.startswith("**Attack with"))
    assert_shown_as_text(header)
    assert "⟨U+202E⟩gnp" in header and "click me" in header


def test_a_typed_method_setting_is_shown_as_text_in_its_error(run_home):
    """Train -> IM-BERT -> layers: what a person typed comes back in the refusal as text, not as a live link."""
    at = no_exception(page("train.py").run())
    at.selectbox(key="train-method").set_value("im-bert").run()
    hostile = "[click me](https://evil.example/x) **bold** $x^2$"
    at = no_exception(at.text_input(key="train-settings-im-bert-layers").input(hostile).run())
    shown = [e.value for e in at.error]
    assert any("click me" in e for e in shown), shown
    for markdown in shown:
        assert "](https://" not in markdown and "**bold**" not in markdown and "$x^2$" not in markdown, markdown
    assert any("[click me](https://evil.example/x) **bold** $x^2$" in read_as(e) for e in shown), shown
