"""ROSE: robust selective fine-tuning (Jiang et al., EMNLP 2022), following the official code
(github.com/jiangllan/ROSE, `robustSSANs/utils/optimization.py` and `mytrainer.py`).

Every step, each candidate weight tensor (names containing "layer" and "weight": 8 per BERT layer)
gets one risk score; tensors whose score lies outside the [lower, upper] global quantile band are
frozen for that step. The freeze is done by the masked AdamW of `masked_optimizer` (shared with UEGR): a
frozen tensor sees its own momentum as its gradient, so it does not move and its momentum is kept.

- first order: risk = ||grad of the symmetric KL between two dropout passes||, not added to the loss;
- second order: risk = |(1 - beta1) ||g|| / ||m_prev|| - 1| from the clipped CE gradient and Adam's momentum;
- ensemble: mask = (1 - gamma) * second + gamma * first, so values in {0, 0.5, 1} for gamma = 0.5.

The official code backpropagates the KL a second time to get its per-tensor gradient norms; with two
classes `KLGradientNorms` gets the same numbers from the CE backward (see there), otherwise the second
backward pass is made.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from engine.data.batching import model_inputs
from engine.methods._tensors import describe_tensors, dropout_rates, rose_candidates
from engine.methods.base import Method, Preset, Setting, SettingError, StepContext, param_groups
from engine.methods.masked_optimizer import MaskedAdamW

SECOND_ORDER_COEF = 0.1   # the official code hard-codes (1 - beta1) = 0.1


# ---------------------------------------------------------------- risk scores and masks

def band_mask(scores: torch.Tensor, lower: float, upper: float) -> tuple[torch.Tensor, float, float]:
    """Keep-mask (1.0/0.0) of the scores between the lower and upper percentiles (global, inclusive),
    plus the two thresholds. Percentiles are 0..100, as in the released scripts."""
    q = torch.tensor([lower / 100.0, upper / 100.0], dtype=scores.dtype, device=scores.device)
    low, high = torch.quantile(scores, q)
    return ((scores >= low) & (scores <= high)).to(scores.dtype), float(low), float(high)


def second_order_risk(grad_norms: torch.Tensor, momentum_norms: torch.Tensor) -> torch.Tensor:
    """|0.1 * ||g_i|| / ||m_i|| - 1|: how far the new gradient's share of the momentum departs from the
    momentum already built up. A zero momentum norm (never updated) gives the largest finite risk."""
    ratio = grad_norms / momentum_norms.clamp_min(torch.finfo(grad_norms.dtype).tiny)
    return (SECOND_ORDER_COEF * ratio - 1.0).abs()


def symmetric_kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1/4 [sum KL(softmax b || softmax a) + sum KL(softmax a || softmax b)] over the batch."""
    la, lb = torch.log_softmax(a.float(), -1), torch.log_softmax(b.float(), -1)
    kl_ba = torch.sum(lb.exp() * (lb - la))
    kl_ab = torch.sum(la.exp() * (la - lb))
    return 0.25 * (kl_ba + kl_ab)


class KLGradientNorms:
    """The first-order risk ||grad_W L_KL|| per tensor without a second backward pass (two classes).

    Both losses depend on the logits only through softmax, so with two classes the gradient of either
    one with respect to an example's logits is c_i (1, -1): one scalar per row. Backpropagation is
    linear and BERT keeps examples apart, so the gradient reaching a candidate module's output from the
    CE backward the loop runs anyway is c_CE_i times a vector that does not depend on the loss. Capturing
    each candidate module's input x and output gradient d during that backward gives the KL gradient as
    (d * c_KL_i / c_CE_i)^T x (Linear) or sum (d * c_KL_i / c_CE_i) * x_hat (LayerNorm): the same
    numbers as a second backward pass, for the price of one weight-gradient product per tensor.
    """

    def __init__(self, model: nn.Module, params: list[nn.Parameter]) -> None:
        wanted = {id(p): i for i, p in enumerate(params)}
        self.modules: list[nn.Module | None] = [None] * len(params)
        for module in model.modules():
            weight = module._parameters.get("weight") if isinstance(module, (nn.Linear, nn.LayerNorm)) else None
            if weight is not None and id(weight) in wanted:
                self.modules[wanted[id(weight)]] = module
        self.supported = all(m is not None for m in self.modules)
        self.active = False
        self.inputs: dict[nn.Module, torch.Tensor] = {}
        self.grads: dict[nn.Module, torch.Tensor] = {}
        self.ratio: torch.Tensor | None = None
        self.tokens: torch.Tensor | None = None
        if self.supported:
            for module in self.modules:
                module.register_forward_hook(self._forward)

    def _forward(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if self.active and torch.is_grad_enabled() and output.requires_grad:
            self.inputs[module] = args[0].detach()
            output.register_hook(lambda grad, m=module: self.grads.__setitem__(m, grad.detach()))

    def ready(self, logits: torch.Tensor, ce: torch.Tensor, kl: torch.Tensor, tokens: torch.Tensor) -> bool:
        """Keep the per-row ratio c_KL / c_CE when the shortcut is exact here (two classes, float32,
        no row whose CE gradient underflowed); False means the caller must backpropagate the KL itself.
        `tokens` is the attention mask: padding gets no gradient (attention never reads it), so it is
        left out of the weight-gradient products."""
        self.active = False
        if not self.supported or logits.shape[-1] != 2 or logits.dtype != torch.float32:
            return False
        c_ce = torch.autograd.grad(ce, logits, retain_graph=True)[0]
        c_kl = torch.autograd.grad(kl, logits, retain_graph=True)[0]
        if len(self.inputs) != len(self.modules) or bool((c_ce[:, 0].abs() < 1e-30).any()):
            return False
        self.ratio = (c_kl[:, 0] / c_ce[:, 0]).detach()
        self.tokens = tokens.bool() if tokens.shape[0] == logits.shape[0] else None
        return True

    @torch.no_grad()
    def norms(self) -> torch.Tensor | None:
        """||grad_W L_KL|| per candidate tensor from the captured backward; None if it did not run."""
        if self.ratio is None or len(self.grads) != len(self.modules):
            return None
        out = []
        for module in self.modules:
            x, d = self.inputs[module].float(), self.grads[module].float()
            d = d * self.ratio.view(-1, *([1] * (d.dim() - 1)))
            if self.tokens is not None and d.dim() == 3 and d.shape[:2] == self.tokens.shape:
                x, d = x[self.tokens], d[self.tokens]          # (real tokens, features)
            if isinstance(module, nn.Linear):
                grad = d.reshape(-1, d.shape[-1]).T @ x.reshape(-1, x.shape[-1])
            else:
                dims = tuple(range(-len(module.normalized_shape), 0))
                mean = x.mean(dims, keepdim=True)
                x_hat = (x - mean) / torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + module.eps)
                grad = (d * x_hat).reshape(-1, *module.normalized_shape).sum(0)
            out.append(grad.norm())
        self.clear()
        return torch.stack(out)

    def clear(self) -> None:
        self.inputs, self.grads, self.ratio, self.tokens, self.active = {}, {}, None, None, False


# ---------------------------------------------------------------- settings and presets
# Each help text names the source of its default: the official README / scripts, or RobustLab's own choice
# (docs/methods.md has the reasons).

README = "the official ROSE README (github.com/jiangllan/ROSE)"
# The README's per-task table, SST-2 column: (learning rate, upper) per variant and backbone.
README_SST2 = {"rose-first": {"base": (2e-5, 60.0), "large": (4e-5, 70.0)},
               "rose-second": {"base": (1e-4, 30.0), "large": (1e-5, 50.0)},
               "rose-ensemble": {"base": (5e-5, 40.0), "large": (1e-5, 70.0)}}
# What the README's run scripts (runs/run_train_sparse_*.sh) fix for every task; warm-up and clipping are the
# HF Trainer defaults the scripts leave in place. Epochs (10) and seed (8910) are the study's budget, not set.
README_TRAINING = {"batch_size": 32, "weight_decay": 0.01, "adam_beta2": 0.98, "max_length": 128,
                   "warmup_ratio": 0.0, "grad_clip": 1.0}
FOLLOW_LR_WARMUP = -1


def _upper(variant: str, default: float) -> Setting:
    base, large = (README_SST2[variant][size][1] for size in ("base", "large"))
    return Setting("upper", default, f"Upper percentile of the risk: tensors riskier than this are frozen for the "
                   f"step. Default {default:g}: RobustLab's choice for the 48 tensors of a 6-layer MiniLM. {README} "
                   f"trains SST-2 with {base:g} (RoBERTa-base) and {large:g} (RoBERTa-large): presets "
                   f"readme-sst2-base and readme-sst2-large.", low=0, high=100)


LOWER = Setting("lower", 0.0, "Lower percentile of the risk: tensors below it are frozen too. 0: the official "
                "README and every released script.", low=0, high=100)
KL_DROPOUT = Setting("kl_dropout", 0.1, "Dropout rate (hidden and attention) of the two passes whose "
                     "disagreement is the first-order risk. 0.1: the official README and scripts.",
                     low=0, high=1, high_open=True)
GAMMA = Setting("gamma", 0.5, "Weight of the first-order mask in the ensemble; 0.5 gives masks of 0, 0.5 and 1. "
                "0.5: the official README's ensemble command.", low=0, high=1)
WARMUP = Setting("warmup_steps", FOLLOW_LR_WARMUP, "Steps before masking starts: every tensor is updated until "
                 "then. -1 (default): the learning rate's warm-up steps, as in the official code, where one "
                 "num_warmup_steps sets both (0 in the released scripts, which have no warm-up).",
                 low=FOLLOW_LR_WARMUP)
TENSOR_KEYS = ("name", "layer", "module")
STEP_KEYS = ("step", "mask", "warmup")     # warmup: 1 at a step inside the mask warm-up (nothing frozen)
FIRST_KEYS = ("first_score", "first_low", "first_high")
SECOND_KEYS = ("second_score", "second_low", "second_high")


def readme_presets(variant: str) -> tuple[Preset, ...]:
    """The README's SST-2 settings for `variant`, one preset per backbone, each setting every method setting
    (so a preset never depends on RobustLab's defaults) and the optimiser options the scripts fix."""
    settings = {"lower": 0.0, "warmup_steps": FOLLOW_LR_WARMUP}
    if variant != "rose-second":
        settings["kl_dropout"] = 0.1
    if variant == "rose-ensemble":
        settings["gamma"] = 0.5
    return tuple(Preset(f"readme-sst2-{size}", f"{README}, SST-2 trained on RoBERTa-{size} (not tuned for MiniLM): "
                        f"lr {lr:g}, upper {upper:g}; "
                        f"batch 32, weight decay 0.01, Adam beta2 0.98, max length 128 and no warm-up from its "
                        f"run scripts", {**settings, "upper": upper}, {"lr": lr, **README_TRAINING})
                 for size, (lr, upper) in README_SST2[variant].items())


class _Rose(Method):
    """Shared machinery; the variants say which risks they compute."""

    first_order = False
    second_order = False

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.optimizer: MaskedAdamW | None = None
        self.names: list[str] = []
        self.params: list[nn.Parameter] = []
        self.first_scores: torch.Tensor | None = None     # this step's first-order risk, when computed directly
        self.kl_norms: KLGradientNorms | None = None
        self.fast_kl = True                               # use the one-backward shortcut when it is exact
        self.keep_sum, self.keep_steps = 0.0, 0
        self.level_counts = np.zeros(3)      # tensors at mask 0, 0.5 (in between), 1 over all steps
        self.warmup_used: int | None = None   # the mask warm-up in steps, once training has started

    def check_settings(self) -> None:
        if self.settings["lower"] >= self.settings["upper"]:
            raise SettingError(f"setting lower={self.settings['lower']:g} must be below upper="
                               f"{self.settings['upper']:g} (both are percentiles in [0, 100])")

    def make_optimizer(self, model: nn.Module, lr: float, weight_decay: float,
                       betas: tuple[float, float]) -> torch.optim.Optimizer:
        candidates = rose_candidates(model)
        if not candidates:
            raise SettingError("ROSE found no weight tensors named like `…layer…weight` in this model")
        self.names = [n for n, _ in candidates]
        self.params = [p for _, p in candidates]
        if self.first_order:
            self.kl_norms = KLGradientNorms(model, self.params)
        self.optimizer = MaskedAdamW(param_groups(model, weight_decay), lr=lr, betas=betas, eps=1e-8)
        return self.optimizer

    # -- first stage: the two dropout passes (first order only)

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        if not self.first_order:
            return super().training_loss(model, batch, ctx)
        mask, y = batch["attention_mask"], batch["labels"]
        p = self.settings["kl_dropout"]
        capture = self.kl_norms
        if capture is not None:
            capture.clear()
            capture.active = self.fast_kl
        with dropout_rates(model, p, p):   # one forward of the batch twice = two independent dropout masks
            logits = model(**{k: torch.cat([v, v]) for k, v in model_inputs(batch).items()}).logits
        a, b = logits.chunk(2)
        ce = 0.5 * (nn.functional.cross_entropy(a, y) + nn.functional.cross_entropy(b, y))
        kl = symmetric_kl(a, b)
        self.first_scores = None
        if capture is None or not self.fast_kl or not capture.ready(logits, ce, kl, torch.cat([mask, mask])):
            if capture is not None:
                capture.clear()
            grads = torch.autograd.grad(kl, self.params, retain_graph=True, allow_unused=True)
            self.first_scores = torch.stack([g.float().norm() if g is not None else torch.zeros((), device=mask.device)
                                             for g in grads]).detach()
        return ce, {"kl": float(kl.detach())}

    # -- second stage: the mask for this step

    def before_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, ctx: StepContext) -> None:
        record: dict[str, Any] = {}
        mask = torch.ones(len(self.params))
        if self.first_order:
            scores = self.first_scores if self.first_scores is not None else self.kl_norms.norms()
            if scores is None:
                raise RuntimeError("ROSE: the first-order risk was not captured during the backward pass")
            first_mask, low, high = band_mask(scores, self.settings["lower"], self.settings["upper"])
            record.update(first_score=scores.cpu().numpy(), first_low=low, first_high=high)
            mask = first_mask.cpu()
        if self.second_order:
            second_mask, info = self._second_order_mask()
            record.update(info)
            if self.first_order:
                gamma = self.settings["gamma"]
                mask = (1.0 - gamma) * second_mask + gamma * mask
            else:
                mask = second_mask
        warmup = ctx.step <= self.mask_warmup_steps(ctx)
        if warmup:
            mask = torch.ones(len(self.params))
        self.optimizer.set_mask(self.params, mask)
        values = mask.numpy().astype(np.float32)
        self.keep_sum += float(values.mean())
        self.keep_steps += 1
        self.level_counts += [np.sum(values == 0), np.sum((values > 0) & (values < 1)), np.sum(values == 1)]
        if ctx.step == 1:
            ctx.recorder.put("rose_tensors", **describe_tensors(self.names))
        ctx.recorder.append("rose", ctx.step, mask=values, warmup=np.int8(warmup), **record)

    def mask_warmup_steps(self, ctx: StepContext) -> int:
        """Steps before masking starts: the setting, or (-1) the learning rate's warm-up."""
        steps = self.settings["warmup_steps"]
        self.warmup_used = ctx.lr_warmup_steps if steps == FOLLOW_LR_WARMUP else steps
        return self.warmup_used

    @torch.no_grad()
    def _second_order_mask(self) -> tuple[torch.Tensor, dict[str, Any]]:
        """Second-order risk from the clipped CE gradient and the momentum of the previous step."""
        grads, moments = [], []
        for p in self.params:
            state = self.optimizer.state.get(p, {})
            if "exp_avg" not in state or p.grad is None:   # first step: no momentum yet, keep everything
                nan = np.full(len(self.params), np.nan, dtype=np.float32)
                return torch.ones(len(self.params)), {"second_score": nan, "second_low": np.nan,
                                                      "second_high": np.nan}
            grads.append(p.grad.float().norm())
            moments.append(state["exp_avg"].float().norm())
        scores = second_order_risk(torch.stack(grads), torch.stack(moments))
        mask, low, high = band_mask(scores, self.settings["lower"], self.settings["upper"])
        return mask.cpu(), {"second_score": scores.cpu().numpy(), "second_low": low, "second_high": high}

    def after_step(self, model: nn.Module, ctx: StepContext) -> None:
        self.first_scores = None

    def summary(self) -> dict[str, float]:
        if not self.keep_steps:
            return {}
        total = max(self.level_counts.sum(), 1)
        out = {"mean_keep_fraction": round(self.keep_sum / self.keep_steps, 4), "tensors": len(self.params),
               "mask_warmup_steps": self.warmup_used}
        if self.first_order and self.second_order:
            out.update(share_frozen=round(self.level_counts[0] / total, 4),
                       share_half=round(self.level_counts[1] / total, 4),
                       share_kept=round(self.level_counts[2] / total, 4))
        return out


class RoseFirst(_Rose):
    name = "rose-first"
    title = "ROSE, first order"
    summary_line = ("Freezes, each step, the weight tensors whose gradient of the disagreement between two "
                    "dropout passes is largest: updates that chase dropout-fragile features are skipped.")
    first_order = True
    settings_spec = (_upper("rose-first", 70.0), LOWER, KL_DROPOUT, WARMUP)
    presets = readme_presets("rose-first")
    artifacts = {"rose": (*STEP_KEYS, *FIRST_KEYS), "rose_tensors": TENSOR_KEYS}


class RoseSecond(_Rose):
    name = "rose-second"
    title = "ROSE, second order"
    summary_line = ("Freezes, each step, the weight tensors whose new gradient departs most from their Adam "
                    "momentum: erratic updates are skipped. One forward pass, almost free.")
    second_order = True
    settings_spec = (_upper("rose-second", 50.0), LOWER, WARMUP)
    presets = readme_presets("rose-second")
    artifacts = {"rose": (*STEP_KEYS, *SECOND_KEYS), "rose_tensors": TENSOR_KEYS}


class RoseEnsemble(_Rose):
    name = "rose-ensemble"
    title = "ROSE, ensemble"
    summary_line = ("Mixes the first- and second-order masks: a tensor both risks flag is frozen, one flagged "
                    "by only one risk takes a half step.")
    first_order = True
    second_order = True
    settings_spec = (_upper("rose-ensemble", 80.0), LOWER, KL_DROPOUT, GAMMA, WARMUP)
    presets = readme_presets("rose-ensemble")
    artifacts = {"rose": (*STEP_KEYS, *FIRST_KEYS, *SECOND_KEYS), "rose_tensors": TENSOR_KEYS}


METHODS = {"rose-first": RoseFirst, "rose-second": RoseSecond, "rose-ensemble": RoseEnsemble}


def thresholds_text(method: str, settings: dict[str, Any], lr: float | None) -> str:
    """A ROSE row's thresholds and learning rate in words, saying whether they are one of the official README's
    SST-2 rows or RobustLab's own (the defaults 70 / 50 / 80 at the model's rate are RobustLab's choice)."""
    rows = README_SST2.get(method)
    if rows is None:
        return ""
    upper, lower = settings.get("upper"), settings.get("lower", 0.0)
    text = f"upper {upper:g}" + (f", lower {lower:g}" if lower else "") + (f" at lr {lr:g}" if lr else "")
    if method == "rose-ensemble":
        text += f", gamma {settings.get('gamma', 0.5):g}"
    official = [size for size, (row_lr, row_upper) in rows.items() if (row_lr, row_upper) == (lr, upper)]
    if official and not lower:
        return f"{text}: the official README's SST-2 row (RoBERTa-{official[0]})"
    readme = "; ".join(f"RoBERTa-{size}: lr {row_lr:g}, upper {row_upper:g}" for size, (row_lr, row_upper)
                       in rows.items())
    return f"{text}: RobustLab's thresholds, not the official SST-2 row ({readme})"
