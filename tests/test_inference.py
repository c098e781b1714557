"""The one inference path, checked against a plain forward pass of each text on its own; and where a
BERT keeps its parts (`engine.models.loading.encoder_parts`, `word_embeddings`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.methods import make_method
from engine.models.architecture import NotBertError, encoder_parts, word_embeddings
from engine.models.inference import Cancelled, LoadedModel, batched_logits, label_names_for, predict_probs
from engine.models.loading import build_classifier, load_tokenizer
from engine.store.runs import write_json

TEXTS = ["a gripping , funny film", "dull", "the acting , costumes , music and sound are all astounding",
         "bad and long", "a quiet , moving portrait of two lives", "fine"]
ATOL = 2e-4   # padding changes float round-off (the scaled head magnifies it); rows differ by > 1e-2


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


def tiny(method_name: str = "vanilla", settings: dict | None = None):
    """A random tiny model whose head is scaled up, so that different texts get clearly different logits."""
    method = make_method(method_name, settings or {})
    model = method.prepare_model(build_classifier("tiny", 2, seed=3)).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(1000.0)
    return model, method


def one_at_a_time(model, tokenizer, texts: list[str]) -> np.ndarray:
    """The reference: each text alone, no padding, no sorting."""
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text, truncation=True, max_length=128)["input_ids"]])
            rows.append(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float().numpy())
    return np.stack(rows)


def test_batched_logits_are_each_texts_own_logits_in_input_order(tokenizer):
    model, method = tiny()
    expected = one_at_a_time(model, tokenizer, TEXTS)
    gaps = np.abs(expected[:, None] - expected[None]).max(-1)
    assert gaps[~np.eye(len(TEXTS), dtype=bool)].min() > 1e-2        # rows differ, so order is checked
    got = batched_logits(model, method, tokenizer, TEXTS, 128, batch_size=4)
    np.testing.assert_allclose(got, expected, atol=ATOL)
    probs = predict_probs(model, method, tokenizer, TEXTS, batch_size=4)
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(expected), -1).numpy(), atol=ATOL)
    assert batched_logits(model, method, tokenizer, [], 128, batch_size=4).shape[0] == 0


def test_loaded_model_caches_and_matches_the_reference(tokenizer):
    model, method = tiny()
    loaded = LoadedModel(model, tokenizer, method, label_names=["neg", "pos"])
    expected = one_at_a_time(model, tokenizer, TEXTS)
    np.testing.assert_allclose(loaded.logits(TEXTS, batch_size=4), expected, atol=ATOL)
    forwarded = loaded.stats["forward_texts"]
    again = loaded.logits(list(reversed(TEXTS)) + [TEXTS[0]], batch_size=4)
    np.testing.assert_allclose(again, np.concatenate([expected[::-1], expected[:1]]), atol=ATOL)
    assert loaded.stats["forward_texts"] == forwarded                  # all from the cache
    assert loaded.logits([]).shape == (0, 2)


def test_loaded_model_stops_before_a_batch(tokenizer):
    model, method = tiny()
    with pytest.raises(Cancelled):
        LoadedModel(model, tokenizer, method).logits(TEXTS, should_stop=lambda: True)


def test_im_bert_with_exact_gradient_predicts_through_the_shared_model(tokenizer):
    """IM-BERT's exact-gradient solver differentiates inside its forward pass, which inference mode
    forbids; the shared path must run it (the Playground and attacks use it)."""
    model, method = tiny("im-bert", {"K": 2, "exact_grad": True})
    expected = one_at_a_time(model, tokenizer, TEXTS[:3])
    np.testing.assert_allclose(LoadedModel(model, tokenizer, method).logits(TEXTS[:3]), expected, atol=ATOL)


def test_label_names_are_the_runs_stored_ones_else_sst2_or_numbers(tmp_path):
    """A run stores its class names (results.json); one trained before that gets SST-2's names on SST-2 and
    numbers elsewhere, as many as its saved model has classes."""
    def run_dir(name: str, dataset: str, classes: int, results: dict | None = None):
        folder = tmp_path / name
        (folder / "model").mkdir(parents=True)
        write_json(folder / "config.json", {"dataset": dataset})
        write_json(folder / "model" / "config.json", {"id2label": {str(i): f"LABEL_{i}" for i in range(classes)}})
        if results is not None:
            write_json(folder / "results.json", results)
        return folder

    assert label_names_for(run_dir("a", "sst2", 2)) == ["negative", "positive"]
    assert label_names_for(run_dir("b", "advglue-sst2", 2)) == ["negative", "positive"]
    assert label_names_for(run_dir("c", "csv:/x.csv", 3)) == ["0", "1", "2"]
    assert label_names_for(run_dir("d", "csv:/x.csv", 3, {"label_names": ["film", "money", "sport"]})) == [
        "film", "money", "sport"]


def test_encoder_parts_are_the_models_own_also_after_a_method_changed_it():
    model, _ = tiny()
    embeddings, layers = encoder_parts(model)
    assert embeddings is model.bert.embeddings and layers is model.bert.encoder.layer
    assert word_embeddings(model) is model.bert.embeddings.word_embeddings
    converted, _ = tiny("im-bert")
    assert encoder_parts(converted)[1] is converted.bert.encoder.layer
    assert type(converted.bert.encoder.layer[0]).__name__ == "EulerConnection"


def test_a_model_that_is_not_bert_is_refused_clearly():
    with pytest.raises(NotBertError, match="Linear is not a BERT-style encoder"):
        encoder_parts(torch.nn.Linear(4, 2))
    with pytest.raises(NotBertError):
        word_embeddings(torch.nn.Linear(4, 2))


def test_in_batch_match_tuning_logits_depend_on_the_batch_and_are_never_cached(tokenizer):
    """Match-Tuning predicting in-batch: a text's logits change with its batch, so LoadedModel must compute every
    query as asked (no cache hit, no merging of a repeated text), while the bypass mode is cached as usual."""
    model, method = tiny("match-tuning", {"inference": "in-batch", "temperature": 1.0})
    assert method.batch_dependent_logits
    loaded = LoadedModel(model, tokenizer, method, label_names=["neg", "pos"])
    pair = TEXTS[:2]
    alone = loaded.logits(pair)
    crowded = loaded.logits(pair + TEXTS[2:])
    assert np.abs(alone - crowded[:2]).max() > 1e-2                     # same texts, other batch, other logits
    again = loaded.logits([pair[0], *pair])                             # a repeated text stays in the batch
    np.testing.assert_array_equal(again, batched_logits(model, method, tokenizer, [pair[0], *pair], 128, 64))
    asked = len(pair) + len(TEXTS) + 3
    assert loaded.stats == {"texts": asked, "cache_hits": 0, "forward_texts": asked}
    assert loaded.logits([]).shape == (0, 2)
    bypass = LoadedModel(model, tokenizer, make_method("match-tuning"), label_names=["neg", "pos"])
    bypass.logits(pair)
    bypass.logits(pair)
    assert not bypass.method.batch_dependent_logits and bypass.stats["cache_hits"] == 2


def test_the_shared_tokenizer_waits_for_the_model_lock(tokenizer):
    """Two threads on one LoadedModel (two Playground tabs): a fast tokenizer fails a second caller mid-call
    ("Already borrowed"), so a tokenizer call waits while another thread holds the model's lock."""
    import threading

    model, method = tiny()
    loaded = LoadedModel(model, tokenizer, method)
    started, done = threading.Event(), threading.Event()

    def tokenize() -> None:
        started.set()
        loaded.tokenizer(["a sentence"], truncation=True, max_length=8)
        done.set()

    with loaded.lock:
        worker = threading.Thread(target=tokenize)
        worker.start()
        started.wait()
        assert not done.wait(0.3)          # blocked while this thread holds the lock
    worker.join(10)
    assert done.is_set()
    assert loaded.tokenizer.pad_token_id == tokenizer.pad_token_id
