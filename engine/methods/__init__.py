"""The method registry: every module in this package that defines `METHODS = {name: class}` is found.

A new method is one new file here; nothing else changes.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import Any

from engine.methods.base import Method, Preset, Setting, SettingError, StepContext
from engine.user_text import quoted

__all__ = ["Method", "Preset", "Setting", "SettingError", "StepContext", "registry", "make_method"]


@lru_cache(maxsize=1)
def registry() -> dict[str, type[Method]]:
    found: dict[str, type[Method]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.update(getattr(module, "METHODS", {}))
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "vanilla", kv[0])))


def make_method(name: str, settings: dict[str, Any] | None = None) -> Method:
    methods = registry()
    if name not in methods:
        raise SettingError(f"unknown method {quoted(name)}; known: {', '.join(methods)}")
    return methods[name](settings)
