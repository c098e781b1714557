"""The method interface: the hooks the one training loop calls, and validated settings.

A method says what it adds to the forward pass and loss (`training_loss`), what it does to gradients
just before the optimizer step (`before_step`, or its own optimizer), what it records (declared in
`artifacts`), and how the trained model predicts (`logits`). Vanilla fine-tuning is this class with
nothing overridden.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from engine.data.batching import model_inputs
from engine.user_text import quoted


class SettingError(ValueError):
    """A method setting is outside its range; the message names the range."""


@dataclass(frozen=True)
class Setting:
    """One tunable of a method, with the range the UI and CLI enforce."""
    name: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False      # True: the low end itself is not allowed
    high_open: bool = False
    choices: tuple | None = None

    def range_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        opening = "(" if self.low_open or self.low is None else "["
        closing = ")" if self.high_open or self.high is None else "]"
        return f"{opening}{lo}, {hi}{closing}"

    def parse(self, value: Any) -> Any:
        """Coerce a value (maybe a CLI string) to the default's type and check its range."""
        kind = type(self.default)
        try:
            if kind is bool and isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("true", "1", "yes")
            elif kind is list and isinstance(value, str):
                value = [int(v) for v in value.replace(";", ",").split(",") if v.strip()]
            else:
                value = kind(value)
        except (TypeError, ValueError):
            raise SettingError(f"setting {self.name}={quoted(value)} should be a {kind.__name__}") from None
        if self.choices and value not in self.choices:
            raise SettingError(f"setting {self.name}={quoted(value)} must be {self.range_text()}")
        if isinstance(value, float) and not math.isfinite(value):   # nan passes every range comparison
            raise SettingError(f"setting {self.name}={value} must be a finite number in {self.range_text()}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
            too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
            if too_low or too_high:
                raise SettingError(f"setting {self.name}={value:g} is outside its range {self.range_text()}")
        return value


# The training options a preset may set: the optimiser's, which a method's source fixes together with its
# settings. The budget (examples, epochs), the data, the model and the seed belong to the study, never to a preset.
PRESET_TRAINING_FIELDS = ("lr", "batch_size", "weight_decay", "warmup_ratio", "adam_beta2", "grad_clip", "max_length")


@dataclass(frozen=True)
class Preset:
    """A named set of values taken from one source (e.g. the official README's SST-2 row), so a run can say
    "as the authors trained it" in one word. `settings` are method settings; `training` the TrainConfig fields
    the source fixes, limited to PRESET_TRAINING_FIELDS. A value given explicitly (a `--set` or a flag, a field
    changed on the Train page) wins over the preset's."""
    name: str
    source: str                                   # where the numbers come from, in words
    settings: Mapping[str, Any]
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stray = sorted(set(self.training) - set(PRESET_TRAINING_FIELDS))
        if stray:
            raise ValueError(f"preset {self.name} sets {', '.join(stray)}; a preset may set only "
                             f"{', '.join(PRESET_TRAINING_FIELDS)}")


@dataclass
class StepContext:
    """What a hook may look at: where training is, and where to record."""
    step: int
    total_steps: int
    epoch: int
    device: torch.device
    recorder: Any
    record_now: bool = False    # True on steps where heavy artifacts should be recorded
    lr_warmup_steps: int = 0    # steps the learning rate warms up over (the scheduler's)


class Method:
    """Vanilla fine-tuning; other methods override the hooks they need."""

    name = "vanilla"
    title = "Vanilla fine-tuning"
    summary_line = "Plain cross-entropy fine-tuning with AdamW: the baseline every robust method is compared to."
    settings_spec: tuple[Setting, ...] = ()
    presets: ClassVar[tuple[Preset, ...]] = ()      # named settings from the method's sources (`--set preset=NAME`)
    # what the method records into the run: {artifact name: array keys it always holds}; a test trains every
    # registered method and checks it writes exactly these (the loop's own records: train.LOOP_ARTIFACTS)
    artifacts: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = dict(settings or {})
        known = {s.name: s for s in self.settings_spec}
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise SettingError(f"method {self.name} has no setting {', '.join(unknown)}; "
                               f"its settings: {', '.join(known) or 'none'}")
        self.settings = {name: spec.parse(settings.get(name, spec.default)) for name, spec in known.items()}
        self.check_settings()

    @classmethod
    def preset(cls, name: str) -> Preset:
        """The preset called `name`; SettingError naming the method's presets otherwise."""
        for preset in cls.presets:
            if preset.name == name:
                return preset
        raise SettingError(f"method {cls.name} has no preset {quoted(name)}; its presets: "
                           f"{', '.join(p.name for p in cls.presets) or 'none'}")

    def check_settings(self) -> None:
        """Cross-setting checks (e.g. a lower quantile above the upper one)."""

    def check_layers(self, num_layers: int) -> None:
        """Refuse settings that do not fit an encoder of `num_layers` layers (SettingError), before a run is
        created rather than when the model is built."""

    # -- model

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Wrap or extend the classifier before training and before loading saved weights."""
        return model

    def make_optimizer(self, model: nn.Module, lr: float, weight_decay: float,
                       betas: tuple[float, float]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas, eps=1e-8)

    # -- the two stages of a step

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward work and the loss to backpropagate, plus scalars to log."""
        logits = self.logits(model, batch)
        return nn.functional.cross_entropy(logits, batch["labels"]), {}

    def before_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, ctx: StepContext) -> None:
        """Rewrite or mask gradients after clipping, just before the optimizer step."""

    def after_step(self, model: nn.Module, ctx: StepContext) -> None:
        """Record what the method did at this step."""

    # -- inference and reporting

    def logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**model_inputs(batch)).logits

    @property
    def batch_dependent_logits(self) -> bool:
        """True when a text's logits depend on the other texts in its batch: then no per-text cache may
        serve them (`engine.models.inference.LoadedModel` recomputes every query)."""
        return False

    def extra_evaluation(self, model: nn.Module, encoded, batch_size: int,
                         device: torch.device) -> dict[str, float]:
        """Extra dev metrics in other evaluation modes (e.g. Match-Tuning's in-batch mode)."""
        return {}

    def summary(self) -> dict[str, float]:
        """`method_summary` in the train command's JSON."""
        return {}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights, as in BERT fine-tuning."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
