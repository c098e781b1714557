"""CSV files as researchers have them: exported by pandas or Excel, in Latin-1 or UTF-16, without a header,
with rows that lost their label. Read by the engine, uploaded on the Train page, given to the CLI."""
from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest
from apptest_util import no_exception, page, texts

from engine.__main__ import main
from engine.data.csv_reading import read_csv
from engine.data.csv_table import file_encoding
from engine.data.text_dataset import DataError
from engine.execution import jobs
from engine.store.runs import RunStore

TWEETS = ["loving the new phone", "worst service ever,\rnever again", "it's ok I guess", "so\rhappy today",
          "meh", "great game last night", "traffic again", "cannot wait", "bad news", "fine, thanks"]
EMPTY_LABEL = "text,label\ngood,1\nbad,0\nok,\nfine,1\n"    # five lines, one label left empty
SHORT_ROW = "text,label\ngood,1\nbad,0\nok\nfine,1\n"       # ... or the row stops before it
ACCENTS = ["café crème brûlée", "naïve résumé", "très bien", "à bientôt", "ça va", "déjà vu"]


def pandas_csv(tmp_path, texts_: list[str], name: str = "d.csv", **to_csv) -> str:
    """A text,label CSV written by pandas (labels cycle 0, 1, 2 over three classes when there are enough rows)."""
    classes = 3 if len(texts_) >= 9 else 2
    path = tmp_path / name
    pd.DataFrame({"text": texts_, "label": [i % classes for i in range(len(texts_))]}).to_csv(path, index=False,
                                                                                               **to_csv)
    return str(path)


def rows_csv(n: int) -> str:
    return "text,label\n" + "".join(f"sentence number {i},{i % 3}\n" for i in range(n))


# ---------------------------------------------------------------- the engine's reader

def test_a_bare_carriage_return_stays_inside_its_text(tmp_path):
    """pandas writes a tweet holding a lone \\r unquoted (and one that also holds a comma quoted): both are one
    row whose text keeps the \\r."""
    path = pandas_csv(tmp_path, TWEETS)
    assert b"so\rhappy" in open(path, "rb").read()
    data = read_csv(path)
    assert data.texts == [t.strip() for t in TWEETS] and data.labels == [i % 3 for i in range(10)]
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b'text,label\r\n"a\rb",0\r\nc d,1\r\ne,0\r\nf,1\r\n')
    assert read_csv(crlf).texts == ["a\rb", "c d", "e", "f"]


@pytest.mark.parametrize("content, message", [
    (EMPTY_LABEL, "1 row has no label: line 4"),
    (SHORT_ROW, "1 row has no label: line 4"),
    ("text,label\n" + "".join(f"t{i},{'' if i in (2, 7, 10) else i % 2}\n" for i in range(12)),
     "3 rows have no label: lines 4, 9, 12"),
    ("text,label\na,0\n,1\nb,1\n  ,0\n", "2 rows have no text: lines 3, 5"),
    ('text,label\n"two\nlines",0\nb,1\nc,\n', "1 row has no label: line 5"),
])
def test_rows_without_a_label_or_text_are_named_and_refused(tmp_path, content, message):
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        read_csv(path)
    assert "fill in or delete" in str(err.value)


def test_blank_lines_and_empty_trailing_cells_are_not_rows(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("text,label,,\na,0,,\n\n,,,\nb,1,,,\n")
    assert read_csv(path).texts == ["a", "b"]


@pytest.mark.parametrize("encoding, kind", [("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"),
                                            ("latin-1", "cp1252"), ("cp1252", "cp1252")])
def test_encodings_are_detected_and_accents_kept(tmp_path, encoding, kind):
    path = pandas_csv(tmp_path, ACCENTS, encoding=encoding)
    assert file_encoding(path) == kind
    data = read_csv(path)
    assert data.texts == ACCENTS and data.labels == [0, 1, 0, 1, 0, 1]


def test_utf16_without_a_byte_order_mark_is_recognised(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes("text,label\n\"a, b\",0\nc,1\n".encode("utf-16-le"))
    assert read_csv(path).texts == ["a, b", "c"]


def test_a_headerless_file_is_told_its_header_is_missing(tmp_path):
    path = pandas_csv(tmp_path, ['I said "wow" there', "bad, really", "ok", "fine"], header=False)
    with pytest.raises(DataError, match="no header line") as err:
        read_csv(path)
    assert "text,label" in str(err.value) and "sentence" in str(err.value)


def test_a_workbook_is_not_taken_for_a_csv(tmp_path):
    path = tmp_path / "book.csv"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="Excel workbook"):
        read_csv(path)


def test_a_row_with_too_many_fields_says_to_quote(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,0\nb, c,1\n")
    with pytest.raises(DataError, match="line 3 has 3 fields.*double quotes"):
        read_csv(path)


# ---------------------------------------------------------------- the Train page

def upload(at, name: str, content: bytes):
    at.selectbox(key="train-dataset").set_value("Upload CSV").run()
    at.file_uploader(key="train-upload").set_value((name, content, "text/csv"))
    return no_exception(at.run())


@pytest.mark.parametrize("content", [EMPTY_LABEL.encode(), SHORT_ROW.encode()])
def test_train_page_names_the_rows_without_a_label_and_keeps_its_form(run_home, content):
    at = upload(page("train.py").run(), "five.csv", content)
    assert any("five.csv cannot be used: 1 row has no label: line 4" in e for e in texts(at, "error"))
    assert at.button(key="train-start") and at.selectbox(key="train-method")


def test_train_page_reads_pandas_tweets_with_a_bare_carriage_return(run_home, tmp_path):
    content = open(pandas_csv(tmp_path, TWEETS * 2), "rb").read()
    at = upload(page("train.py").run(), "tweets.csv", content)
    assert any("tweets.csv: 20 rows, 3 classes" in m for m in texts(at, "success")), texts(at, "success")


def test_train_page_states_a_fallback_encoding_and_shows_the_accents(run_home, tmp_path):
    content = open(pandas_csv(tmp_path, ACCENTS * 2, encoding="latin-1"), "rb").read()
    at = upload(page("train.py").run(), "latin.csv", content)
    assert any("not UTF-8" in w and "Windows-1252" in w for w in texts(at, "warning")), texts(at, "warning")
    assert "café crème brûlée" in at.dataframe[0].value["text"].tolist()


def test_train_page_reads_utf16_and_refuses_a_headerless_file(run_home, tmp_path):
    at = upload(page("train.py").run(), "u16.csv", open(pandas_csv(tmp_path, ACCENTS * 2, encoding="utf-16"),
                                                         "rb").read())
    assert any("u16.csv: 12 rows, 3 classes" in m and "UTF-16" in m for m in texts(at, "success"))
    at.file_uploader(key="train-upload").set_value(("bare.csv", b"nice film,1\nawful,0\n", "text/csv"))
    assert any("no header line" in e for e in texts(no_exception(at.run()), "error"))


def test_upload_preview_shows_the_label_first_and_every_class_count(run_home):
    content = "text,label\n" + "".join(f"{'a long sentence ' * 20}{i},{i % 7}\n" for i in range(70))
    at = upload(page("train.py").run(), "seven.csv", content.encode())
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["label", "text"]
    counts = next(c for c in texts(at, "caption") if c.startswith("Examples per class"))
    assert all(f"{label}: 10" in counts for label in range(7)), counts


def test_train_page_says_how_many_rows_train_and_stores_that(run_home, monkeypatch):
    """A 120-row CSV at the default 2,000 training examples: the form says 108 train and 12 are held out,
    and the queued run's config says 108."""
    queued = []
    monkeypatch.setattr(jobs, "submit", lambda store, config: queued.append(config) or store.create(config))
    at = upload(page("train.py").run(), "toy.csv", rows_csv(120).encode())
    assert at.number_input(key="train-size").value == 2000
    sizes = [i for i in texts(at, "info") if "108" in i]
    assert sizes and "12 held out" in sizes[0] and "2,000" in sizes[0], texts(at, "info")
    at.radio(key="train-model").set_value("tiny").run()
    at.button(key="train-start").click().run()
    assert not texts(no_exception(at), "error")
    assert [c["train_size"] for c in queued] == [108]
    assert RunStore().list()[0]["id"]


# ---------------------------------------------------------------- the CLI

def cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["train", "--model", "tiny", "--epochs", "1", "--batch-size", "4", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("content", [EMPTY_LABEL, SHORT_ROW])
def test_cli_refuses_a_row_without_a_label_in_one_line(run_home, tmp_path, capsys, content):
    path = tmp_path / "five.csv"
    path.write_text(content)
    code, err = cli(capsys, "--dataset", f"csv:{path}")
    assert code == 2 and err.count("\n") == 1 and "1 row has no label: line 4" in err and "Traceback" not in err
    assert RunStore().list() == []


def test_cli_refuses_a_headerless_file(run_home, tmp_path, capsys):
    path = tmp_path / "bare.csv"
    path.write_text("nice film,1\nawful,0\n")
    code, err = cli(capsys, "--dataset", f"csv:{path}")
    assert code == 2 and "no header line" in err


def test_cli_states_the_encoding_and_the_rows_used_and_stores_them(run_home, tmp_path, capsys, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs, "submit", lambda store, config: queued.append(config) or store.create(config))
    path = tmp_path / "latin.csv"
    path.write_bytes(rows_csv(120).replace("sentence", "phrasé").encode("latin-1"))
    code, err = cli(capsys, "--dataset", f"csv:{path}", "--detach", "--json")
    assert code == 0, err
    assert "Windows-1252" in err and "108 training examples" in err and "12 held out" in err
    assert [c["train_size"] for c in queued] == [108]


def test_labels_numbered_from_one_are_their_own_names(tmp_path):
    """1..C, as many datasets number their classes: read as classes "1".."C" (1 is id 0), and a file evaluated
    against a model trained so maps each number to that model's class of the same name."""
    path = tmp_path / "stars.csv"
    path.write_text("text,label\nawful,1\nfine,2\ngreat,3\nmeh,2\n", encoding="utf-8")
    data = read_csv(path)
    assert data.labels == [0, 1, 2, 1] and data.label_names == ["1", "2", "3"]
    held = tmp_path / "held.csv"
    held.write_text("text,label\nsuperb,3\nbad,1\n", encoding="utf-8")
    assert read_csv(held, known_labels=["1", "2", "3"]).labels == [2, 0]
    gap = tmp_path / "gap.csv"
    gap.write_text("text,label\na,1\nb,3\n", encoding="utf-8")
    with pytest.raises(DataError, match="integer labels must be 0..C-1 or 1..C"):
        read_csv(gap)
