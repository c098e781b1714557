"""Extra CLI commands: each module here defines `add_parser(subparsers)`; `python -m engine` finds them all.

A capability adds its command as one new file here, touching nothing else. Keep heavy imports
(textattack, captum) inside the command function so `python -m engine --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil


def add_all(subparsers: argparse._SubParsersAction) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}").add_parser(subparsers)
