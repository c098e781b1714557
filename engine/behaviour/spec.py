"""A behavioural test suite as data: a JSON file with shared word lists and a list of tests, read and checked here.

A test is MFT (templates with the label each case must get), INV (a perturbation that must not change the
prediction) or DIR (a perturbation or a pair of templates that must move the probability of a class up or down by
more than a tolerance; an INV test tolerates a changed prediction whose probability moved by no more than
it). An MFT test with `"neutral_passes": true` expects "not the other class" (CheckList's "not negative"), so a
neutral answer passes. Its cases come from `templates` (text with `{slot}`s filled from word lists) or from
`sentences` (an evaluation set's name such as `sst2-dev`, or a list of `{"text", "label"}`). Every problem a
file has is reported at once, each naming the line and the test (`BehaviourSuiteError.problems`). JSON rather than
YAML: the standard library reads it, and it is what the pages export.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.behaviour.perturb import PERTURBATIONS, WHERE
from engine.limits import path_problem
from engine.user_text import quoted

KINDS = ("MFT", "INV", "DIR")
DIRECTIONS = ("up", "down")
DEFAULT_CASES = 100
MAX_CASES = 2000                 # per test: a suite stays a few seconds of prediction per model
MAX_TESTS = 200                  # per suite: the built-in has 12; CheckList's largest released suite has ~100
MAX_SUITE_CASES = 50_000         # per suite (the sum of n): about 3 min of MiniLM prediction on a 2-core CPU
MAX_SUITE_BYTES = 5_000_000      # a suite file: ~100x the built-in; anything larger is not a hand-written suite
DEFAULT_TOLERANCE = 0.1          # CheckList's: INV's default threshold, and the DIR tolerance its sentiment suite uses
SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILT_IN = {"sentiment": Path(__file__).with_name("suites") / "sentiment.json"}
TEST_KEYS = {"name", "kind", "capability", "description", "templates", "sentences", "perturbation", "direction",
             "towards", "tolerance", "n", "words", "neutral_passes"}


class BehaviourSuiteError(ValueError):
    """A suite file that cannot be used; `problems` lists each one, naming its line and test."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Template:
    """One template: its text, the label of its cases (MFT; the original's label for INV/DIR), and, for a DIR or
    INV pair, the perturbed text filled with the same words."""
    text: str
    label: str | None = None
    perturbed: str | None = None


@dataclass(frozen=True)
class BehaviourTest:
    name: str
    kind: str
    capability: str
    description: str
    templates: tuple[Template, ...]
    sentences: str | tuple[tuple[str, str], ...] | None     # an evaluation set's name, or (text, label) pairs
    perturbation: dict[str, Any] | None
    direction: str | None
    towards: str | None
    tolerance: float
    n: int
    words: dict[str, tuple[str, ...]]
    line: int
    neutral_passes: bool = False     # MFT only: a neutral answer passes too (CheckList's "not negative")

    def labels(self) -> set[str]:
        """The class names the test names (checked against a model's classes before it runs)."""
        named = {t.label for t in self.templates if t.label is not None} | {self.towards} - {None}
        if isinstance(self.sentences, tuple):
            named |= {label for _, label in self.sentences}
        return named

    def rule(self) -> str:
        """How a case of this test fails, in words (the results repeat it)."""
        if self.kind == "MFT" and self.neutral_passes:
            return ("fails when the prediction is neither the expected label nor neutral (a two-class model: "
                    "P(expected) below 1/3, CheckList's neutral band); every case counts")
        if self.kind == "MFT":
            return "fails when the prediction differs from the expected label; every case counts"
        if self.kind == "INV":
            return (f"fails when the prediction changes and the probability of the original's predicted class moves "
                    f"by more than {self.tolerance:g}; every case counts")
        target = f"P({self.towards})" if self.towards else "the probability of the original's predicted class"
        if self.direction == "up":
            return (f"fails when {target} moves down by more than {self.tolerance:g}; a case whose original has "
                    f"{target} at most {self.tolerance:g} cannot fail and is not counted")
        return (f"fails when {target} moves up by more than {self.tolerance:g}; a case whose original has "
                f"{target} at least {1 - self.tolerance:g} cannot fail and is not counted")


@dataclass(frozen=True)
class BehaviourSuite:
    name: str
    description: str
    tests: tuple[BehaviourTest, ...]
    source: dict[str, Any]          # the file's data as read: stored with each result, so cases can be made again

    @property
    def digest(self) -> str:
        """A fingerprint of the suite's content: a stored result is reused only for the same digest."""
        return hashlib.sha256(json.dumps(self.source, sort_keys=True).encode()).hexdigest()[:16]

    def labels(self) -> set[str]:
        return set().union(*(t.labels() for t in self.tests)) if self.tests else set()


def load_behaviour_suite(ref: str) -> BehaviourSuite:
    """A built-in suite by name (`sentiment`) or a suite file by path."""
    problem = path_problem(ref)
    if problem:
        raise BehaviourSuiteError([f"{quoted(ref)} cannot name a suite file: {problem}"])
    path = BUILT_IN.get(ref) or Path(ref)
    if not path.is_file():
        raise BehaviourSuiteError([f"{quoted(ref)} is neither a built-in suite ({', '.join(BUILT_IN)}) nor a file"])
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise BehaviourSuiteError([f"{path.name} is {path.stat().st_size:,} bytes; a suite file is at most "
                              f"{MAX_SUITE_BYTES:,}"])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise BehaviourSuiteError([f"{path.name} is not UTF-8 text ({err.reason} at byte {err.start})"]) from err
    return parse_behaviour_suite(text, fallback_name=path.stem)


def parse_behaviour_suite(text: str, fallback_name: str = "custom") -> BehaviourSuite:
    """Read and check a suite from JSON text; every problem is reported at once (`BehaviourSuiteError`)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BehaviourSuiteError([f"line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})"]) from err
    return behaviour_suite_from_data(data, text, fallback_name)


def behaviour_suite_from_data(data: Any, text: str | None = None, fallback_name: str = "custom") -> BehaviourSuite:
    """Check a suite's data (as a file or a page's editor gives it); `text`, when known, gives line numbers."""
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise BehaviourSuiteError(['the file must be a JSON object with a "tests" list (and optionally "name", '
                              '"description" and "words")'])
    if len(data["tests"]) > MAX_TESTS:
        raise BehaviourSuiteError([f'"tests" has {len(data["tests"]):,} tests; a suite has at most {MAX_TESTS}'])
    problems: list[str] = []
    shared = _word_lists(data.get("words", {}), "the suite's", problems)
    tests: list[BehaviourTest] = []
    seen: dict[str, int] = {}   # name -> tests of that name so far
    lines = _name_lines(text)
    for index, raw in enumerate(data["tests"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        earlier = seen.get(name, 0) if isinstance(name, str) else 0
        line = lines.get(name, [])[earlier] if isinstance(name, str) and len(lines.get(name, [])) > earlier else 0
        where = _where(name, index, line)
        if earlier:
            problems.append(f"{where}: the name is used by an earlier test; names must be unique")
        if isinstance(name, str):
            seen[name] = earlier + 1
        test = _test(raw, where, shared, problems, line)
        if test is not None:
            tests.append(test)
    if not data["tests"]:
        problems.append('"tests" is empty: a suite needs at least one test')
    total = sum(test.n for test in tests)
    if total > MAX_SUITE_CASES:
        problems.append(f"the tests make {total:,} cases in all (the sum of their \"n\"); a suite makes at most "
                        f"{MAX_SUITE_CASES:,}")
    if problems:
        raise BehaviourSuiteError(problems)
    name = data.get("name") if isinstance(data.get("name"), str) and data.get("name").strip() else fallback_name
    return BehaviourSuite(name, str(data.get("description", "")), tuple(tests), data)


NAME_FIELD = re.compile(r'"name"\s*:\s*("(?:[^"\\]|\\.)*")')


def _name_lines(text: str | None) -> dict[str, list[int]]:
    """Each test name's lines in the file, in order (one pass over the text, so a long suite is read in linear
    time); empty when the text is not known (a page's editor)."""
    if text is None:
        return {}
    lines: dict[str, list[int]] = {}
    newlines, last = 0, 0
    for match in NAME_FIELD.finditer(text):
        newlines += text.count("\n", last, match.start())
        last = match.start()
        try:
            name = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        lines.setdefault(name, []).append(newlines + 1)
    return lines


def _where(name: Any, index: int, line: int) -> str:
    label = f"test {index + 1}" + (f" ({quoted(name)})" if isinstance(name, str) else "")
    return f"line {line}, {label}" if line else label


def _word_lists(raw: Any, owner: str, problems: list[str], where: str = "") -> dict[str, tuple[str, ...]]:
    prefix = f"{where}: " if where else ""
    if not isinstance(raw, dict):
        problems.append(f'{prefix}{owner} "words" must be an object of word lists')
        return {}
    lists: dict[str, tuple[str, ...]] = {}
    for name, words in raw.items():
        if not SLOT.fullmatch("{" + str(name) + "}"):
            problems.append(f"{prefix}word list name {quoted(name)} must be letters, digits and _")
        elif not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            problems.append(f"{prefix}word list {quoted(name)} must be a list of non-empty strings")
        elif not words:
            problems.append(f"{prefix}word list {quoted(name)} is empty")
            lists[name] = ()          # known, so its slots are not also reported as undefined
        else:
            lists[name] = tuple(dict.fromkeys(w.strip() for w in words))
    return lists


def _test(raw: Any, where: str, shared: dict[str, tuple[str, ...]], problems: list[str],
          line: int) -> BehaviourTest | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a test must be a JSON object")
        return None
    start = len(problems)
    unknown = sorted(set(raw) - TEST_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(map(quoted, unknown))}; known: "
                        f"{', '.join(sorted(TEST_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: needs a \"name\"")
    kind = raw.get("kind")
    if kind not in KINDS:
        problems.append(f"{where}: \"kind\" must be one of {', '.join(KINDS)} (got {quoted(kind)})")
    for key in ("capability", "description"):
        if not isinstance(raw.get(key, ""), str):
            problems.append(f"{where}: \"{key}\" must be text")
    words = {**shared, **_word_lists(raw.get("words", {}), "the test's", problems, where)}
    n = raw.get("n", DEFAULT_CASES)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        problems.append(f"{where}: \"n\" (cases to make) must be a whole number of at least 1 (got {quoted(n)})")
    elif n > MAX_CASES:
        problems.append(f"{where}: \"n\" is {n:,}; a test makes at most {MAX_CASES:,} cases")
    templates = _templates(raw, where, kind, words, problems)
    sentences = _sentences(raw, where, problems)
    if (raw.get("templates") is None) == (raw.get("sentences") is None):
        problems.append(f"{where}: give either \"templates\" or \"sentences\", not both or neither")
    perturbation = _perturbation(raw, where, kind, words, templates, sentences, problems)
    direction, towards, tolerance = raw.get("direction"), raw.get("towards"), raw.get("tolerance", DEFAULT_TOLERANCE)
    if kind == "DIR" and direction not in DIRECTIONS:
        problems.append(f"{where}: a DIR test needs \"direction\": \"up\" or \"down\" (got {quoted(direction)})")
    if kind != "DIR" and (direction is not None or towards is not None):
        problems.append(f"{where}: \"direction\" and \"towards\" belong to DIR tests only")
    if towards is not None and (not isinstance(towards, str) or not towards):
        problems.append(f"{where}: \"towards\" must be a class name")
    if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or not 0 <= tolerance < 1:
        problems.append(f"{where}: \"tolerance\" must be a number in [0, 1) (got {quoted(tolerance)})")
    neutral_passes = raw.get("neutral_passes", False)
    if not isinstance(neutral_passes, bool):
        problems.append(f"{where}: \"neutral_passes\" must be true or false (got {quoted(neutral_passes)})")
    elif neutral_passes and kind in KINDS and kind != "MFT":
        problems.append(f"{where}: \"neutral_passes\" belongs to MFT tests only")
    if len(problems) > start:
        return None
    return BehaviourTest(name.strip(), kind, str(raw.get("capability") or "other"), str(raw.get("description", "")),
                         templates, sentences, perturbation, direction, towards, float(tolerance), int(n), words, line,
                         neutral_passes)


def _templates(raw: dict, where: str, kind: Any, words: dict, problems: list[str]) -> tuple[Template, ...]:
    entries = raw.get("templates")
    if entries is None:
        return ()
    if not isinstance(entries, list) or not entries:
        problems.append(f"{where}: \"templates\" must be a non-empty list")
        return ()
    out: list[Template] = []
    for i, entry in enumerate(entries, 1):
        entry = {"template": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("template"), str) or not entry["template"].strip():
            problems.append(f"{where}: template {i} must be text or an object with a \"template\" text")
            continue
        extra = sorted(set(entry) - {"template", "label", "perturbed"})
        if extra:
            problems.append(f"{where}: template {i} has unknown key(s) {', '.join(map(quoted, extra))}")
        label, perturbed = entry.get("label"), entry.get("perturbed")
        if label is not None and (not isinstance(label, str) or not label):
            problems.append(f"{where}: template {i}'s \"label\" must be a class name")
        if label is None and kind in KINDS:
            problems.append(f"{where}: template {i} needs a \"label\" (the class its cases must get"
                            + ("" if kind == "MFT" else ", which decides whether the original is predicted correctly")
                            + ")")
        if perturbed is not None and (kind == "MFT" or not isinstance(perturbed, str)):
            problems.append(f"{where}: template {i}'s \"perturbed\" must be text, and only in an INV or DIR test")
        for text in (entry["template"], perturbed if isinstance(perturbed, str) else ""):
            _check_slots(text, words, f"{where}: template {i}", problems)
        out.append(Template(entry["template"], label if isinstance(label, str) else None,
                            perturbed if isinstance(perturbed, str) else None))
    return tuple(out)


def _check_slots(text: str, words: dict, where: str, problems: list[str]) -> None:
    for slot in SLOT.findall(text):
        if slot not in words:
            problems.append(f"{where} uses {{{slot}}}, which no word list defines"
                            + (f" (lists: {', '.join(sorted(words))})" if words else " (no word lists given)"))
    if "{" in SLOT.sub("", text) or "}" in SLOT.sub("", text):
        problems.append(f"{where}: a brace that is not a {{slot}}: {quoted(text)}")


def _sentences(raw: dict, where: str, problems: list[str]) -> str | tuple[tuple[str, str], ...] | None:
    value = raw.get("sentences")
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    if isinstance(value, list) and value and all(
            isinstance(s, dict) and isinstance(s.get("text"), str) and s["text"].strip()
            and isinstance(s.get("label"), str) and s["label"] for s in value):
        return tuple((s["text"], s["label"]) for s in value)
    problems.append(f"{where}: \"sentences\" must be an evaluation set's name (such as sst2-dev) or a non-empty "
                    f"list of {{\"text\": ..., \"label\": ...}}")
    return None


def _perturbation(raw: dict, where: str, kind: Any, words: dict, templates: tuple[Template, ...],
                  sentences: Any, problems: list[str]) -> dict[str, Any] | None:
    value = raw.get("perturbation")
    paired = any(t.perturbed for t in templates)
    if kind == "MFT":
        if value is not None:
            problems.append(f"{where}: an MFT test has no \"perturbation\"")
        return None
    if value is None:
        if not paired and kind in KINDS:
            problems.append(f"{where}: an {kind} test needs a \"perturbation\" (or templates with \"perturbed\")")
        return None
    if paired:
        problems.append(f"{where}: give a \"perturbation\" or templates with \"perturbed\", not both")
    if not isinstance(value, dict) or value.get("type") not in PERTURBATIONS:
        problems.append(f"{where}: \"perturbation\" must be an object whose \"type\" is one of "
                        f"{', '.join(PERTURBATIONS)}")
        return None
    spec = PERTURBATIONS[value["type"]]
    params = {k: v for k, v in value.items() if k != "type"}
    for key, given in params.items():
        if key not in spec.params:
            problems.append(f"{where}: perturbation {value['type']} takes "
                            f"{', '.join(spec.params) or 'no settings'}, not {quoted(key)}")
        elif not isinstance(given, spec.params[key]) or isinstance(given, bool):
            problems.append(f"{where}: perturbation setting {quoted(key)} must be {spec.params[key].__name__}")
    for key in spec.required:
        if key not in params:
            problems.append(f"{where}: perturbation {value['type']} needs {quoted(key)}")
    for key in spec.word_params:
        if isinstance(params.get(key), str) and params[key] not in words:
            problems.append(f"{where}: perturbation {value['type']} names word list {quoted(params[key])}, "
                            f"which is not defined")
    if "count" in params and isinstance(params["count"], int) and params["count"] < 1:
        problems.append(f"{where}: perturbation setting 'count' must be at least 1")
    if "where" in params and params["where"] not in WHERE:
        problems.append(f"{where}: perturbation setting 'where' must be start or end")
    if spec.templates_only:
        slot = params.get("slot")
        if sentences is not None:
            problems.append(f"{where}: perturbation swap works on templates only")
        elif isinstance(slot, str):
            if slot not in words or len(words[slot]) < 2:
                problems.append(f"{where}: swap slot {quoted(slot)} needs a word list of at least 2 words")
            missing = [i for i, t in enumerate(templates, 1) if f"{{{slot}}}" not in t.text]
            if missing:
                problems.append(f"{where}: template(s) {', '.join(map(str, missing))} have no {{{slot}}} to swap")
    return dict(value)
