"""Where RobustLab keeps things: the project root, the data folder, the run store, the NLTK data."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The data folder: `ROBUSTLAB_DATA` if set, else `data/` in the project (setup links it)."""
    return Path(os.environ.get("ROBUSTLAB_DATA") or PROJECT_ROOT / "data")


def runs_home() -> Path:
    """The run store: `ROBUSTLAB_HOME` if set, else `runs/` in the project."""
    return Path(os.environ.get("ROBUSTLAB_HOME") or PROJECT_ROOT / "runs")


def nltk_data_dir() -> Path:
    return Path(os.environ.get("NLTK_DATA") or PROJECT_ROOT / ".nltk_data")


def use_project_nltk_data() -> None:
    """Point NLTK (and so textattack) at the folder setup built, before anything imports nltk."""
    os.environ.setdefault("NLTK_DATA", str(nltk_data_dir()))
