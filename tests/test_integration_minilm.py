"""One integration test on the real MiniLM: a few hundred SST-2 examples must teach it something."""
from __future__ import annotations

from engine.inference import predict_probs
from engine.jobs import execute
from engine.models import load_trained
from engine.runs import RunStore
from engine.train_config import TrainConfig


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
