"""`train --extra-data FILE.csv`: the run trains on its sample plus the file's rows, records the file in its config,
and refuses a file it cannot read by naming the flag."""
from __future__ import annotations

import json

from cli_util import refused

from engine.__main__ import main
from engine.store.runs import RunStore

TINY = ["train", "--model", "tiny", "--train-size", "32", "--epochs", "1", "--batch-size", "16", "--dev-size", "16"]


def test_extra_rows_are_trained_on_and_recorded(run_home, tmp_path, capsys):
    extra = tmp_path / "failures.csv"
    extra.write_text("text,label,model_label,test,original\nthe plot was not good .,negative,positive,neg,\n"
                     "i did not hate it .,positive,negative,neg,\n")
    assert main([*TINY, "--extra-data", str(extra), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_train"] == 34
    run = RunStore().get(out["run_id"])
    assert run.config["extra_data"] == str(extra)
    assert "plus 2 extra training examples" in run.log_text()


def test_a_file_that_cannot_be_read_is_refused_naming_the_flag(run_home, tmp_path, capsys):
    assert refused([*TINY, "--extra-data", str(tmp_path / "nope.csv")], capsys) == (
        f"error: --extra-data: CSV file {tmp_path / 'nope.csv'} does not exist")
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngreat fun,joyful\n")
    line = refused([*TINY, "--extra-data", str(bad)], capsys)
    assert "the labels on line 2 are not classes of this model" in line and "joyful" not in line, line
    assert RunStore().list() == []


def test_a_pair_run_takes_extra_pairs_whole_and_refuses_single_sentences(tmp_path):
    import pytest

    from engine.data.text_dataset import TextDataset
    from engine.training.config import ConfigError
    from engine.training.extra_data import with_extra_rows

    train = TextDataset("rte", ["a cat sat"], [0], ["entailment", "not_entailment"], ["a cat is sitting"],
                        ("sentence1", "sentence2"))
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2,label\ndogs bark,cats meow,not_entailment\n")
    both = with_extra_rows(train, str(pairs))
    assert both.inputs == [("a cat sat", "a cat is sitting"), ("dogs bark", "cats meow")] and both.labels == [0, 1]
    single = tmp_path / "single.csv"
    single.write_text("text,label\ndogs bark,entailment\n")
    with pytest.raises(ConfigError, match="holds single sentences, but the run trains on sentence pairs: give two "
                                          "text columns \\(sentence1 / sentence2\\)"):
        with_extra_rows(train, str(single))
