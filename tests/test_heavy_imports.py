"""The first attack-side imports of a process, made by several threads at once, all succeed: transformers'
lazy names and TextAttack are imported once under one lock (engine.models.heavy_imports), as two Playground tabs of a
freshly started server need. Each try is a fresh interpreter, since a module is imported once per process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Eight threads wait at a barrier, then each makes its first import through a different RobustLab entry point.
RACE = r"""
import json, threading
from engine.models.heavy_imports import transformers_names
from engine.attacks.wrapper import import_textattack
from engine.attacks.recipes import get_recipe
from engine.models.loading import build_classifier, load_tokenizer

def recipe_module():
    from engine.models.heavy_imports import textattack_recipe
    textattack_recipe("deepwordbug_gao_2018")

entries = [import_textattack, lambda: transformers_names("set_seed"), lambda: build_classifier("tiny", 2),
           recipe_module, lambda: transformers_names("AutoModelForSequenceClassification", "AutoTokenizer"),
           import_textattack, lambda: load_tokenizer("tiny"), lambda: transformers_names("BertConfig")]
barrier = threading.Barrier(len(entries))
errors = []

def first_import(entry):
    barrier.wait()
    try:
        entry()
    except Exception as err:
        errors.append(f"{type(err).__name__}: {err}")

threads = [threading.Thread(target=first_import, args=(entry,)) for entry in entries]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(errors))
"""


@pytest.mark.slow
def test_threads_making_their_first_attack_side_imports_at_once_all_succeed():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for attempt in range(3):   # the race is a matter of timing: without the lock each try failed here
        done = subprocess.run([sys.executable, "-c", RACE], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
        errors = json.loads(done.stdout.strip().splitlines()[-1])
        assert errors == [], f"try {attempt + 1}: {errors}"
