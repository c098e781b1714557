"""Keep a trained model in memory as training saves it, so a test can check that loading the saved run
gives back exactly that model (and not, say, a model whose weights were never loaded).

Import it as `saved_model_util`, not `tests.saved_model_util` (see browser_util for why).

    with keep_saved_models():
        train(config, run)
    assert_reloads_as_trained(run.dir)
"""
from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

PROBE_TEXTS = ["a gripping, funny film", "dull and far too long", "it is what it is", "a fine film",
               "a dreadful mess", "the best thing this year"]

_KEPT: dict[Path, torch.nn.Module] = {}


@contextlib.contextmanager
def keep_saved_models() -> Iterator[None]:
    """While active, each model the training loop saves is also deep-copied here, keyed by its run folder."""
    import engine.training.train

    save = engine.training.train.save_trained

    def save_and_keep(model, tokenizer, hf_config, folder: Path) -> None:
        _KEPT[Path(folder).parent.resolve()] = copy.deepcopy(model).eval()
        save(model, tokenizer, hf_config, folder)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.training.train, "save_trained", save_and_keep)
        yield


def assert_reloads_as_trained(run_dir: Path):
    """Loading the run predicts what the trained model predicted in memory, and a freshly built untrained
    model does not (so the comparison can tell a loaded model from an unloaded one).

    Returns load_trained's (model, tokenizer, method).
    """
    from engine.models.inference import predict_probs
    from engine.models.loading import build_classifier, load_trained

    trained = _KEPT.get(Path(run_dir).resolve())
    assert trained is not None, f"{run_dir} was not trained inside keep_saved_models()"
    model, tokenizer, method = load_trained(run_dir)
    expected = predict_probs(trained, method, tokenizer, PROBE_TEXTS)
    np.testing.assert_allclose(predict_probs(model, method, tokenizer, PROBE_TEXTS), expected, rtol=0, atol=1e-7)
    config = json.loads((Path(run_dir) / "config.json").read_text())
    untrained = method.prepare_model(build_classifier(config["model"], model.config.num_labels, config["seed"]))
    moved = np.abs(predict_probs(untrained, method, tokenizer, PROBE_TEXTS) - expected).max()
    assert moved > 1e-6, f"training did not change the predictions ({moved:.2g}): the check above proves nothing"
    return model, tokenizer, method
