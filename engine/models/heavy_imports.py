"""The heavy third-party packages, imported for the first time under one lock, whatever thread asks first.

transformers resolves its names lazily (its `_LazyModule` imports a submodule on first attribute access), and
TextAttack imports transformers, flair and NLTK as it loads. Two threads doing either at once (two Playground
tabs of a freshly started server, a page loading a model while TextAttack warms up) can be handed a half-built
module ("cannot import name 'set_seed' from 'transformers'") or trip Python's import-deadlock detection. So the
first import of TextAttack, and every model or tokenizer load (whose `from_pretrained` imports model code
lazily), runs under `IMPORT_LOCK`. Once loaded, the lock costs one uncontended acquire.
"""
from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

IMPORT_LOCK = threading.RLock()   # re-entrant: a guarded loader may call another

# Every TextAttack module RobustLab imports from (engine/attacks): loaded with the package, so a later
# `from textattack.x import y` anywhere only reads sys.modules.
TEXTATTACK_MODULES = ("textattack.attack_results", "textattack.constraints.pre_transformation",
                      "textattack.goal_functions", "textattack.models.wrappers", "textattack.search_methods",
                      "textattack.shared", "textattack.transformations")

F = TypeVar("F", bound=Callable[..., Any])


def serialised(function: F) -> F:
    """`function` (a model or tokenizer loader) runs under IMPORT_LOCK."""
    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with IMPORT_LOCK:
            return function(*args, **kwargs)
    return guarded  # type: ignore[return-value]


def transformers_names(*names: str) -> tuple[Any, ...]:
    """transformers' `names`, resolved (and so imported) under the lock."""
    with IMPORT_LOCK:
        transformers = importlib.import_module("transformers")
        return tuple(getattr(transformers, name) for name in names)


def textattack_module() -> Any:
    """The textattack package with every module RobustLab uses loaded (seconds, once per process)."""
    with IMPORT_LOCK:
        textattack = importlib.import_module("textattack")
        for name in TEXTATTACK_MODULES:
            importlib.import_module(name)
        return textattack


def textattack_recipe(module: str) -> Any:
    """One of TextAttack's own recipe modules (`textattack.attack_recipes.<module>`), imported under the lock."""
    with IMPORT_LOCK:
        textattack_module()
        return importlib.import_module(f"textattack.attack_recipes.{module}")
