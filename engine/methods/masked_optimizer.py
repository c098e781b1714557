"""The masked AdamW shared by the methods that update only part of the model each step (ROSE per tensor,
UEGR per element), so that "frozen for this step" means the same, and is true, in both.

This module defines no METHODS, so the registry imports it but finds nothing to register.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

Mask = float | torch.Tensor   # one value for the whole tensor, or one per element (the parameter's shape)


class MaskedAdamW(torch.optim.Optimizer):
    """AdamW with a mask mu in [0, 1] per tensor or per element (ROSE's SparseAdamW, official ROSE code).

    Where the mask is mu: g~ = mu g + (1 - mu) m; m and v are updated with g~; the step and the decoupled
    weight decay are scaled by mu. So where mu = 0 the weight does not move at all (no gradient, no
    momentum-driven step, no weight decay) and its momentum is kept for when it is selected again. A tensor
    with no mask (mu = 1) gets torch's AdamW operation for operation (decay first, bias-corrected
    denominator), so vanilla and a masked method differ only by the mask. (The official ROSE code puts eps
    before the bias correction and decays after the step; both differences are below the noise of one step.)
    """

    def __init__(self, params: list[dict], lr: float, betas: tuple[float, float], eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=0.0))
        self.mask: dict[nn.Parameter, Mask] = {}

    def set_mask(self, params: Sequence[nn.Parameter], values: Sequence[Mask] | torch.Tensor) -> None:
        """The masks of the next step(s), replacing earlier ones: per tensor a number (a 1-D tensor of them
        is fine), or a tensor of the parameter's shape for one value per element."""
        self.mask = {p: v if isinstance(v, torch.Tensor) and v.dim() > 0 else float(v)
                     for p, v in zip(params, values)}

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                mu = self.mask.get(p, 1.0)
                if isinstance(mu, torch.Tensor):
                    _element_masked_step(p, state, mu.to(p.dtype), lr, wd, eps, beta1, beta2)
                else:
                    _tensor_masked_step(p, state, mu, lr, wd, eps, beta1, beta2)
        return loss


def _bias_corrected(state: dict, lr: float, beta1: float, beta2: float, eps: float) -> tuple[float, torch.Tensor]:
    """Adam's step size and denominator at this step, computed as torch's AdamW does."""
    bias_correction1 = 1.0 - beta1 ** state["step"]
    bias_correction2 = 1.0 - beta2 ** state["step"]
    return lr / bias_correction1, (state["exp_avg_sq"].sqrt() / bias_correction2 ** 0.5).add_(eps)


def _tensor_masked_step(p: torch.Tensor, state: dict, mu: float, lr: float, wd: float, eps: float,
                        beta1: float, beta2: float) -> None:
    """One value for the whole tensor; mu = 1 is torch's AdamW."""
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    grad = p.grad
    if mu != 1.0:
        grad = grad.mul(mu).add_(exp_avg, alpha=1.0 - mu)
    if wd != 0.0 and mu != 0.0:
        p.mul_(1.0 - lr * wd * mu)
    exp_avg.lerp_(grad, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    if mu == 0.0:
        return
    step_size, denom = _bias_corrected(state, lr, beta1, beta2, eps)
    p.addcdiv_(exp_avg, denom, value=-step_size * mu)


def _element_masked_step(p: torch.Tensor, state: dict, mu: torch.Tensor, lr: float, wd: float, eps: float,
                         beta1: float, beta2: float) -> None:
    """One value per element. Where mu = 0 the decay factor is exactly 1 and the step exactly 0, so the
    element keeps its bits."""
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    grad = p.grad * mu + exp_avg * (1.0 - mu)
    if wd != 0.0:
        p.mul_(mu * (-lr * wd) + 1.0)
    exp_avg.lerp_(grad, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    step_size, denom = _bias_corrected(state, lr, beta1, beta2, eps)
    p.addcdiv_(exp_avg * mu, denom, value=-step_size)
