"""Dataset registry, CSV validation and batching."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data.batching import Encoded, bucketed_batches, encode_dataset, model_inputs, pad_batch
from engine.data.csv_reading import read_csv
from engine.data.registry import load_dataset
from engine.data.splits import split_train_dev
from engine.data.text_dataset import DataError, TextDataset
from engine.models.loading import load_tokenizer


def test_registry_datasets_load_with_their_sizes():
    assert len(load_dataset("sst2")) == 67349
    dev = load_dataset("sst2-dev")
    assert len(dev) == 872 and sorted(set(dev.labels)) == [0, 1]
    adv = load_dataset("advglue-sst2")
    assert len(adv) == 148 and adv.label_names == ["negative", "positive"]
    assert not any(t != t.strip() for t in dev.texts)


def test_missing_data_folder_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="ROBUSTLAB_DATA"):
        load_dataset("sst2-dev")


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(DataError, match="sst2-dev"):
        load_dataset("imdb")


def test_sample_is_seeded_and_sized():
    data = load_dataset("sst2-dev")
    a, b, c = data.sample(100, 0), data.sample(100, 0), data.sample(100, 1)
    assert len(a) == 100 and a.texts == b.texts and a.texts != c.texts


def write(tmp_path, text: str, name: str = "d.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_three_classes_is_read(tmp_path):
    data = read_csv(write(tmp_path, "text,label\ngood,2\nbad,0\nso so,1\nfine,2\n"))
    assert data.num_labels == 3 and data.labels == [2, 0, 1, 2] and data.texts[2] == "so so"


@pytest.mark.parametrize("content, message", [
    ("", "no data rows|could not read"),
    ("text,label\n", "no data rows"),
    ("sentence,stars\nok,1\n", "no label column"),
    ("body,label\nok,1\n", "no text column"),
    ("text,label\na,1\nb,1\n", "only one class"),
    ("text,label\na,pos\nb,pos\n", "only one class"),
    ("text,label\na,pos\nb,0\n", "mixes names and numbers"),
    ("text,label\na,0\nb,2\n", r"0\.\.C-1"),
    ("text,label\na,0\n,1\n", "1 row has no text: line 3"),
])
def test_malformed_csvs_get_clear_messages(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        read_csv(write(tmp_path, content))


def test_unseen_labels_at_evaluation_are_refused(tmp_path):
    with pytest.raises(DataError, match="never saw in training"):
        read_csv(write(tmp_path, "text,label\na,0\nb,3\n"), known_labels=["0", "1"])


def test_huge_csv_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("text,label\n")
        f.write(("x" * 1000 + ",1\n") * 30_000)
    with pytest.raises(DataError, match="MB"):
        read_csv(path)


def test_held_out_split_is_stratified_and_disjoint(tmp_path):
    rows = "".join(f"t{i},{i % 3}\n" for i in range(60))
    data = read_csv(write(tmp_path, "text,label\n" + rows))
    train, dev = split_train_dev(data, 0.2, seed=0)
    assert len(train) + len(dev) == 60 and not set(train.texts) & set(dev.texts)
    assert sorted(set(dev.labels)) == [0, 1, 2]


def test_bucketed_batches_cover_every_index_once_and_group_lengths():
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    batches = bucketed_batches(lengths, 32, np.random.default_rng(0))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 10  # random batches would spread over ~50 tokens


def test_pad_batch_pads_to_longest_only():
    batch = pad_batch(Encoded([[9], [1, 2, 3], [4]], []), [1, 2], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert "token_type_ids" not in batch


def test_pairs_are_encoded_with_segment_ids_and_bucketed_by_their_joint_length():
    tokenizer = load_tokenizer("minilm")
    pairs = TextDataset("p", ["a cat sat", "dogs"], [0, 1], ["no", "yes"], ["on the mat today", "bark loudly"])
    encoded = encode_dataset(tokenizer, pairs, 64)
    first = tokenizer.convert_ids_to_tokens(encoded.ids[0])
    assert first == ["[CLS]", "a", "cat", "sat", "[SEP]", "on", "the", "mat", "today", "[SEP]"]
    assert encoded.token_types[0] == [0] * 5 + [1] * 5
    assert encoded.lengths().tolist() == [10, 6]
    batch = pad_batch(encoded, [0, 1], tokenizer.pad_token_id)
    assert batch["token_type_ids"].tolist()[1] == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert model_inputs({**batch, "labels": torch.zeros(2)}).keys() == {"input_ids", "attention_mask", "token_type_ids"}
    assert pairs.subset([1]).inputs == [("dogs", "bark loudly")]


@pytest.mark.parametrize("name,rows,classes,segments", [
    ("advglue-rte", 81, ["entailment", "not_entailment"], ("sentence1", "sentence2")),
    ("advglue-qnli", 148, ["entailment", "not_entailment"], ("question", "sentence")),
    ("advglue-qqp", 78, ["not_duplicate", "duplicate"], ("question1", "question2")),
    ("advglue-mnli", 121, ["entailment", "neutral", "contradiction"], ("premise", "hypothesis")),
    ("advglue-mnli-mm", 162, ["entailment", "neutral", "contradiction"], ("premise", "hypothesis"))])
def test_advglue_pair_sets_load_both_segments_with_their_task_classes(name, rows, classes, segments):
    data = load_dataset(name)
    assert (len(data), data.label_names, data.segment_names, data.is_pair) == (rows, classes, segments, True)
    assert all(a and b and a != b for a, b in data.inputs)
    assert set(data.labels) == set(range(len(classes)))


def test_an_advglue_file_without_the_task_says_which_parts_it_has(tmp_path, monkeypatch):
    (tmp_path / "advglue").mkdir()
    (tmp_path / "advglue" / "dev.json").write_text('{"sst2": []}', encoding="utf-8")
    monkeypatch.setenv("ROBUSTLAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"has no 'rte' part \(it has: 'sst2'\)"):
        load_dataset("advglue-rte")
