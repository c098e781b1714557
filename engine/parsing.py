"""Comma-separated lists typed by a person (CLI flags and page inputs alike), with messages that say
what to type instead."""
from __future__ import annotations

from engine.user_text import quoted


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
