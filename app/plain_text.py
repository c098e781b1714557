"""Text that must read as itself inside Markdown: what a person typed, and engine messages that repeat it.

Streamlit renders every message (st.error, st.warning, st.info, st.markdown, captions) as Markdown with
LaTeX, so typed text `[click me](https://…)` became a live link, `![img](https://…)` an image the browser
fetched, `$x$` a formula, and a right-to-left override reversed the line. `markdown_text` makes any text
safe to put into such a message; no Streamlit here, so it is tested as a plain function.
"""
from __future__ import annotations

import re

from engine.user_text import visible

WORD_JOINER = "\u2060"   # zero width, no glyph: splits a pattern without changing what is seen
# backslash-escaped anywhere: links, images and :color[...] (all open with "["), emphasis, code, HTML,
# entities, LaTeX, strike-through, tables
INLINE_MARKS = frozenset("\\`*_[<$~&|")
# Streamlit links bare URLs and e-mail addresses and turns :material/x: and :streamlit: into icons after the
# escapes are undone, so a word joiner goes where such a pattern would start.
PATTERN_START = re.compile(r"(?<=:)(?=//|[\w+-])|(?<=@)(?=\w)|(?i:(?<=www))(?=\.)")
# a heading, block quote, list item or setext underline at the start of a line
LINE_START = re.compile(r"^(\s*)([-+=#>]|\d+[.)])", re.MULTILINE)


def markdown_text(text: str) -> str:
    """`text` as Markdown that Streamlit shows exactly as the text reads: no link, image, formula, icon or
    formatting comes out of it, and invisible characters (bidi overrides, zero-width) show as ⟨U+202E⟩."""
    text = PATTERN_START.sub(WORD_JOINER, visible(text))
    text = "".join("\\" + ch if ch in INLINE_MARKS else ch for ch in text)
    return LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
