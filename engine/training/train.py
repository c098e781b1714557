"""The one training loop. Methods plug in through their hooks; there is no per-method branch here.

Read it top to bottom: config, data, model, optimizer, then the loop (loss, backward, clip, method's
gradient stage, step), evaluation every `eval_every` steps, and at the end a checkpoint and results.
"""
from __future__ import annotations

import math
import platform
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import transformers
from transformers import get_linear_schedule_with_warmup

from engine.data.advglue import official_accuracy, set_key
from engine.data.batching import bucketed_batches, encode_dataset, iter_batches
from engine.data.csv_table import encoding_note, file_encoding
from engine.data.registry import DEV_SET, ROBUSTNESS_SETS, load_dataset
from engine.data.splits import absent_classes, run_dataset, split_sizes_text, split_train_dev, task_of
from engine.data.text_dataset import DataError, FieldDataError, LabelOrderDataError, TextDataset
from engine.execution.kinds import Progress
from engine.explain.input_gradient import PROBE_SIZE, input_gradient_norm
from engine.methods import SettingError, StepContext, make_method
from engine.methods._tensors import DriftTracker
from engine.models.architecture import ModelError
from engine.models.corruption import CorruptionError, check_spec, corrupt, model_layer_count
from engine.models.device import DeviceError, autocast, describe, pick_device
from engine.models.folder import check_model_folder, device_memory
from engine.models.inference import predict_probs
from engine.models.loading import build_classifier, load_tokenizer, pair_encoding_problem, save_trained
from engine.store.runs import Run
from engine.training.config import ConfigError, TrainConfig
from engine.training.evaluate import has_learned, record_eval, score
from engine.training.extra_data import with_extra_rows
from engine.training.recorder import Recorder

# what the loop itself records for every method: {artifact: array keys} (a method's own: Method.artifacts)
LOOP_ARTIFACTS: dict[str, tuple[str, ...]] = {"drift": ("step", "drift")}


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite: every step after it would only spread NaN through the weights,
    so the run stops and fails with the step."""


def preflight(config: TrainConfig) -> Splits:
    """Everything that can be refused before a run is created: the hyperparameters and method settings, the
    device, the model, the settings and the corruption against the model's depth, the data files. Each refusal
    is a ConfigError whose reasons name the field at fault, so the command line can name the flag. Returns the
    splits, whose `pool` and `notes` say what the run will train on."""
    config.check()
    with _refusing("device", DeviceError):
        device = pick_device(config.device)
    with _refusing("model", ModelError):
        check_model_folder(config.model, device_memory(device))   # remote code, pickle weights, too large
        tokenizer = load_tokenizer(config.model)
        num_layers = model_layer_count(config.model)
    with _refusing("settings", SettingError):
        make_method(config.method, config.settings).check_layers(num_layers)
    if config.corruption:
        with _refusing("corruption", CorruptionError):
            check_spec(config.corruption, num_layers)
    with _refusing("dataset", DataError), _refusing("label_order", LabelOrderDataError):
        splits = load_splits(config)
    check_pairs(config, tokenizer, splits.train)
    return splits


def check_pairs(config: TrainConfig, tokenizer, data: TextDataset) -> None:
    """Refuse sentence pairs for a model whose tokenizer cannot encode them (the two texts would run together)."""
    problem = pair_encoding_problem(tokenizer) if data.is_pair else None
    if problem:
        raise ConfigError(("model", f"{data.name} holds sentence pairs ({' / '.join(data.segment_names)}), but "
                                    f"model {config.model} cannot read them: {problem}. Use a BERT-style model "
                                    f"(minilm, tiny, or a folder or hub id whose tokenizer has a [SEP] token)"))


@contextmanager
def _refusing(field: str, error: type[Exception]) -> Iterator[None]:
    """An `error` raised inside becomes a ConfigError that blames `field` (a FieldDataError blames its own)."""
    try:
        yield
    except error as err:
        raise ConfigError((err.field if isinstance(err, FieldDataError) else field, str(err))) from err


@dataclass
class Splits:
    train: TextDataset
    dev: TextDataset
    dev_name: str
    robustness: dict[str, TextDataset]
    pool: int                  # the training examples there are, before the `train_size` sample
    notes: list[str]           # what to tell the user about the data before training: a guessed encoding, sizes


def load_splits(config: TrainConfig) -> Splits:
    """Training subset, dev set, and the robustness sets that go with the dataset."""
    notes: list[str] = []
    data = run_dataset(config.to_dict())
    absent = absent_classes(data)
    if absent:
        raise DataError(f"{data.name} has no example of the class {', '.join(absent)} (its classes: "
                        f"{', '.join(data.label_names)}); every class needs training examples")
    if config.dataset.startswith("csv:"):
        train, dev = split_train_dev(data, config.dev_fraction, config.seed)
        dev_name = "heldout"
        guessed = encoding_note(file_encoding(config.dataset[4:]))
        notes = [*([guessed] if guessed else []), split_sizes_text(len(data), len(dev), config.train_size)]
    else:
        train, dev_name = data, DEV_SET.get(config.dataset, config.dataset)
        dev = load_dataset(dev_name)
    robustness = {name: load_dataset(name) for name in ROBUSTNESS_SETS.get(task_of(config.to_dict()), [])}
    pool = len(train)
    train = train.sample(config.train_size, config.seed)
    if config.extra_data:
        sampled = len(train)
        train = with_extra_rows(train, config.extra_data)
        notes.append(f"plus {len(train) - sampled} extra training examples from {config.extra_data}")
    if config.batch_size > len(train):
        raise ConfigError(("batch_size", f"batch size {config.batch_size} is larger than the {len(train)} "
                                         f"training examples"))
    return Splits(train, dev, dev_name, robustness, pool, notes)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def environment() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "platform": platform.platform()}




def train(config: TrainConfig, run: Run | None = None, should_stop: Callable[[], bool] = lambda: False,
          progress: Progress | None = None) -> dict[str, Any]:
    """Fine-tune one model; returns the results dict (also written to the run's results.json)."""
    started = time.time()
    config.check()
    set_seed(config.seed)
    device = pick_device(config.device)
    check_model_folder(config.model, device_memory(device))   # a queued run skipped preflight (the Train page)
    method = make_method(config.method, config.settings)
    splits = load_splits(config)
    tokenizer = load_tokenizer(config.model)
    check_pairs(config, tokenizer, splits.train)   # a queued run skipped preflight (the Train page)
    base = build_classifier(config.model, splits.train.num_labels, config.seed)
    hf_config = base.config
    names = splits.train.label_names   # stored with the model and in results.json, so every view shows them
    hf_config.id2label = dict(enumerate(names))
    hf_config.label2id = {name: i for i, name in enumerate(names)}
    say = run.log if run else (lambda _msg: None)
    if config.corruption:
        say(f"corrupted before training: {corrupt(base, config.corruption)}")
    model = method.prepare_model(base).to(device)
    recorder = Recorder(run)
    for note in splits.notes:
        say(note)
    say(f"device {describe(device)}; {len(splits.train)} training examples; method {method.name} "
        f"{method.settings}")

    encoded = encode_dataset(tokenizer, splits.train, config.max_length)
    lengths = encoded.lengths()
    steps_per_epoch = math.ceil(len(splits.train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    eval_every = config.eval_every or max(1, total_steps // 4)
    record_every = config.record_every or max(1, total_steps // 40)
    dev = splits.dev.sample(config.dev_size, 0)
    drift = DriftTracker(model)   # every method's per-layer weight drift, so the pages can compare them
    optimizer = method.make_optimizer(model, config.lr, config.weight_decay, (0.9, config.adam_beta2))
    warmup_steps = int(config.warmup_ratio * total_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    rng = np.random.default_rng(config.seed)
    if run:
        run.set_status("running", total_steps=total_steps, step=0, device=describe(device), started=time.time())

    def evaluate_dev(step: int, data: TextDataset = dev) -> dict[str, float]:
        probs = predict_probs(model, method, tokenizer, data.inputs, config.max_length)
        result = score(probs, data.labels)
        sensitivity = input_gradient_norm(model, method, tokenizer, dev.inputs[:PROBE_SIZE], dev.labels[:PROBE_SIZE],
                                          config.max_length)   # the same sentences every time, every method
        recorder.scalars(step, "dev", {"accuracy": result["accuracy"], "loss": result["loss"],
                                       "input_grad_norm": sensitivity})
        return result

    step, seen, train_seconds, cancelled = 0, 0, 0.0, False
    window: list[float] = []
    for epoch in range(config.epochs):
        for batch in iter_batches(encoded, bucketed_batches(lengths, config.batch_size, rng),
                                  tokenizer.pad_token_id, device):
            tick = time.perf_counter()
            model.train()
            ctx = StepContext(step + 1, total_steps, epoch, device, recorder,
                              record_now=(step % record_every == 0 or step + 1 == total_steps),
                              lr_warmup_steps=warmup_steps)
            with autocast(device):
                loss, scalars = method.training_loss(model, batch, ctx)
            loss_value = loss.item()   # the one sync a step needs anyway (the log and progress read it)
            if not math.isfinite(loss_value):
                raise TrainingDiverged(f"the loss became {'NaN' if math.isnan(loss_value) else 'infinite'} at step "
                                       f"{step + 1}; lower the learning rate or check the model's weights")
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            method.before_step(model, optimizer, ctx)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            method.after_step(model, ctx)
            drift.record(ctx)
            if ctx.record_now:
                recorder.flush_if_due()   # every method's records reach the live pages while it trains
            step += 1
            seen += len(batch["labels"])
            train_seconds += time.perf_counter() - tick
            window.append(loss_value)

            if step % config.log_every == 0 or step == total_steps:
                mean_loss = float(np.mean(window))
                recorder.scalars(step, "train", {"loss": mean_loss, "grad_norm": float(grad_norm),
                                                 "lr": scheduler.get_last_lr()[0], **scalars})
                window = []
                recorder.flush(arrays=False)
                if run:
                    run.set_status(step=step, epoch=epoch, train_loss=mean_loss)
            if progress:
                progress(step, total_steps, loss_value)
            if step % eval_every == 0 and step < total_steps:
                result = evaluate_dev(step)
                say(f"step {step}/{total_steps}: dev accuracy {result['accuracy']:.4f}")
                recorder.flush()
            if should_stop():
                cancelled = True
                break
        if cancelled:
            break

    results: dict[str, Any] = {"run_id": run.id if run else None, "steps": step, "total_steps": total_steps,
                               "n_train": len(splits.train), "n_dev": len(splits.dev),
                               "train_seconds": round(train_seconds, 2),
                               "train_examples_per_second": round(seen / max(train_seconds, 1e-9), 2),
                               "device": describe(device), "method_summary": method.summary(), "label_names": names,
                               "segment_names": list(splits.train.segment_names) if splits.train.is_pair else None}
    if cancelled:
        recorder.flush()
        say(f"cancelled at step {step}/{total_steps}; everything recorded so far is kept")
        results.update(status="cancelled", seconds=round(time.time() - started, 2))
        if run:
            run.set_status("cancelled", step=step, finished=time.time())
        return results

    final = evaluate_dev(step, splits.dev)   # the whole dev set: `dev_size` only speeds up the curves
    results.update(dev_set=splits.dev_name, dev_accuracy=final["accuracy"], dev_loss=final["loss"],
                   chance_accuracy=final["chance_accuracy"],
                   learned=has_learned(final["accuracy"], final["chance_accuracy"]))
    for name, data in splits.robustness.items():
        result = score(predict_probs(model, method, tokenizer, data.inputs, config.max_length), data.labels)
        recorder.scalars(step, name, {"accuracy": result["accuracy"], "loss": result["loss"]})
        results[set_key(name)] = result["accuracy"]
        if run:
            record_eval(run, name, result)
    # the run's own task's AdvGLUE accuracy by the official scoring, one field whatever the task (None without one)
    results["advglue_accuracy"] = official_accuracy(task_of(config.to_dict()),
                                                    {name: results.get(set_key(name)) for name in splits.robustness})
    extra = method.extra_evaluation(model, encode_dataset(tokenizer, splits.dev, config.max_length),
                                    config.batch_size, device)
    recorder.scalars(step, "dev", extra)
    results.update(extra)
    results["method_summary"] = method.summary()
    recorder.flush()
    if run:
        record_eval(run, splits.dev_name, final)
        save_trained(model, tokenizer, hf_config, run.dir / "model")
        learned = "" if results["learned"] else f" (did not learn: chance is {final['chance_accuracy']:.4f})"
        say(f"done: dev accuracy {final['accuracy']:.4f}{learned}; model saved")
    results.update(status="done", seconds=round(time.time() - started, 2))
    return results


def run_job(run: Run, should_stop: Callable[[], bool], progress: Progress | None = None) -> dict[str, Any]:
    """The `train` job kind: the run's config.json holds a TrainConfig."""
    config = TrainConfig.from_dict(run.config)
    run.log(f"config {config.to_dict()}; environment {environment()}")
    return train(config, run, should_stop, progress)
