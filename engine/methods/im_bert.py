"""IM-BERT (implicit-Euler "IM-connection") and its explicit control EX-BERT.

A BERT layer is read as one Euler step of an ODE, x_{l+1} = x_l + h F_l(.). The explicit step evaluates
F at x_l; the implicit step solves z = x_l + h F_l(z), which damps a perturbation by 1/|1 - h lambda|
instead of multiplying it by |1 + h lambda|. The paper's update equation was not available, so this is
the labelled reconstruction of docs methods.md section 1 [PROP]: an explicit predictor, then K
gradient-descent steps on E(z) = 1/2 ||z - x - h F(z)||^2, backpropagated through the unrolled loop.

The wrapper holds the pretrained `BertLayer` as a submodule (`bert.encoder.layer.{i}.inner...`): no
weight is copied, the layer index stays in every parameter name, and no parameter is added.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.methods.base import Method, Setting, SettingError, StepContext
from engine.models import NotBertError, encoder_parts

FIELDS = ("residual", "layer")


class EulerConnection(nn.Module):
    """One converted layer: an explicit Euler step, optionally corrected towards the implicit one.

    Field `residual`: F(x) = Layer(x) - x (h = 1 and no correction is vanilla BERT exactly).
    Field `layer`:    F(x) = Layer(x), an extra outer connection x + h Layer(.).
    """

    def __init__(self, inner: nn.Module, h: float, iterations: int, gamma: float, field: str,
                 exact_grad: bool, implicit: bool) -> None:
        super().__init__()
        self.inner = inner
        self.h = float(h)
        self.iterations = int(iterations) if implicit else 0
        self.gamma = float(gamma)
        self.field = field
        self.exact_grad = bool(exact_grad)
        self.implicit = bool(implicit)
        self.track = False                      # set by the probe/recorder: measure the final residual
        self.token_mask: torch.Tensor | None = None   # (B, T) 1 = real token; residual norms ignore padding
        self.last_residuals: tuple[float, float] | None = None   # (after predictor, after K steps), relative

    def field_value(self, z: torch.Tensor, args: tuple, kwargs: dict) -> tuple[torch.Tensor, tuple]:
        """F(z) and the inner layer's extra outputs (attention weights when asked for)."""
        out = self.inner(z, *args, **kwargs)
        y = out[0] if isinstance(out, tuple) else out
        extra = tuple(out[1:]) if isinstance(out, tuple) else ()
        return (y - z if self.field == "residual" else y), extra

    def residual(self, z: torch.Tensor, x: torch.Tensor, fz: torch.Tensor) -> torch.Tensor:
        return z - x - self.h * fz

    def relative_norm(self, r: torch.Tensor, z: torch.Tensor) -> float:
        """||r|| / ||z|| over real tokens."""
        if self.token_mask is not None and self.token_mask.shape == z.shape[:2]:
            m = self.token_mask.to(z.dtype).unsqueeze(-1)
            r, z = r * m, z * m
        return float(r.norm() / z.norm().clamp_min(1e-12))

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple:
        x = hidden_states
        graph = torch.is_grad_enabled()        # training, or a probe differentiating through the step
        fx, extra = self.field_value(x, args, kwargs)
        z = x + self.h * fx                    # explicit predictor (EX-BERT stops here)
        first = None
        for k in range(self.iterations):
            if self.exact_grad:
                with torch.enable_grad(), math_attention(graph):
                    zk = z if z.requires_grad else z.detach().requires_grad_(True)
                    fz, extra = self.field_value(zk, args, kwargs)
                    r = self.residual(zk, x, fz)
                    (grad,) = torch.autograd.grad(0.5 * r.pow(2).sum(), zk, create_graph=graph)
                if not graph:
                    grad, r = grad.detach(), r.detach()
                z = zk - self.gamma * grad if graph else z - self.gamma * grad
            else:
                fz, extra = self.field_value(z, args, kwargs)
                r = self.residual(z, x, fz)
                z = z - self.gamma * r         # relaxed fixed point: (1-g) z + g (x + h F(z))
            if k == 0 and self.track:
                first = self.relative_norm(r.detach(), z.detach())
        if self.track and self.implicit:
            with torch.no_grad():
                fz, _ = self.field_value(z.detach(), args, kwargs)
                final = self.relative_norm(self.residual(z.detach(), x.detach(), fz), z.detach())
                if first is None:              # K = 0: the predictor's residual is the final one
                    first = final
            self.last_residuals = (first, final)
        return (z,) + extra

    def extra_repr(self) -> str:
        kind = f"implicit K={self.iterations} gamma={self.gamma:g} exact_grad={self.exact_grad}" \
            if self.implicit else "explicit"
        return f"h={self.h:g} field={self.field} {kind}"


def math_attention(needed: bool = True):
    """Composite attention while a gradient must itself be differentiated: fused kernels (CPU flash,
    CUDA flash/efficient) have no double backward."""
    if not needed:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def connections(model: nn.Module) -> list[tuple[int, EulerConnection]]:
    """(layer index, wrapper) for every converted layer of a model."""
    try:
        _, layers = encoder_parts(model)
    except NotBertError:
        return []
    return [(i, m) for i, m in enumerate(layers) if isinstance(m, EulerConnection)]


class _EulerMethod(Method):
    """Shared by EX-BERT and IM-BERT: convert the chosen layers, and check the settings."""

    implicit = True

    def check_settings(self) -> None:
        layers = self.settings["layers"]
        if not layers:
            raise SettingError("setting layers is an empty list; give the encoder layers to convert, "
                               "e.g. 0,1,2,3,4,5 (or leave it at its default: all)")
        if layers != [-1] and [i for i in layers if i < 0]:
            raise SettingError(f"setting layers={layers} has negative indices; layers are numbered from 0 "
                               f"(-1 alone means all layers)")
        if len(set(layers)) != len(layers):
            raise SettingError(f"setting layers={layers} lists a layer twice")

    def layer_indices(self, n_layers: int) -> list[int]:
        wanted = self.settings["layers"]
        if wanted == [-1]:                     # the default: every layer (a list default cannot know the depth)
            return list(range(n_layers))
        bad = [i for i in wanted if i >= n_layers]
        if bad:
            raise SettingError(f"setting layers={wanted} names layer {bad[0]}, but the encoder has only "
                               f"{n_layers} layers (0..{n_layers - 1})")
        return sorted(wanted)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        _, layers = encoder_parts(model)
        s = self.settings
        for i in self.layer_indices(len(layers)):
            if not isinstance(layers[i], EulerConnection):
                layers[i] = EulerConnection(layers[i], s["h"], s.get("K", 0), s.get("gamma", 1.0), s["field"],
                                            s.get("exact_grad", False), self.implicit)
        return model

    def summary(self) -> dict[str, float]:
        s = self.settings
        return {"h": s["h"], "K": s.get("K", 0), "extra_layer_calls_per_layer": s.get("K", 0)}


class ExBert(_EulerMethod):
    name = "ex-bert"
    title = "EX-BERT (explicit control)"
    summary_line = ("The control for IM-BERT: the same Euler connection x + h F(x), evaluated explicitly with "
                    "no corrector. With the residual field and h = 1 it is vanilla BERT exactly, so the "
                    "default h = 0.5 gives the extra connection 0.5 x + 0.5 Layer(x).")
    implicit = False
    settings_spec = (
        Setting("h", 0.5, "Euler step size h (> 0). Residual field: h = 1 is vanilla BERT; "
                "h = 0.5 averages each layer's input and output", low=0.0, high=4.0, low_open=True),
        Setting("field", "residual", "vector field F: residual = Layer(x) - x, layer = Layer(x) "
                "(an extra outer connection x + h Layer(x))", choices=FIELDS),
        Setting("layers", [-1], "encoder layers to convert, e.g. 0,1,2 (-1: all layers)"),
    )


class ImBert(_EulerMethod):
    name = "im-bert"
    title = "IM-BERT (implicit Euler)"
    summary_line = ("Replaces each layer's explicit Euler step by an implicit one, solved by K gradient steps "
                    "on the implicit-Euler residual: perturbations are damped by 1/|1 - h lambda| instead of "
                    "amplified by |1 + h lambda|. No new parameters, no adversarial examples.")
    settings_spec = (
        Setting("h", 1.0, "Euler step size h (> 0); residual field with h = 1 and K = 0 is vanilla BERT",
                low=0.0, high=4.0, low_open=True),
        Setting("K", 2, "gradient-descent steps of the implicit solver per layer (0: the explicit predictor "
                "only); each costs one extra layer call", low=0, high=10),
        Setting("gamma", 0.5, "solver step size in (0, 1]; cheap gradient: z <- (1-gamma) z + gamma (x + h F(z))",
                low=0.0, high=1.0, low_open=True),
        Setting("field", "residual", "vector field F: residual = Layer(x) - x, layer = Layer(x) "
                "(an extra outer connection x + h Layer(.))", choices=FIELDS),
        Setting("exact_grad", False, "exact gradient (I - h J_F)^T r (an extra backward per step) instead of "
                "the cheap r"),
        Setting("layers", [-1], "encoder layers to convert, e.g. 0,1,2 (-1: all layers)"),
    )
    artifacts = {"im_residual": ("step", "first", "final")}

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._probe: dict[str, torch.Tensor] | None = None

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        if self._probe is None:                # the first batch is the fixed batch the residual is tracked on
            self._probe = {k: batch[k].detach().clone() for k in ("input_ids", "attention_mask")}
        return super().training_loss(model, batch, ctx)

    def after_step(self, model: nn.Module, ctx: StepContext) -> None:
        """On recording steps: the solver's relative residual per layer, on the fixed batch, in eval mode."""
        if not ctx.record_now or self._probe is None:
            return
        residuals = solver_residuals(model, self._probe)
        if residuals is None:
            return
        first, final = residuals
        ctx.recorder.append("im_residual", ctx.step, first=first, final=final)
        ctx.recorder.scalar(ctx.step, "train", "im_residual", float(np.nanmean(final)))


@torch.no_grad()
def solver_residuals(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray] | None:
    """Relative implicit residual ||z - x - h F(z)|| / ||z|| per encoder layer (NaN where not implicit):
    at the explicit predictor z^0 and after all K steps, z^K. None if nothing is implicit."""
    conns = [(i, c) for i, c in connections(model) if c.implicit]
    if not conns:
        return None
    was_training = model.training
    model.eval()
    n_layers = len(encoder_parts(model)[1])
    first, final = np.full(n_layers, np.nan), np.full(n_layers, np.nan)
    try:
        for _, c in conns:
            c.track, c.token_mask = True, batch["attention_mask"]
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        for i, c in conns:
            if c.last_residuals is not None:
                first[i], final[i] = c.last_residuals
    finally:
        for _, c in conns:
            c.track, c.token_mask, c.last_residuals = False, None, None
        model.train(was_training)
    return first, final


METHODS = {"im-bert": ImBert, "ex-bert": ExBert}
