"""IM-BERT (implicit-Euler "IM-connection") and its explicit control EX-BERT.

A BERT layer is read as one Euler step of an ODE, x_{l+1} = x_l + h F_l(.). The explicit step evaluates
F at x_l; the implicit step solves z = x_l + h F_l(z). For a perturbation along an eigenvector of the field's
Jacobian with eigenvalue lambda, the explicit step multiplies it by |1 + h lambda| and the implicit one by
1/|1 - h lambda|: the implicit step damps it for every h > 0 where Re lambda < 0, and can amplify it where
Re lambda > 0 (inside the disc |1 - h lambda| < 1). Whether a trained model's layers sit where it damps is
measured, not assumed (`engine.probe.ode`, the ODE stability page).

The paper's update equation was not available, so this is the labelled reconstruction of docs/methods.md
section 1: an explicit predictor z^0 = x + h F(x), then K steps that lower the implicit-Euler residual
r(z) = z - x - h F(z). Each step moves along the cheap direction r (F held fixed: a relaxed fixed-point
step; gradients flow through the unrolled loop) or, with `exact_grad`, along the Newton direction that uses
the layer's exact Jacobian, d = (I - h J_F)^{-1} r, solved per sentence by GMRES from KRYLOV_DIM
Jacobian-vector products; its gradient is the implicit function theorem's, (I - h J_F)^{-T} applied to the
incoming gradient (GMRES again, with vector-Jacobian products), as deep-equilibrium models do. A
backtracking line search halves the step of each sentence whose residual would grow, so the residual never
grows. The solver's convergence is measured as the relative residual ||z - x - h F(z)|| / ||z|| over real
tokens.

Every decision is per sentence, so a sentence costs its own layer calls, never its batch's: a sentence stops
once its residual is `tol` times its predictor's, or once every halving of a step failed; in evaluation each
layer call is made for the sentences still going only, and only those whose residual grew are tried again.
In training every call covers the whole batch (one dropout draw per solve), and a grown sentence takes its
halved step at the next step instead.

The wrapper holds the pretrained `BertLayer` as a submodule (`bert.encoder.layer.{i}.inner...`): no
weight is copied, the layer index stays in every parameter name, and no parameter is added.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.data.batching import model_inputs
from engine.methods.base import Method, Setting, SettingError, StepContext
from engine.models.architecture import NotBertError, encoder_parts

FIELDS = ("residual", "layer")
DEFAULT_K = 8               # measured on pretrained MiniLM: see ImBert's K setting and docs/methods.md
MAX_HALVINGS = 6            # line search: a sentence's step is halved at most this often, then it keeps its z
KRYLOV_DIM = 4              # exact mode: Jacobian-vector products per Newton step (GMRES without restart)
BACKWARD_KRYLOV_DIM = 8     # exact mode: vector-Jacobian products for the implicit gradient
GROWTH_TOLERANCE = 1e-3     # a relative residual this much (relatively) above its start counts as grown
TOLERANCE = 0.02            # default tol: a sentence stops once its residual is this fraction of its predictor's


class SolverDivergedError(RuntimeError):
    """The implicit solver's residual grew: the run stops rather than train on hidden states that solve
    nothing (the training job records this message as the run's failure reason)."""


def real_tokens(args: tuple, kwargs: dict, like: torch.Tensor) -> torch.Tensor:
    """(B, T, 1): 1 for a real token, 0 for padding, read from the additive attention mask the encoder passes
    its layers ((B, 1, 1 or T, T), 0 where a key may be attended); all ones when there is none (no padding)."""
    mask = args[0] if args else kwargs.get("attention_mask")
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4 or mask.shape[-1] != like.shape[1]:
        return torch.ones(like.shape[:2] + (1,), dtype=like.dtype, device=like.device)
    return (mask[:, 0, 0, :] == 0).to(like.dtype).unsqueeze(-1)


@dataclass
class Iterate:
    """One point of the solve: z, its residual r(z), the inner layer's extra outputs, and each sentence's
    squared residual norm over real tokens (detached; what the line search compares)."""
    z: torch.Tensor
    r: torch.Tensor
    extra: tuple
    sentence_sq: torch.Tensor

    def relative(self, tokens: torch.Tensor) -> float:
        """||r|| / ||z|| over the batch's real tokens."""
        return float(self.sentence_sq.sum().sqrt() / (self.z.detach() * tokens).norm().clamp_min(1e-12))

    def rows(self, index: torch.Tensor) -> Iterate:
        """The iterate of the sentences `index` only."""
        batch = self.z.shape[0]
        return Iterate(self.z.index_select(0, index), self.r.index_select(0, index),
                       tuple(take_rows(e, index, batch) for e in self.extra), self.sentence_sq.index_select(0, index))

    def with_rows(self, index: torch.Tensor, new: Iterate) -> Iterate:
        """This iterate with the sentences `index` replaced by `new`'s (out of place, so autograd keeps both)."""
        if index.numel() == self.z.shape[0]:
            return new                         # every sentence (index is then 0..B-1 in order)
        batch = self.z.shape[0]
        return Iterate(self.z.index_copy(0, index, new.z), self.r.index_copy(0, index, new.r),
                       tuple(e.index_copy(0, index, n) if _batched(e, batch) else e
                             for e, n in zip(self.extra, new.extra)),
                       self.sentence_sq.index_copy(0, index, new.sentence_sq))

    def where(self, take: torch.Tensor, new: Iterate) -> Iterate:
        """Per sentence, `new` where `take` (B,) is true, else this iterate (torch.where: autograd keeps both)."""
        batch = self.z.shape[0]
        pick = take.view(-1, 1, 1)
        return Iterate(torch.where(pick, new.z, self.z), torch.where(pick, new.r, self.r),
                       tuple(torch.where(take.view((-1,) + (1,) * (n.dim() - 1)), n, e) if _batched(e, batch)
                             else n for e, n in zip(self.extra, new.extra)),
                       torch.where(take, new.sentence_sq, self.sentence_sq))


def _batched(value: Any, batch: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch


def take_rows(value: Any, index: torch.Tensor, batch: int) -> Any:
    """A layer argument restricted to the sentences `index`: a tensor whose first dimension is the batch (the
    attention mask) is indexed; anything else (None, a flag, a mask broadcast over the batch) passes as is."""
    if batch > 1 and _batched(value, batch):
        return value.index_select(0, index)
    return value


@dataclass
class Part:
    """The sentences a layer call is made for, and the call's inputs restricted to them."""
    index: torch.Tensor                        # rows of the whole batch, ascending
    x: torch.Tensor
    tokens: torch.Tensor
    args: tuple
    kwargs: dict

    @classmethod
    def of(cls, index: torch.Tensor, x: torch.Tensor, tokens: torch.Tensor, args: tuple, kwargs: dict) -> Part:
        batch = x.shape[0]
        if index.numel() == batch:
            return cls(index, x, tokens, args, kwargs)
        return cls(index, x.index_select(0, index), tokens.index_select(0, index),
                   tuple(take_rows(a, index, batch) for a in args),
                   {k: take_rows(v, index, batch) for k, v in kwargs.items()})


class EulerConnection(nn.Module):
    """One converted layer: an explicit Euler step, optionally corrected towards the implicit one.

    Field `residual`: F(x) = Layer(x) - x (h = 1 and no correction is vanilla BERT exactly).
    Field `layer`:    F(x) = Layer(x), an extra outer connection x + h Layer(.).
    """

    def __init__(self, inner: nn.Module, h: float, iterations: int, gamma: float, field: str,
                 exact_grad: bool, implicit: bool, line_search: bool = True, tol: float = 0.0) -> None:
        super().__init__()
        self.inner = inner
        self.h = float(h)
        self.iterations = int(iterations) if implicit else 0
        self.gamma = float(gamma)
        self.field = field
        self.exact_grad = bool(exact_grad)
        self.implicit = bool(implicit)
        self.line_search = bool(line_search)
        self.tol = float(tol)                   # a sentence stops once ||r|| <= tol x its ||r|| at the predictor
        self.track = False                      # set by the probe/recorder: measure the residual at every iterate
        self.last_trajectory: list[float] | None = None   # relative residual at z^0 .. z^K (when tracked)
        self.last_calls: list[int] | None = None          # per sentence, the layer calls of the last solve
        self.solve_seed: int | None = None      # the dropout seed every layer call of the current solve shares

    def field_value(self, z: torch.Tensor, args: tuple, kwargs: dict) -> tuple[torch.Tensor, tuple]:
        """F(z) and the inner layer's extra outputs (attention weights when asked for)."""
        with same_dropout(self.solve_seed, z.device):
            out = self.inner(z, *args, **kwargs)
        y = out[0] if isinstance(out, tuple) else out
        extra = tuple(out[1:]) if isinstance(out, tuple) else ()
        return (y - z if self.field == "residual" else y), extra

    def residual(self, z: torch.Tensor, x: torch.Tensor, fz: torch.Tensor) -> torch.Tensor:
        return z - x - self.h * fz

    def evaluate(self, z: torch.Tensor, x: torch.Tensor, tokens: torch.Tensor, args: tuple, kwargs: dict) -> Iterate:
        """r(z) at a new iterate (one layer call)."""
        fz, extra = self.field_value(z, args, kwargs)
        r = self.residual(z, x, fz)
        return Iterate(z, r, extra, (r.detach() * tokens).pow(2).sum((1, 2)))

    def direction(self, it: Iterate, x: torch.Tensor, tokens: torch.Tensor, args: tuple,
                  kwargs: dict) -> torch.Tensor:
        """The step's direction on real tokens (padding keeps its predictor value, so it cannot blow up):
        r itself (cheap), or the Newton direction (I - h J_F)^{-1} r (exact)."""
        if not self.exact_grad:
            return it.r * tokens

        def jacobian_times(v: torch.Tensor) -> torch.Tensor:        # (I - h J_F) v at the iterate
            with math_attention():
                _, jv = torch.func.jvp(lambda z: self.residual(z, x, self.field_value(z, args, kwargs)[0]),
                                       (it.z,), (v,))
            return jv * tokens

        return gmres(jacobian_times, it.r * tokens, KRYLOV_DIM)

    def first_step_size(self) -> float:
        """gamma (cheap) or 1 (a full Newton step), before any halving."""
        return 1.0 if self.exact_grad else self.gamma

    def step_rows(self, it: Iterate, active: torch.Tensor, x: torch.Tensor, tokens: torch.Tensor, args: tuple,
                  kwargs: dict, calls: torch.Tensor) -> tuple[Iterate, torch.Tensor]:
        """One step of the sentences `active` (ascending rows), each layer call made for those sentences only:
        z <- z - s d; with the line search, the sentences whose residual would grow halve their s and are
        tried again, alone (at most MAX_HALVINGS times); the others keep the step they took. Returns the
        iterate and the rows whose every halving failed (they keep their z; with F fixed, the same z gives the
        same direction and the same failed trials at every later step, so the caller stops them)."""
        part = Part.of(active, x, tokens, args, kwargs)
        d = self.direction(it.rows(active), part.x, part.tokens, part.args, part.kwargs)
        s = torch.full((active.numel(), 1, 1), self.first_step_size(), dtype=d.dtype, device=d.device)
        pending = torch.arange(active.numel(), device=active.device)      # positions in `active`
        for attempt in range(MAX_HALVINGS + 1 if self.line_search else 1):
            rows = active if attempt == 0 else active.index_select(0, pending)
            p = part if attempt == 0 else Part.of(rows, x, tokens, args, kwargs)
            trial = self.evaluate(torch.addcmul(it.z.index_select(0, rows), s, d.index_select(0, pending), value=-1),
                                  p.x, p.tokens, p.args, p.kwargs)
            calls[rows] += 1
            ok = (trial.sentence_sq <= it.sentence_sq.index_select(0, rows)) if self.line_search else \
                torch.ones_like(trial.sentence_sq, dtype=torch.bool)                  # NaN: not ok (worse)
            accepted = ok.nonzero().squeeze(1)
            if accepted.numel():
                it = it.with_rows(rows.index_select(0, accepted), trial.rows(accepted))
            if bool(ok.all()):
                return it, rows[:0]
            pending, s = pending[~ok], s[~ok] / 2
        return it, active.index_select(0, pending)

    def step_whole_batch(self, it: Iterate, active: torch.Tensor, s: torch.Tensor, halvings: torch.Tensor,
                         x: torch.Tensor, tokens: torch.Tensor, args: tuple, kwargs: dict,
                         calls: torch.Tensor) -> tuple[Iterate, torch.Tensor, torch.Tensor]:
        """One step with one layer call for the whole batch, so every call of the solve draws the same dropout
        masks (a sub-batch would draw others): each active sentence whose residual would grow keeps its z and
        tries again at the next step with half its step size s (B,); one that is not active keeps its z."""
        d = self.direction(it, x, tokens, args, kwargs)
        trial = self.evaluate(torch.addcmul(it.z, s.view(-1, 1, 1), d, value=-1), x, tokens, args, kwargs)
        calls += 1
        ok = active & (trial.sentence_sq <= it.sentence_sq) if self.line_search else active
        grown = active & ~ok
        s = torch.where(ok, torch.full_like(s, self.first_step_size()), torch.where(grown, s / 2, s))
        halvings = torch.where(ok, torch.zeros_like(halvings), halvings + grown.long())
        return it.where(ok, trial), s, halvings

    def solve(self, it: Iterate, x: torch.Tensor, tokens: torch.Tensor, args: tuple,
              kwargs: dict) -> tuple[Iterate, list[float], torch.Tensor]:
        """Up to K steps from the predictor's iterate, decided per sentence: a sentence stops once its residual
        norm is at most `tol` times its norm at the predictor, or once every halving of a step has failed.
        Without dropout (eval) each layer call is made for the sentences still going only, and a grown residual
        is retried at once on those sentences alone; in training every call covers the whole batch (see
        step_whole_batch). Returns the last iterate, the relative residual after each step (tracked only) and
        each sentence's layer calls (F evaluations; the exact mode's Jacobian-vector products not counted)."""
        batch = x.shape[0]
        calls = torch.full((batch,), 2, dtype=torch.long, device=x.device)      # predictor and its residual
        trajectory = [it.relative(tokens)] if self.track else []
        stop_sq = it.sentence_sq * self.tol ** 2                # squared norms: ||r|| <= tol ||r^0||
        done = it.sentence_sq <= stop_sq
        whole_batch = self.solve_seed is not None
        s = torch.full((batch,), self.first_step_size(), dtype=x.dtype, device=x.device)
        halvings = torch.zeros(batch, dtype=torch.long, device=x.device)
        for _ in range(self.iterations):
            if not bool((~done).any()):
                trajectory += trajectory[-1:] * (self.iterations + 1 - len(trajectory)) if self.track else []
                break
            if whole_batch:
                it, s, halvings = self.step_whole_batch(it, ~done, s, halvings, x, tokens, args, kwargs, calls)
                done = done | (halvings > MAX_HALVINGS)
            else:
                it, stalled = self.step_rows(it, (~done).nonzero().squeeze(1), x, tokens, args, kwargs, calls)
                done = done.index_fill(0, stalled, True)
            done = done | (it.sentence_sq <= stop_sq)
            if self.track:
                trajectory.append(it.relative(tokens))
        return it, trajectory, calls

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple:
        x = hidden_states
        graph = torch.is_grad_enabled()        # training, or a probe differentiating through the step
        solving = self.implicit and (self.iterations > 0 or self.track)
        self.solve_seed = int(torch.randint(2 ** 62, ())) if solving and self.training else None
        fx, extra = self.field_value(x, args, kwargs)
        z = x + self.h * fx                    # explicit predictor (EX-BERT stops here)
        if not self.implicit or (self.iterations == 0 and not self.track):
            return (z,) + extra
        tokens = real_tokens(args, kwargs, x)
        unrolled = graph and not self.exact_grad       # the exact mode's gradient is the implicit one instead
        with torch.set_grad_enabled(unrolled):
            it, trajectory, calls = self.solve(self.evaluate(z, x, tokens, args, kwargs), x, tokens, args, kwargs)
        self.last_calls = calls.tolist() if self.track else None
        if self.track:
            self.last_trajectory = trajectory
        if self.iterations == 0:               # tracked only: the output stays the predictor
            return (z,) + extra
        if unrolled:
            return (it.z,) + it.extra
        if graph:
            return self.implicit_gradient(it.z, x, tokens, args, kwargs)
        return (it.z.detach(),) + tuple(e.detach() if isinstance(e, torch.Tensor) else e for e in it.extra)

    def implicit_gradient(self, solution: torch.Tensor, x: torch.Tensor, tokens: torch.Tensor, args: tuple,
                          kwargs: dict) -> tuple:
        """The solve's z, carrying the implicit function theorem's gradient: one differentiable layer call
        f(z) = x + h F(z) at the solution, whose incoming gradient g is replaced by u = (I - h J_F)^{-T} g on
        real tokens (GMRES on vector-Jacobian products); so x and the layer's weights get the gradient of the
        equation's solution, not of K unrolled steps. The value returned is the solution itself."""
        z = solution.detach().requires_grad_(True)
        fz, extra = self.field_value(z, args, kwargs)
        f = x + self.h * fz

        def adjoint(grad: torch.Tensor) -> torch.Tensor:
            handle.remove()                    # the products below differentiate f again: no hook on them

            def transposed_times(v: torch.Tensor) -> torch.Tensor:    # (I - h J_F)^T v
                (jt,) = torch.autograd.grad(f, z, v, retain_graph=True)
                return (v - jt) * tokens

            return gmres(transposed_times, grad * tokens, BACKWARD_KRYLOV_DIM) + grad * (1 - tokens)

        if f.requires_grad:
            handle = f.register_hook(adjoint)
        return (solution.detach() + f - f.detach(),) + extra

    def extra_repr(self) -> str:
        kind = (f"implicit K={self.iterations} gamma={self.gamma:g} tol={self.tol:g} exact_grad={self.exact_grad} "
                f"line_search={self.line_search}") if self.implicit else "explicit"
        return f"h={self.h:g} field={self.field} {kind}"


def gmres(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, steps: int) -> torch.Tensor:
    """An approximate solution d of A d = b for each sentence (dim 0) separately: the d in the Krylov space
    span{b, A b, ..., A^(steps-1) b} with the least residual ||A d - b|| (GMRES, Saad & Schultz 1986), from
    `steps` products with A (`apply`, which must keep padding at zero). Exact after as many steps as b has
    unknowns; on MiniLM's layers 4 steps bring one Newton step close to the implicit solution."""
    batch = b.shape[0]
    beta = b.flatten(1).norm(dim=1)
    basis = [b / beta.clamp_min(1e-30).view(-1, 1, 1)]
    hessenberg = b.new_zeros(batch, steps + 1, steps)
    for j in range(steps):
        w = apply(basis[j])
        for i in range(j + 1):                 # modified Gram-Schmidt against the basis so far
            hessenberg[:, i, j] = (w * basis[i]).flatten(1).sum(1)
            w = w - hessenberg[:, i, j].view(-1, 1, 1) * basis[i]
        hessenberg[:, j + 1, j] = w.flatten(1).norm(dim=1)
        basis.append(w / hessenberg[:, j + 1, j].clamp_min(1e-30).view(-1, 1, 1))
    target = b.new_zeros(batch, steps + 1, 1)
    target[:, 0, 0] = beta
    coefficients = (torch.linalg.pinv(hessenberg) @ target)[..., 0]    # (B, steps); pinv: a Krylov space that
    # ends early (A^j b already in it) leaves zero columns, which a plain least-squares solver refuses on CUDA
    return torch.einsum("bj,jbtd->btd", coefficients, torch.stack(basis[:steps]))


@contextlib.contextmanager
def same_dropout(seed: int | None, device: torch.device):
    """Run one layer call with the random state seeded to `seed`, then restore it: every call of one solve
    draws the same dropout masks, so in training F is one function of z and the residuals the line search
    compares belong to the same equation (without this each call drew fresh masks, the residual looked noisy
    and nearly every step was halved to nothing). `None` (eval mode, or no solve) changes nothing."""
    if seed is None:
        yield
        return
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else [], device_type=device.type):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.default_generators[device.index if device.index is not None
                                          else torch.cuda.current_device()].manual_seed(seed)
        yield


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

    def check_layers(self, num_layers: int) -> None:
        self.layer_indices(num_layers)

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
                                            s.get("exact_grad", False), self.implicit, s.get("line_search", True),
                                            s.get("tol", 0.0))
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
    summary_line = ("Replaces each layer's explicit Euler step by an implicit one, z = x + h F(z), solved by K "
                    "descent steps on the residual with a line search. The implicit step damps a perturbation "
                    "(by 1/|1 - h lambda|) where the field's Jacobian has eigenvalues lambda with negative real "
                    "part, and can amplify it where the real part is positive; the ODE page measures which "
                    "holds. No new parameters, no adversarial examples.")
    settings_spec = (
        Setting("h", 1.0, "Euler step size h (> 0); residual field with h = 1 and K = 0 is vanilla BERT",
                low=0.0, high=4.0, low_open=True),
        Setting("K", DEFAULT_K, f"descent steps of the implicit solver per layer (0: the explicit predictor "
                f"only); a sentence's K steps cost at most K + 1 extra layer calls, plus its own line-search "
                f"halvings (evaluation). {DEFAULT_K} "
                "brings pretrained MiniLM's relative residual below 0.05 in every layer (docs/methods.md)",
                low=0, high=30),
        Setting("gamma", 0.5, "step size in (0, 1] of the cheap solver before the line search halves it: "
                "z <- (1-gamma) z + gamma (x + h F(z)); the exact solver takes full Newton steps instead",
                low=0.0, high=1.0, low_open=True),
        Setting("field", "residual", "vector field F: residual = Layer(x) - x, layer = Layer(x) "
                "(an extra outer connection x + h Layer(.))", choices=FIELDS),
        Setting("exact_grad", False, f"use the layer's exact Jacobian: Newton steps (I - h J_F) d = r solved by "
                f"GMRES from {KRYLOV_DIM} Jacobian-vector products, and the implicit function theorem's gradient "
                f"instead of backpropagating through the K steps. Far closer to the implicit solution (worst "
                f"layer of pretrained MiniLM 0.015 at K = 8, cheap 0.040), and several times the cost per step "
                f"(docs/methods.md)"),
        Setting("line_search", True, "halve the step of each sentence whose residual would grow, so the "
                "residual never grows (off: a fixed step, which can diverge and then stops the run)"),
        Setting("tol", TOLERANCE, "a sentence stops iterating once its residual ||z - x - h F(z)|| has "
                "fallen to this fraction of its value at the explicit predictor (0: K steps, unless every "
                "halving of a step fails)", low=0.0, high=1.0, high_open=True),
        Setting("layers", [-1], "encoder layers to convert, e.g. 0,1,2 (-1: all layers)"),
    )
    # per recording step: the relative residual per layer at the predictor (first), after K steps (final),
    # and at every iterate (per_iteration: layers x (K + 1)); NaN for a layer that is not converted
    artifacts = {"im_residual": ("step", "first", "final", "per_iteration")}

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._probe: dict[str, torch.Tensor] | None = None
        self._final: np.ndarray | None = None        # per-layer relative residual at the last recording step

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        if self._probe is None:                # the first batch is the fixed batch the residual is tracked on
            self._probe = {k: v.detach().clone() for k, v in model_inputs(batch).items()}
        return super().training_loss(model, batch, ctx)

    def after_step(self, model: nn.Module, ctx: StepContext) -> None:
        """On recording steps: the solver's relative residual per layer and iterate, on the fixed batch, in
        eval mode; a residual that grew stops the run (SolverDivergedError)."""
        if not ctx.record_now or self._probe is None:
            return
        trajectory = solver_residuals(model, self._probe)
        if trajectory is None:
            return
        first, final = trajectory[:, 0], trajectory[:, -1]
        ctx.recorder.append("im_residual", ctx.step, first=first, final=final, per_iteration=trajectory)
        ctx.recorder.scalar(ctx.step, "train", "im_residual", float(np.nanmean(final)))
        self._final = final
        check_not_diverging(trajectory, ctx.step)

    def summary(self) -> dict[str, float]:
        k = self.settings["K"]
        out = {**super().summary(), "extra_layer_calls_per_layer": k + 1 if k else 0}   # at most, without halvings
        if self._final is not None:
            out["final_relative_residual"] = float(np.nanmean(self._final))
        return out


def check_not_diverging(trajectory: np.ndarray, step: int) -> None:
    """Raise SolverDivergedError if any converted layer's relative residual after K steps is above its value
    at the explicit predictor (beyond GROWTH_TOLERANCE) or is not finite."""
    for layer, row in enumerate(trajectory):
        first, final = float(row[0]), float(row[-1])
        if np.isnan(first) and np.isnan(final):
            continue                           # a layer that is not converted
        if not np.isfinite(final) or final > first * (1 + GROWTH_TOLERANCE):
            raise SolverDivergedError(
                f"IM-BERT's implicit solver diverged at training step {step}: in layer {layer} the relative "
                f"residual ||z - x - h F(z)|| / ||z|| grew from {first:.3g} at the explicit predictor to "
                f"{final:.3g} after K = {len(row) - 1} steps, so its hidden states solve nothing and the run "
                f"stops. Turn line_search on, or lower gamma or h.")


@torch.no_grad()
def solver_residuals(model: nn.Module, batch: dict[str, torch.Tensor]) -> np.ndarray | None:
    """Relative implicit residual ||z - x - h F(z)|| / ||z|| over real tokens, per encoder layer (rows) and
    iterate z^0 .. z^K (columns); NaN rows where a layer is not implicit. None if nothing is implicit."""
    conns = [(i, c) for i, c in connections(model) if c.implicit]
    if not conns:
        return None
    was_training = model.training
    model.eval()
    n_layers = len(encoder_parts(model)[1])
    trajectory = np.full((n_layers, max(c.iterations for _, c in conns) + 1), np.nan)
    try:
        for _, c in conns:
            c.track = True
        model(**model_inputs(batch))
        for i, c in conns:
            if c.last_trajectory is not None:
                trajectory[i, :len(c.last_trajectory)] = c.last_trajectory
    finally:
        for _, c in conns:
            c.track, c.last_trajectory = False, None
        model.train(was_training)
    return trajectory


METHODS = {"im-bert": ImBert, "ex-bert": ExBert}
