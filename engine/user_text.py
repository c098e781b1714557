"""What a person typed, echoed back in a message (CLI error or page): shortened, invisible characters shown.

A message says what was wrong with the input, so it repeats it; repeated in full, a 12,000-character paste buries
the page or the terminal, and a right-to-left override or a zero-width character silently reverses or hides part
of the message. Every echo goes through `quoted` (inside a sentence, in quotes) or `shown` (a text on its own,
like the Playground's attack header). The page escapes Markdown on top of this (`app.plain_text.markdown_text`).
"""
from __future__ import annotations

import unicodedata

ECHO_CHARS = 60                            # characters of an input a message repeats
INVISIBLE = ("Cc", "Cf", "Zl", "Zp")       # controls, format characters (bidi, zero-width), line/paragraph separators


def codepoint(ch: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`: what a hover note or a mark says about a character."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def is_invisible(ch: str) -> bool:
    """A character that is not seen but changes or hides what is seen (tab and newline excepted)."""
    return ch not in "\t\n\r" and unicodedata.category(ch) in INVISIBLE


def visible(text: str) -> str:
    """Each invisible character written as its code point, e.g. ⟨U+202E⟩, so nothing is reversed or hidden."""
    return "".join(f"⟨U+{ord(ch):04X}⟩" if is_invisible(ch) else ch for ch in text)


def _cut(text: str, limit: int) -> tuple[str, str]:
    """The first `limit` characters, and what says how long the whole was when it was cut."""
    if len(text) <= limit:
        return text, ""
    return text[:limit], f"… ({len(text):,} characters)"


def shown(text: str, limit: int = ECHO_CHARS) -> str:
    """A typed text as one line: its first `limit` characters with the invisible ones shown, runs of white space
    as one space, and the full length when it was cut."""
    kept, rest = _cut(text, limit)
    return " ".join(visible(kept).split()) + rest


def quoted(value: object, limit: int = ECHO_CHARS) -> str:
    """A typed value inside a sentence: `'abc'` as repr writes it, cut after `limit` characters
    (`'abcd'… (12,000 characters)`), invisible characters shown."""
    text = value if isinstance(value, str) else repr(value)
    kept, rest = _cut(text, limit)
    return (repr(visible(kept)) if isinstance(value, str) else visible(kept)) + rest

def name_list(text: str) -> list[str]:
    """`vanilla, uegr` -> ["vanilla", "uegr"]; empty parts are dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def int_list(text: str, what: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3]; a clear message naming `what` for anything else."""
    try:
        return [int(v) for v in name_list(text)]
    except ValueError:
        raise ValueError(f"{what} takes whole numbers separated by commas (got {quoted(text)})") from None


def seed_list(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2] for a suite's seeds."""
    try:
        return [int(part) for part in name_list(text)]
    except ValueError:
        raise ValueError(f"seeds are whole numbers separated by commas, like 0,1,2 (got {quoted(text)})") from None


class FlagError(ValueError):
    """A flag's value refused before any run exists; the message starts with the flag (`--n: ...`)."""
