"""The masked AdamW shared by ROSE and UEGR, with one mask value per element: where the mask is 0 the element
keeps its bits (no gradient, no momentum-driven step, no weight decay) and its momentum; where it is 1 the
element steps as under torch's AdamW."""
from __future__ import annotations

import torch
from torch import nn

from engine.methods.masked_optimizer import MaskedAdamW


def quadratic_step(weight: nn.Parameter, optimizer: torch.optim.Optimizer, target: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    ((weight - target) ** 2).sum().backward()
    optimizer.step()


def test_an_element_masked_out_keeps_its_bits_and_momentum_under_weight_decay():
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(8, 16))
    target = torch.randn(8, 16)
    optimizer = MaskedAdamW([{"params": [weight], "weight_decay": 0.1}], lr=1e-2, betas=(0.9, 0.999))
    quadratic_step(weight, optimizer, target)          # unmasked: every element gains momentum
    for seed in (1, 2):
        keep = torch.rand(8, 16, generator=torch.Generator().manual_seed(seed)) < 0.5
        optimizer.set_mask([weight], [keep])
        before, momentum = weight.detach().clone(), optimizer.state[weight]["exp_avg"].clone()
        assert torch.all(momentum != 0)
        quadratic_step(weight, optimizer, target)
        frozen = ~keep
        assert torch.equal(weight.detach()[frozen].view(torch.int32), before[frozen].view(torch.int32))
        assert torch.equal(optimizer.state[weight]["exp_avg"][frozen], momentum[frozen])
        assert torch.all(weight.detach()[keep] != before[keep])


def test_an_all_ones_element_mask_steps_like_torch_adamw():
    torch.manual_seed(0)
    ours, ref = nn.Parameter(torch.randn(8, 16)), nn.Parameter(torch.randn(8, 16))
    ref.data.copy_(ours.data)
    target = torch.randn(8, 16)
    masked = MaskedAdamW([{"params": [ours], "weight_decay": 0.1}], lr=1e-2, betas=(0.9, 0.999))
    adamw = torch.optim.AdamW([{"params": [ref], "weight_decay": 0.1}], lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    masked.set_mask([ours], [torch.ones(8, 16, dtype=torch.bool)])
    for _ in range(3):
        quadratic_step(ours, masked, target)
        quadratic_step(ref, adamw, target)
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-6, atol=1e-7)
