"""engine.behaviour.spec: every refusal of a suite file, one case each that triggers exactly it, and the tolerance.

Each case is a valid suite with one piece broken, so the file gives exactly one problem and that problem is the
refusal the case names: removing any refusal from spec.py turns its case red (the suite parses, or gives another
problem). Fast: no model, no evaluation set.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.behaviour.spec import (
    DEFAULT_TOLERANCE,
    MAX_CASES,
    MAX_SUITE_BYTES,
    MAX_SUITE_CASES,
    MAX_TESTS,
    BehaviourSuiteError,
    load_behaviour_suite,
    parse_behaviour_suite,
)

WORDS = {"thing": ["film", "plot"], "pos": ["good", "great"], "solo": ["only"]}
T1 = "test 1 ('t')"          # how a problem names the first test, called "t"


def mft(**changes) -> dict:
    """A valid MFT test, with `changes` applied (a value of None drops the key)."""
    return _with({"name": "t", "kind": "MFT", "capability": "Vocabulary", "description": "labels by word",
                  "templates": [{"template": "The {thing} is {pos}.", "label": "positive"}]}, changes)


def inv(**changes) -> dict:
    return _with({"name": "t", "kind": "INV", "perturbation": {"type": "typo", "count": 1},
                  "templates": [{"template": "The {thing} is {pos}.", "label": "positive"}]}, changes)


def dir_(**changes) -> dict:
    return _with({"name": "t", "kind": "DIR", "direction": "up", "towards": "positive", "tolerance": 0.1,
                  "templates": [{"template": "The {thing} is {pos}.", "perturbed": "The {thing} is very {pos}.",
                                 "label": "positive"}]}, changes)


def _with(test: dict, changes: dict) -> dict:
    out = {**test, **changes}
    return {k: v for k, v in out.items() if v is not None}


def suite(*tests, words=WORDS) -> str:
    data = {"name": "spec", "tests": list(tests)}
    if words is not None:
        data["words"] = words
    return json.dumps(data, indent=1)


def problems_of(text: str) -> list[str]:
    with pytest.raises(BehaviourSuiteError) as err:
        parse_behaviour_suite(text)
    assert str(err.value) == "; ".join(err.value.problems)
    return err.value.problems


SENTENCES = [{"text": "a fine film", "label": "positive"}]

# (case, suite file text, a fragment of the one problem it must give)
REFUSALS = [
    # the file as a whole
    ("not JSON", '{"tests": [}', "line 1, column 12: not valid JSON"),
    ("not an object", "[1, 2]", 'the file must be a JSON object with a "tests" list'),
    ("tests not a list", '{"tests": {"name": "t"}}', 'the file must be a JSON object with a "tests" list'),
    ("tests empty", suite(), '"tests" is empty: a suite needs at least one test'),
    ("name used twice", suite(mft(), mft()), "test 2 ('t'): the name is used by an earlier test"),
    # word lists, the suite's and a test's
    ("suite words not an object", suite(mft(templates=[{"template": "plain", "label": "positive"}]), words=["film"]),
     "the suite's \"words\" must be an object of word lists"),
    ("test words not an object", suite(mft(words="film")), f"{T1}: the test's \"words\" must be an object"),
    ("word list name not a slot name", suite(mft(), words={**WORDS, "bad-name": ["x"]}),
     "word list name 'bad-name' must be letters, digits and _"),
    ("word list not a list", suite(mft(), words={**WORDS, "odd": "x"}),
     "word list 'odd' must be a list of non-empty strings"),
    ("word list with a blank word", suite(mft(), words={**WORDS, "odd": ["x", "  "]}),
     "word list 'odd' must be a list of non-empty strings"),
    ("word list empty", suite(mft(), words={**WORDS, "odd": []}), "word list 'odd' is empty"),
    # a test's own keys
    ("test not an object", suite("just text"), "test 1: a test must be a JSON object"),
    ("unknown key", suite(mft(colour="red")), f"{T1}: unknown key(s) 'colour'; known: capability"),
    ("no name", suite(mft(name=None)), 'test 1: needs a "name"'),
    ("blank name", suite(mft(name="   ")), 'needs a "name"'),
    ("unknown kind", suite(mft(kind="XYZ")), f"{T1}: \"kind\" must be one of MFT, INV, DIR (got 'XYZ')"),
    ("capability not text", suite(mft(capability=5)), f"{T1}: \"capability\" must be text"),
    ("description not text", suite(mft(description=["x"])), f"{T1}: \"description\" must be text"),
    ("n zero", suite(mft(n=0)), f"{T1}: \"n\" (cases to make) must be a whole number of at least 1 (got 0)"),
    ("n a fraction", suite(mft(n=2.5)), "must be a whole number of at least 1 (got 2.5)"),
    ("n true", suite(mft(n=True)), "must be a whole number of at least 1 (got True)"),
    ("n over the cap", suite(mft(n=MAX_CASES + 1)),
     f"{T1}: \"n\" is {MAX_CASES + 1:,}; a test makes at most {MAX_CASES:,} cases"),
    ("templates and sentences", suite(mft(sentences=SENTENCES)),
     f"{T1}: give either \"templates\" or \"sentences\", not both or neither"),
    ("neither templates nor sentences", suite(mft(templates=None)), 'give either "templates" or "sentences"'),
    ("DIR without direction", suite(dir_(direction=None)),
     f"{T1}: a DIR test needs \"direction\": \"up\" or \"down\" (got None)"),
    ("DIR with a bad direction", suite(dir_(direction="sideways")), "needs \"direction\": \"up\" or \"down\""),
    ("direction outside DIR", suite(mft(direction="up")), f"{T1}: \"direction\" and \"towards\" belong to DIR"),
    ("towards outside DIR", suite(inv(towards="positive")), "\"direction\" and \"towards\" belong to DIR tests"),
    ("towards empty", suite(dir_(towards="")), f"{T1}: \"towards\" must be a class name"),
    ("towards not text", suite(dir_(towards=1)), "\"towards\" must be a class name"),
    ("neutral_passes not true or false", suite(mft(neutral_passes="yes")),
     f"{T1}: \"neutral_passes\" must be true or false (got 'yes')"),
    ("neutral_passes outside MFT", suite(inv(neutral_passes=True)),
     f"{T1}: \"neutral_passes\" belongs to MFT tests only"),
    ("tolerance 1", suite(dir_(tolerance=1)), f"{T1}: \"tolerance\" must be a number in [0, 1) (got 1)"),
    ("tolerance negative", suite(dir_(tolerance=-0.5)), "\"tolerance\" must be a number in [0, 1) (got -0.5)"),
    ("tolerance text", suite(dir_(tolerance="0.1")), "must be a number in [0, 1) (got '0.1')"),
    ("tolerance true", suite(dir_(tolerance=True)), "must be a number in [0, 1) (got True)"),
    # templates
    ("templates empty", suite(mft(templates=[])), f"{T1}: \"templates\" must be a non-empty list"),
    ("templates not a list", suite(mft(templates="The {thing}.")), "\"templates\" must be a non-empty list"),
    ("template a number", suite(mft(templates=[5])),
     f"{T1}: template 1 must be text or an object with a \"template\" text"),
    ("template blank", suite(mft(templates=[{"template": " ", "label": "positive"}])),
     "template 1 must be text or an object"),
    ("template unknown key", suite(mft(templates=[{"template": "{pos}", "label": "positive", "weight": 2}])),
     f"{T1}: template 1 has unknown key(s) 'weight'"),
    ("template label empty", suite(mft(templates=[{"template": "{pos}", "label": ""}])),
     f"{T1}: template 1's \"label\" must be a class name"),
    ("template label not text", suite(mft(templates=[{"template": "{pos}", "label": 1}])),
     "template 1's \"label\" must be a class name"),
    ("MFT template without label", suite(mft(templates=["{pos}"])),
     f"{T1}: template 1 needs a \"label\" (the class its cases must get)"),
    ("INV template without label", suite(inv(templates=["{pos}"])),
     "template 1 needs a \"label\" (the class its cases must get, which decides whether the original"),
    ("perturbed in MFT", suite(mft(templates=[{"template": "{pos}", "perturbed": "very {pos}", "label": "x"}])),
     f"{T1}: template 1's \"perturbed\" must be text, and only in an INV or DIR test"),
    ("perturbed not text", suite(dir_(templates=[
        {"template": "{pos}", "perturbed": "very {pos}", "label": "positive"},
        {"template": "{thing}", "perturbed": 5, "label": "positive"}])),
     "template 2's \"perturbed\" must be text"),
    ("undefined slot", suite(mft(templates=[{"template": "The {colour}.", "label": "positive"}])),
     f"{T1}: template 1 uses {{colour}}, which no word list defines (lists: pos, solo, thing)"),
    ("undefined slot, no lists", suite(mft(templates=[{"template": "{pos}", "label": "positive"}]), words=None),
     "template 1 uses {pos}, which no word list defines (no word lists given)"),
    ("undefined slot in perturbed", suite(dir_(templates=[{"template": "{pos}", "perturbed": "{more}",
                                                           "label": "positive"}])),
     "template 1 uses {more}, which no word list defines"),
    ("stray brace", suite(mft(templates=[{"template": "The {thing is {pos}.", "label": "positive"}])),
     f"{T1}: template 1: a brace that is not a {{slot}}: 'The {{thing is {{pos}}.'"),
    ("closing brace alone", suite(mft(templates=[{"template": "{pos} }", "label": "positive"}])),
     "a brace that is not a {slot}"),
    # sentences
    ("sentences blank name", suite(mft(templates=None, sentences="  ")),
     f"{T1}: \"sentences\" must be an evaluation set's name (such as sst2-dev) or a non-empty list"),
    ("sentences empty list", suite(mft(templates=None, sentences=[])), "\"sentences\" must be an evaluation"),
    ("sentence without label", suite(mft(templates=None, sentences=[{"text": "a film"}])),
     "\"sentences\" must be an evaluation set's name"),
    ("sentence blank text", suite(mft(templates=None, sentences=[{"text": " ", "label": "positive"}])),
     "\"sentences\" must be an evaluation set's name"),
    # perturbations
    ("perturbation in MFT", suite(mft(perturbation={"type": "typo"})), f"{T1}: an MFT test has no \"perturbation\""),
    ("INV without perturbation", suite(inv(perturbation=None)),
     f"{T1}: an INV test needs a \"perturbation\" (or templates with \"perturbed\")"),
    ("DIR without perturbation", suite(dir_(templates=[{"template": "{pos}", "label": "positive"}])),
     "an DIR test needs a \"perturbation\""),
    ("perturbation and perturbed", suite(dir_(perturbation={"type": "typo"})),
     f"{T1}: give a \"perturbation\" or templates with \"perturbed\", not both"),
    ("perturbation not an object", suite(inv(perturbation="typo")),
     f"{T1}: \"perturbation\" must be an object whose \"type\" is one of typo, char_noise"),
    ("perturbation unknown type", suite(inv(perturbation={"type": "shout"})),
     "\"perturbation\" must be an object whose \"type\" is one of"),
    ("perturbation unknown setting", suite(inv(perturbation={"type": "typo", "size": 2})),
     f"{T1}: perturbation typo takes count, not 'size'"),
    ("perturbation setting on one without", suite(inv(perturbation={"type": "punctuation", "count": 1})),
     "perturbation punctuation takes no settings, not 'count'"),
    ("perturbation setting of the wrong type", suite(inv(perturbation={"type": "typo", "count": "2"})),
     f"{T1}: perturbation setting 'count' must be int"),
    ("perturbation setting true", suite(inv(perturbation={"type": "typo", "count": True})),
     "perturbation setting 'count' must be int"),
    ("perturbation setting missing", suite(inv(perturbation={"type": "replace"})),
     f"{T1}: perturbation replace needs 'words'"),
    ("perturbation list undefined", suite(inv(perturbation={"type": "replace", "words": "nope"})),
     f"{T1}: perturbation replace names word list 'nope', which is not defined"),
    ("perturbation count zero", suite(inv(perturbation={"type": "char_noise", "count": 0})),
     f"{T1}: perturbation setting 'count' must be at least 1"),
    ("perturbation where", suite(inv(perturbation={"type": "add", "words": "pos", "where": "middle"})),
     f"{T1}: perturbation setting 'where' must be start or end"),
    ("swap on sentences", suite(inv(templates=None, sentences=SENTENCES, perturbation={"type": "swap", "slot": "pos"})),
     f"{T1}: perturbation swap works on templates only"),
    ("swap slot of one word", suite(inv(templates=[{"template": "{solo} is {pos}", "label": "positive"}],
                                        perturbation={"type": "swap", "slot": "solo"})),
     f"{T1}: swap slot 'solo' needs a word list of at least 2 words"),
    ("swap slot not in a template", suite(inv(templates=[{"template": "{thing} is {pos}", "label": "positive"},
                                                         {"template": "it is {pos}", "label": "positive"}],
                                              perturbation={"type": "swap", "slot": "thing"})),
     f"{T1}: template(s) 2 have no {{thing}} to swap"),
]


def test_every_base_test_is_valid():
    """Each case breaks one piece of one of these; they must parse, or a case could pass on another problem."""
    parsed = parse_behaviour_suite(suite(mft(), {**inv(), "name": "i"}, {**dir_(), "name": "d"}))
    assert [t.kind for t in parsed.tests] == ["MFT", "INV", "DIR"]
    assert parse_behaviour_suite(suite(mft(n=MAX_CASES))).tests[0].n == MAX_CASES
    assert parse_behaviour_suite(suite(inv(perturbation={"type": "swap", "slot": "pos"}))).tests[0].perturbation == {
        "type": "swap", "slot": "pos"}
    assert parse_behaviour_suite(suite(mft(templates=None, sentences=SENTENCES))).tests[0].sentences == (
        ("a fine film", "positive"),)


@pytest.mark.parametrize("text, fragment", [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS])
def test_each_refusal_gives_exactly_its_one_problem(text, fragment):
    [problem] = problems_of(text)
    assert fragment in problem, problem


def test_a_refusal_names_the_line_of_its_test():
    text = suite(mft(), mft(name="second", kind="XYZ"))
    [problem] = problems_of(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"second"' in row)
    assert problem.startswith(f"line {line}, test 2 ('second'): \"kind\" must be one of")


def test_a_repeated_name_is_refused_on_the_line_of_its_repeat():
    text = suite(mft(name="dup"), mft(name="other"), mft(name="dup"))
    [problem] = problems_of(text)
    line = [i for i, row in enumerate(text.splitlines(), 1) if '"dup"' in row][1]
    assert problem == f"line {line}, test 3 ('dup'): the name is used by an earlier test; names must be unique"


def test_a_suite_has_at_most_max_tests_tests_and_max_suite_cases_cases():
    many = [mft(name=f"t{i}", n=1) for i in range(MAX_TESTS)]
    assert len(parse_behaviour_suite(suite(*many)).tests) == MAX_TESTS
    assert problems_of(suite(*many, mft(name="one more", n=1))) == [
        f'"tests" has {MAX_TESTS + 1:,} tests; a suite has at most {MAX_TESTS}']
    full = MAX_SUITE_CASES // MAX_CASES
    parsed = parse_behaviour_suite(suite(*[mft(name=f"t{i}", n=MAX_CASES) for i in range(full)]))
    assert sum(t.n for t in parsed.tests) \
        == full * MAX_CASES <= MAX_SUITE_CASES
    over = [mft(name=f"t{i}", n=MAX_CASES) for i in range(full)] + [mft(name="last", n=MAX_SUITE_CASES % MAX_CASES + 1)]
    assert problems_of(suite(*over)) == [f'the tests make {MAX_SUITE_CASES + 1:,} cases in all (the sum of their "n"); '
                                         f"a suite makes at most {MAX_SUITE_CASES:,}"]


def test_a_suite_file_too_large_is_refused_before_it_is_read(tmp_path: Path):
    big = tmp_path / "big.json"
    big.write_text(suite(mft()) + " " * MAX_SUITE_BYTES, encoding="utf-8")
    with pytest.raises(BehaviourSuiteError) as err:
        load_behaviour_suite(str(big))
    assert err.value.problems == [f"big.json is {big.stat().st_size:,} bytes; a suite file is at most "
                                  f"{MAX_SUITE_BYTES:,}"]


def test_a_file_that_is_not_there_or_not_utf8(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    for ref in ("missing.json", "folder"):
        with pytest.raises(BehaviourSuiteError) as err:
            load_behaviour_suite(ref)
        assert err.value.problems == [f"'{ref}' is neither a built-in suite (sentiment) nor a file"]
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"name": "café", "tests": []}'.encode("latin-1"))
    with pytest.raises(BehaviourSuiteError) as err:
        load_behaviour_suite(str(latin))
    [problem] = err.value.problems
    assert problem.startswith("latin.json is not UTF-8 text (invalid continuation byte at byte ")
    good = tmp_path / "good.json"
    good.write_text(suite(mft()), encoding="utf-8")
    assert load_behaviour_suite(str(good)).tests[0].name == "t"


# -- the tolerance: a number in [0, 1), 0 allowed, 1 not, no bools or text


@pytest.mark.parametrize("tolerance", [0, 0.0, 0.5, 0.99])
def test_a_tolerance_in_range_is_kept(tolerance):
    [test] = parse_behaviour_suite(suite(dir_(tolerance=tolerance))).tests
    assert test.tolerance == tolerance and isinstance(test.tolerance, float)


def test_a_missing_tolerance_is_the_default():
    [test] = parse_behaviour_suite(suite(dir_(tolerance=None))).tests
    assert test.tolerance == DEFAULT_TOLERANCE


@pytest.mark.parametrize("tolerance", [1, 1.0, 1.5, -0.5, -1, "0.1", True, False, None, [0.1]],
                         ids=lambda v: repr(v))
def test_a_tolerance_out_of_range_is_refused(tolerance):
    data = dir_()
    data["tolerance"] = tolerance          # None written as JSON null: given, but not a number
    [problem] = problems_of(suite(data))
    assert f"\"tolerance\" must be a number in [0, 1) (got {tolerance!r})" in problem
