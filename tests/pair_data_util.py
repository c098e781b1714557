"""Generated sentence-pair data for the pair tests: an RTE-like entailment task a model can learn from a few
hundred rows (the second sentence is entailed when it restates who saw whom in the first, and not when it names
someone the first never mentions), written as a CSV or as GLUE's TSV files."""
from __future__ import annotations

import csv
import random
from pathlib import Path

NOUNS = ("cat", "dog", "horse", "farmer", "teacher", "pilot", "doctor", "child", "singer", "baker", "sailor",
         "painter", "student", "driver", "nurse", "miner", "judge", "clerk", "guard", "chef")
ADJECTIVES = ("old", "young", "tall", "quiet", "happy", "tired", "brave", "small")
ENTAILED, NOT_ENTAILED = "entailment", "not_entailment"


def rte_like_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """n (sentence1, sentence2, label) rows, the two labels alternating."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b, c, stranger = rng.sample(NOUNS, 4)
        first = f"the {rng.choice(ADJECTIVES)} {a} saw the {rng.choice(ADJECTIVES)} {b} near the {c} ."
        if i % 2 == 0:
            rows.append((first, f"the {a} saw the {b} .", ENTAILED))
        else:
            rows.append((first, f"the {stranger} saw the {b} .", NOT_ENTAILED))
    return rows


def write_pair_csv(path: Path, rows: list[tuple[str, str, str]],
                   header: tuple[str, str, str] = ("sentence1", "sentence2", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_glue_rte(folder: Path, rows: list[tuple[str, str, str]], file: str) -> Path:
    """GLUE's RTE layout: folder/rte/<file>, tab-separated `index sentence1 sentence2 label`, no quoting."""
    target = folder / "rte" / file
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = ["index\tsentence1\tsentence2\tlabel", *(f"{i}\t{a}\t{b}\t{y}" for i, (a, b, y) in enumerate(rows))]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
