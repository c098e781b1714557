"""The store's one error, below every store module (runs, exports, archives raise it alike)."""
from __future__ import annotations


class RunError(ValueError):
    """A run does not exist or cannot take the requested action; the message says why."""
