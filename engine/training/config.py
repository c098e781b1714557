"""`TrainConfig`: every hyperparameter of one training run, each field with the help text the CLI shows.

Kept apart from the training loop (engine/training/train.py) so the command line can build its `train` flags
from these fields without importing torch (`python -m engine --help` stays instant).
"""
from __future__ import annotations

import copy
import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any

from engine import limits
from engine.user_text import quoted

# Peak learning rate when a config leaves `lr` unset, per model (docs/defaults.md has the sweep behind it).
# MiniLM: 5e-5 left 1,000 examples x 1 epoch at chance; 2e-4 learns there and is best at 2,000 x 2.
# tiny: random init, used by the tests, which depend on its behaviour at 5e-5.
DEFAULT_LR = {"minilm": 2e-4, "tiny": 5e-5}
OTHER_MODEL_LR = 5e-5   # a folder or hub id: BERT-base-like, fine-tuned at the usual 2e-5..5e-5


def default_lr(model: str) -> float:
    """The peak learning rate a run of `model` uses unless one is given."""
    return DEFAULT_LR.get(model, OTHER_MODEL_LR)


def default_lr_text() -> str:
    """The per-model defaults in words, for help texts."""
    return ", ".join(f"{name} {lr:g}" for name, lr in DEFAULT_LR.items()) + f", other models {OTHER_MODEL_LR:g}"


class ConfigError(ValueError):
    """Impossible hyperparameters; the message says which and why. `reasons` pairs each reason with the
    TrainConfig field at fault (None where no one field is), so the command line can name the flag."""

    def __init__(self, *reasons: tuple[str | None, str]) -> None:
        super().__init__("; ".join(text for _, text in reasons))
        self.reasons = reasons


def option(default: Any, help: str, none: str | None = None) -> Any:
    """A config field with its help text. `none` says what None means for a field that may be None
    (the CLI writes None as -1)."""
    metadata = {"help": help, "none": none}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    dataset: str = option("sst2", "sst2, rte, qnli, qqp, mnli, or csv:PATH")
    model: str = option("minilm", "minilm, tiny, a local folder or a hub id")
    method: str = option("vanilla", "see `python -m engine methods`")
    settings: dict[str, Any] = option({}, "the method's settings, by name")
    train_size: int | None = option(2000, "training examples (a seeded sample)", none="the whole training set")
    epochs: int = option(2, "passes over the training examples")
    batch_size: int = option(32, "examples per step")
    lr: float | None = option(None, "peak AdamW learning rate (linear warm-up, then linear decay)",
                              none=f"the model's default ({default_lr_text()})")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and LayerNorm weights)")
    warmup_ratio: float = option(0.1, "share of the steps the learning rate warms up over")
    adam_beta2: float = option(0.999, "AdamW's beta2")
    grad_clip: float = option(1.0, "gradient norm clipped to this before each step")
    max_length: int = option(128, "tokens per sentence; longer ones are cut")
    seed: int = option(0, "fixes the sample, the classifier head and the batch order")
    eval_every: int = option(0, "steps between dev evaluations (0: four per run)")
    dev_size: int | None = option(None, "dev examples for the evaluations during training (a seeded sample)",
                                  none="the whole dev set")
    record_every: int = option(0, "steps between the methods' heavy records (0: about 40 per run)")
    log_every: int = option(5, "steps between logged training scalars")
    dev_fraction: float = option(0.1, "share of an uploaded CSV held out as its dev set")
    label_order: list[str] | None = option(None, "the class names of a CSV whose labels are names, in id order "
                                                 "(every label of the file once)", none="sorted by name")
    text_column: str | None = option(None, "a CSV's text column (the first text of a sentence pair)",
                                     none="found by name: text, sentence, review, content or document; a pair of "
                                          "sentence1/sentence2, premise/hypothesis, question/sentence or "
                                          "question1/question2 makes the rows sentence pairs")
    text_column_b: str | None = option(None, "a CSV's second text column: each row is then a sentence pair",
                                       none="found by name with the first; single sentences when there is none")
    label_column: str | None = option(None, "a CSV's label column",
                                      none="found by name: label, labels, class, target or y")
    task: str | None = option(None, "the GLUE pair task a CSV of sentence pairs holds (rte, qnli, qqp, mnli): its "
                                    "labels are that task's classes (names or GLUE's ids) and get GLUE's ids, and "
                                    "the run is also scored on the task's AdvGLUE sets",
                              none="the CSV is a task of its own")
    extra_data: str | None = option(None, "a CSV (text and label columns, labels among the run's classes) whose rows "
                                          "are added to the training sample, e.g. failing behaviour cases",
                                    none="none")
    device: str = option("auto", "auto, cpu, cuda, mps")
    corruption: dict[str, Any] | None = option(None, "corruption spec applied to the pretrained encoder before "
                                                     "training (engine/models/corruption.py)", none="no corruption")

    def __post_init__(self) -> None:
        # None means the model's default, written as the number so config.json records the rate used.
        # (So `dataclasses.replace(config, model=...)` keeps the old model's rate: build a new config instead.)
        if self.lr is None:
            self.lr = default_lr(self.model)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fitted_to(self, pool: int) -> TrainConfig:
        """This config with `train_size` no larger than the `pool` training examples the data has, so the stored
        config says how many were used (asking for more takes them all, exactly as asking for `pool` does)."""
        if self.train_size is None or self.train_size <= pool:
            return self
        return dataclasses.replace(self, train_size=pool)

    def check(self) -> None:
        """Refuse impossible hyperparameters and method settings before any work starts: one ConfigError with
        every reason, each paired with its field."""
        problems: list[tuple[str, str]] = self._number_problems()
        if problems:   # a nan, inf or a count past its cap: the range checks below would only repeat it
            raise ConfigError(*problems)
        if self.train_size is not None and self.train_size < 1:
            problems.append(("train_size", f"train size must be at least 1 (got {self.train_size})"))
        if self.dev_size is not None and self.dev_size < 1:
            problems.append(("dev_size", f"dev size must be at least 1 (got {self.dev_size}); leave it unset for "
                                         f"the whole dev set"))
        if self.epochs < 1:
            problems.append(("epochs", f"epochs must be at least 1 (got {self.epochs})"))
        if self.batch_size < 1:
            problems.append(("batch_size", f"batch size must be at least 1 (got {self.batch_size})"))
        if not 0 < self.lr < 1:
            problems.append(("lr", f"learning rate must be in (0, 1) (got {self.lr:g})"))
        if self.weight_decay < 0:
            problems.append(("weight_decay", f"weight decay must be >= 0 (got {self.weight_decay:g})"))
        if not 0 <= self.warmup_ratio < 1:
            problems.append(("warmup_ratio", f"warm-up ratio must be in [0, 1) (got {self.warmup_ratio:g})"))
        if not 0 < self.adam_beta2 < 1:
            problems.append(("adam_beta2", f"Adam beta2 must be in (0, 1) (got {self.adam_beta2:g})"))
        if self.grad_clip <= 0:
            problems.append(("grad_clip", f"gradient clipping norm must be > 0 (got {self.grad_clip:g})"))
        if not limits.MIN_LENGTH <= self.max_length <= limits.MAX_LENGTH:
            problems.append(("max_length", f"max length must be in [{limits.MIN_LENGTH}, {limits.MAX_LENGTH}] "
                                           f"tokens (got {self.max_length})"))
        if self.seed < 0:
            problems.append(("seed", f"seed must be a whole number >= 0 (got {self.seed})"))
        for name in ("eval_every", "record_every"):
            if getattr(self, name) < 0:
                problems.append((name, f"{name} must be >= 0 (got {getattr(self, name)})"))
        if self.log_every < 1:
            problems.append(("log_every", f"log_every must be at least 1 (got {self.log_every})"))
        if not 0 < self.dev_fraction < 1:
            problems.append(("dev_fraction", f"dev fraction must be in (0, 1) (got {self.dev_fraction:g})"))
        for name in ("dataset", "extra_data"):
            path = getattr(self, name)
            problem = path and limits.path_problem(path.removeprefix("csv:"))
            if problem:
                problems.append((name, f"{quoted(path)} cannot be a file: {problem}"))
        problems += self._csv_problems()
        if self.train_size is not None and self.batch_size > self.train_size:
            problems.append(("batch_size", f"batch size {self.batch_size} is larger than the {self.train_size} "
                                           f"training examples"))
        if problems:
            raise ConfigError(*problems)
        from engine.methods import SettingError, make_method, registry  # torch: only when a config is checked

        try:
            make_method(self.method, self.settings)
        except SettingError as err:
            raise ConfigError(("settings" if self.method in registry() else "method", str(err))) from err

    def _number_problems(self) -> list[tuple[str, str]]:
        """Every float field that is nan or infinite, and every count past its cap (engine/limits.py says why
        each cap is where it is): such a run would train on NaN weights, never end, or not fit the run index."""
        problems = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if limits.not_finite(value):
                problems.append((f.name, f"{f.name.replace('_', ' ')} must be a finite number (got {value})"))
        caps = {"seed": limits.MAX_SEED, "epochs": limits.MAX_EPOCHS, "train_size": limits.MAX_EXAMPLES,
                "dev_size": limits.MAX_EXAMPLES, "batch_size": limits.MAX_BATCH_SIZE,
                "eval_every": limits.MAX_INTERVAL, "record_every": limits.MAX_INTERVAL,
                "log_every": limits.MAX_INTERVAL}
        for name, cap in caps.items():
            value = getattr(self, name)
            if isinstance(value, bool) or (value is not None and not isinstance(value, numbers.Integral)):
                problems.append((name, f"{name.replace('_', ' ')} must be a whole number (got {quoted(value)})"))
            elif value is not None and value > cap:
                problems.append((name, f"{name.replace('_', ' ')} must be at most {cap:,} (got "
                                       f"{limits.number_text(value)})"))
        return problems

    def _csv_problems(self) -> list[tuple[str, str]]:
        """The CSV-only fields given for a registered set, an unknown task, or a task with its own label order."""
        from engine.data.text_dataset import PAIR_TASKS  # numpy: only when a config is checked

        problems = []
        if not self.dataset.startswith("csv:"):
            problems += [(name, f"{name.replace('_', ' ')} is for an uploaded CSV (csv:PATH); {self.dataset} has "
                                f"its own columns and task")
                         for name in ("text_column", "text_column_b", "label_column", "task")
                         if getattr(self, name) is not None]
        elif self.task is not None and self.task not in PAIR_TASKS:
            problems.append(("task", f"task must be one of {', '.join(PAIR_TASKS)} (got {quoted(self.task)})"))
        elif self.task is not None and self.label_order is not None:
            problems.append(("label_order", f"the task {self.task} fixes the class order (GLUE's: "
                                            f"{', '.join(PAIR_TASKS[self.task].label_names)}); leave the label "
                                            f"order out"))
        return problems
