"""One integration test on the real MiniLM: a few hundred SST-2 examples must teach it something."""
from __future__ import annotations

import pytest

from engine.execution.jobs import execute
from engine.models.inference import predict_probs
from engine.models.loading import load_trained
from engine.store.runs import RunStore
from engine.training.config import TrainConfig


@pytest.mark.slow
def test_minilm_learns_sst2_from_a_few_hundred_examples(run_home):
    store = RunStore(run_home)
    config = TrainConfig(model="minilm", train_size=400, epochs=1, batch_size=16, lr=8e-5, dev_size=300)
    run = store.create(config.to_dict())
    results = execute(store, run, lambda: False)
    assert results["status"] == "done", run.log_text()
    assert results["dev_accuracy"] > 0.65, results           # chance is 0.5; 0.69 seen
    model, tokenizer, method = load_trained(run.dir)
    probs = predict_probs(model, method, tokenizer, ["a wonderful , moving film .", "a dull , tedious mess ."])
    assert probs[0, 1] > 0.5 > probs[1, 1]


@pytest.mark.slow
def test_minilm_learns_generated_entailment_pairs_and_is_scored_on_advglue_rte(run_home, tmp_path):
    """A few hundred generated RTE-like pairs, declared as the rte task: the held-out pairs show it learned them,
    and AdvGLUE-RTE is scored at the end of training (that it need not learn)."""
    from pair_data_util import rte_like_pairs, write_pair_csv

    path = write_pair_csv(tmp_path / "rte-like.csv", rte_like_pairs(440))
    store = RunStore(run_home)
    config = TrainConfig(dataset=f"csv:{path}", task="rte", model="minilm", train_size=None, epochs=3,
                         batch_size=16, max_length=64)
    run = store.create(config.to_dict())
    results = execute(store, run, lambda: False)
    assert results["status"] == "done", run.log_text()
    assert results["label_names"] == ["entailment", "not_entailment"]
    assert results["chance_accuracy"] == 0.5 and results["dev_accuracy"] > 0.85, results   # 0.98 seen
    assert 0 <= results["advglue_rte_accuracy"] <= 1 and results["learned"]
