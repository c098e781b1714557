"""Stability of a BERT read as an ODE: the textbook test equation, and probes of a trained model.

Everything the ODE stability page shows is computed here:
- the test equation x' = lambda x under explicit and implicit Euler (pure numpy, instant);
- perturbation growth across layers for Gaussian and one-step FGM perturbations delta of the initial
  value x_0 (the embedding output), scale-free (||dx_l|| / ||x_l||) / (||delta|| / ||x_0||) and absolute
  ||dx_l|| / ||delta||, where dx_l = x_l(e + delta) - x_l(e); only the scale-free one can compare models
  whose hidden states differ in size;
- each layer's top Jacobian singular value (Lanczos, i.e. accelerated power iteration, on J^T J with
  autograd), and the Rayleigh quotient of its vector field's Jacobian h J_F along that top singular
  vector: a stand-in for h lambda that places the layer on the amplification curves (it is an eigenvalue
  only when that vector is an eigenvector);
- the implicit solver's residual per layer (IM-BERT runs);
- hidden-state divergence per layer between a sentence and a perturbed copy.
Probe results are stored with the run (artifacts/probe.npz) so a page computes them once.
"""
from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.data.batching import encode, model_inputs, pad_batch
from engine.data.text_dataset import Input
from engine.methods.im_bert import connections, math_attention
from engine.models.architecture import encoder_parts
from engine.models.inference import label_names_for, segment_names_for
from engine.store.runs import read_json
from engine.training.evaluate import eval_set, own_sets
from engine.user_text import quoted

PROBE_VERSION = 4          # 4: scale-free growth beside the absolute one
PROBE_SET = "advglue-sst2"
# per layer, for the Gaussian and the FGM perturbation: absolute growth, then scale-free growth (`growth_of`)
GROWTH_KEYS = ("growth", "relative_growth", "growth_fgm", "relative_growth_fgm")


# ---------------------------------------------------------------- the test equation x' = lambda x

def euler_trajectories(h: float, lam: complex, steps: int) -> dict[str, np.ndarray]:
    """x_n for x_0 = 1: exact exp(lambda t), explicit (1 + h lambda)^n, implicit (1 - h lambda)^-n."""
    if h <= 0:
        raise ValueError(f"step size h must be > 0 (got {h:g})")
    if steps < 1:
        raise ValueError(f"number of steps must be at least 1 (got {steps})")
    z = complex(h * lam)
    if abs(1 - z) < 1e-12:
        raise ValueError("h * lambda = 1: the implicit step divides by 1 - h lambda = 0")
    n = np.arange(steps + 1)
    t = n * h
    fine = np.linspace(0, t[-1], 400)
    return {"n": n, "t": t, "explicit": (1 + z) ** n, "implicit": (1 - z) ** (-n.astype(float)),
            "t_exact": fine, "exact": np.exp(complex(lam) * fine),
            "explicit_factor": np.array(abs(1 + z)), "implicit_factor": np.array(1 / abs(1 - z))}


def stability_grid(extent: float = 3.0, n: int = 241) -> dict[str, np.ndarray]:
    """|1 + z| and 1/|1 - z| on a grid of z = h lambda; a scheme is stable where its factor is <= 1."""
    re_ = np.linspace(-extent, extent, n)
    im_ = np.linspace(-extent, extent, n)
    z = re_[None, :] + 1j * im_[:, None]
    with np.errstate(divide="ignore"):
        implicit = 1 / np.abs(1 - z)
    return {"re": re_, "im": im_, "explicit": np.abs(1 + z), "implicit": implicit}


def amplification_curves(lo: float = -3.0, hi: float = 1.0, n: int = 401) -> dict[str, np.ndarray]:
    """Per-step amplification of a perturbation along a real eigen-direction, as a function of h lambda."""
    z = np.linspace(lo, hi, n)
    with np.errstate(divide="ignore"):
        implicit = 1 / np.abs(1 - z)
    return {"z": z, "explicit": np.abs(1 + z), "implicit": np.where(np.isfinite(implicit), implicit, np.nan)}


# ---------------------------------------------------------------- model plumbing

def sentence_batch(tokenizer, texts: list[Input], max_length: int = 128) -> dict[str, torch.Tensor]:
    """Padded batch of sentences, or of sentence pairs (with their segment ids); a sentence or segment that
    tokenises to no real token is refused with a clear message."""
    if not texts:
        raise ValueError("the probe batch is empty")
    for given in texts:
        for text in (given,) if isinstance(given, str) else given:
            real = tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
            if not str(text).strip() or not real:
                raise ValueError(f"the sentence {quoted(text)} tokenises to nothing; type a sentence with at least "
                                 f"one word")
    return pad_batch(encode(tokenizer, list(texts), max_length), range(len(texts)), tokenizer.pad_token_id)


@contextlib.contextmanager
def _perturb_initial_value(model: nn.Module, delta: torch.Tensor | None) -> Iterator[None]:
    """Add delta to the embedding output x_0 (the ODE's initial value) during forward passes."""
    emb, _ = encoder_parts(model)
    handle = emb.register_forward_hook(lambda _m, _i, out: out + delta) if delta is not None else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


def trajectory(model: nn.Module, batch: dict[str, torch.Tensor], delta: torch.Tensor | None = None
               ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The ODE's trajectory [x_0, ..., x_L] (each (B, T, H)) and the logits, with delta added to x_0."""
    with _perturb_initial_value(model, delta):
        out = model(**model_inputs(batch),
                    output_hidden_states=True)
    return list(out.hidden_states), out.logits


def _masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x * mask.to(x.dtype).unsqueeze(-1)


def _norms(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sentence Frobenius norm over real tokens: (B,)."""
    return _masked(x, mask).flatten(1).norm(dim=1)


def _scaled(direction: torch.Tensor, x0: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """direction rescaled per sentence to ||delta|| = scale * ||x_0|| over real tokens, zero on padding."""
    d = _masked(direction, mask)
    factor = scale * _norms(x0, mask) / _norms(d, mask).clamp_min(1e-12)
    return d * factor.view(-1, 1, 1)


def gaussian_delta(x0: torch.Tensor, mask: torch.Tensor, scale: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=gen, dtype=torch.float32).to(x0.device, x0.dtype)
    return _scaled(noise, x0, mask, scale)


def fgm_delta(model: nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor, x0: torch.Tensor,
              scale: float) -> torch.Tensor:
    """One-step fast gradient method on x_0: the loss gradient's direction, per sentence, same norm as Gaussian."""
    probe = torch.zeros_like(x0, requires_grad=True)
    with torch.enable_grad():
        _, logits = trajectory(model, batch, probe)
        loss = nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, probe)
    return _scaled(grad.detach(), x0, batch["attention_mask"], scale)


def growth_of(clean: list[torch.Tensor], noisy: list[torch.Tensor], delta: torch.Tensor, mask: torch.Tensor
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence and layer l = 1..L, (B, L) each, from the clean and perturbed trajectories [x_0, ..., x_L]:

    - absolute growth ||dx_l|| / ||delta||, which also moves when a model's hidden states are larger or smaller;
    - scale-free growth (||dx_l|| / ||x_l||) / (||delta|| / ||x_0||), the perturbation's share of the hidden
      state relative to its share at the start, which rescaling any x_l leaves unchanged.
    """
    start = _norms(delta, mask).clamp_min(1e-30) / _norms(clean[0], mask).clamp_min(1e-30)
    absolute, relative = [], []
    for a, b in zip(clean[1:], noisy[1:]):
        moved = _norms(b - a, mask)
        absolute.append(moved / _norms(delta, mask).clamp_min(1e-30))
        relative.append(moved / _norms(a, mask).clamp_min(1e-30) / start)
    return torch.stack(absolute, 1).cpu().numpy(), torch.stack(relative, 1).cpu().numpy()


@torch.no_grad()
def growth(model: nn.Module, batch: dict[str, torch.Tensor], delta: torch.Tensor,
           clean: list[torch.Tensor] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Absolute and scale-free growth (`growth_of`) of the perturbation delta of x_0 through the model."""
    clean = clean if clean is not None else trajectory(model, batch)[0]
    noisy, _ = trajectory(model, batch, delta)
    return growth_of(clean, noisy, delta, batch["attention_mask"])


# ---------------------------------------------------------------- per-layer Jacobians

@dataclass
class LayerCall:
    """A layer as a function of its input hidden state, with the mask and arguments it was called with."""
    index: int
    module: nn.Module
    x: torch.Tensor
    args: tuple
    kwargs: dict

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """x_l -> x_{l+1}: the whole connection (explicit, implicit, or the plain layer)."""
        out = self.module(x, *self.args, **self.kwargs)
        return out[0] if isinstance(out, tuple) else out

    def field(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(h F(x), h) for the layer's vector field; a plain layer is the residual field with h = 1."""
        if hasattr(self.module, "field_value"):
            f, _ = self.module.field_value(x, self.args, self.kwargs)
            return self.module.h * f, self.module.h
        return self.step(x) - x, 1.0

    @property
    def scheme(self) -> str:
        implicit = getattr(self.module, "implicit", False) and getattr(self.module, "iterations", 0) > 0
        return "implicit" if implicit else "explicit"


@dataclass
class CleanPass:
    """What one forward pass of the unperturbed batch gives every probe."""
    calls: list[LayerCall]             # each layer's input and call arguments
    states: list[torch.Tensor]         # x_0 .. x_L
    logits: torch.Tensor
    residual_first: np.ndarray         # implicit solver residual at the predictor z^0, per layer (NaN: explicit)
    residual_final: np.ndarray         # ... and after its K steps


def clean_pass(model: nn.Module, batch: dict[str, torch.Tensor]) -> CleanPass:
    """One forward pass capturing hidden states, layer calls and IM-BERT solver residuals together."""
    _, layers = encoder_parts(model)
    calls: list[LayerCall] = []
    handles = []
    for i, layer in enumerate(layers):
        def hook(module, args, kwargs, i=i):
            calls.append(LayerCall(i, module, args[0].detach(), tuple(args[1:]), dict(kwargs)))
        handles.append(layer.register_forward_pre_hook(hook, with_kwargs=True))
    implicit = [(i, c) for i, c in connections(model) if c.implicit]
    first, final = np.full(len(layers), np.nan), np.full(len(layers), np.nan)
    try:
        for _, c in implicit:
            c.track = True
        with torch.no_grad():
            out = model(**model_inputs(batch),
                        output_hidden_states=True)
        for i, c in implicit:
            if c.last_trajectory:
                first[i], final[i] = c.last_trajectory[0], c.last_trajectory[-1]
    finally:
        for h in handles:
            h.remove()
        for _, c in implicit:
            c.track, c.last_trajectory = False, None
    return CleanPass(sorted(calls, key=lambda c: c.index), list(out.hidden_states), out.logits, first, final)


def layer_calls(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[LayerCall]:
    """Run the model once and capture each encoder layer's input and call arguments."""
    return clean_pass(model, batch).calls


def _unit(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    v = _masked(v, mask)
    return v / _norms(v, mask).clamp_min(1e-30).view(-1, 1, 1)


def _linear_maps(fn, x: torch.Tensor):
    """(v -> J v, w -> J^T w) for fn at x, by reverse mode only (J v through the double-vjp trick)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = fn(x)
        u = torch.zeros_like(y, requires_grad=True)
        (jtu,) = torch.autograd.grad(y, x, grad_outputs=u, create_graph=True)

    def jv(v: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(jtu, u, grad_outputs=v, retain_graph=True)[0].detach()

    def jtw(w: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(y, x, grad_outputs=w, retain_graph=True)[0].detach()
    return jv, jtw


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sentence inner product: (B,)."""
    return (a * b).flatten(1).sum(1)


def top_singular(fn, x: torch.Tensor, mask: torch.Tensor, steps: int = 6, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Per-sentence top singular value of the Jacobian of fn at x (over real tokens), its right vector, and
    v -> J v (to reuse the graph).

    Lanczos on J^T J, one small tridiagonal per sentence (sentences do not interact, so J is block
    diagonal and all sentences iterate at once). Each step costs one J v and one J^T w, like a power
    iteration step, but converges much faster: 6 steps are within about 1 % of the limit on MiniLM.
    """
    jv, jtw = _linear_maps(fn, x)
    gen = torch.Generator().manual_seed(seed)
    basis = [_unit(torch.randn(x.shape, generator=gen).to(x.device, x.dtype), mask)]
    alphas, betas = [], []
    for j in range(steps):
        w = _masked(jtw(_masked(jv(basis[-1]), mask)), mask)
        alphas.append(_dot(w, basis[-1]))
        for _ in range(2):                     # full re-orthogonalisation, twice: cheap at this size
            for q in basis:
                w = w - _dot(w, q).view(-1, 1, 1) * q
        if j == steps - 1:
            break
        beta = _norms(w, mask)
        betas.append(beta)
        basis.append(w / beta.clamp_min(1e-30).view(-1, 1, 1))
    diag = torch.stack(alphas, 1).double()
    off = torch.stack(betas, 1).double() if betas else diag[:, :0]
    tri = torch.diag_embed(diag) + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    evals, evecs = torch.linalg.eigh(tri)
    coef = evecs[:, :, -1].to(x.dtype)
    v = sum(coef[:, i].view(-1, 1, 1) * q for i, q in enumerate(basis))
    return evals[:, -1].clamp_min(0).sqrt().to(x.dtype), _unit(v, mask), jv


def effective_lambda(call: LayerCall, v: torch.Tensor, mask: torch.Tensor,
                     step_jv: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The Rayleigh quotient <v, h J_F v> / <v, v> along direction v, per sentence: h lambda when v is an
    eigenvector of J_F, otherwise only a stand-in for it (the amplification plot's x-value, labelled so).

    An explicit step is x + h F(x), so h J_F v = J_step v - v reuses the step's graph (`step_jv`).
    """
    if call.scheme == "explicit" and step_jv is not None:
        jfv = _masked(step_jv(v) - v, mask)
    else:
        jv, _ = _linear_maps(lambda x: call.field(x)[0], call.x)
        jfv = _masked(jv(v), mask)
    return ((_masked(v, mask) * jfv).flatten(1).sum(1) / _norms(v, mask).pow(2).clamp_min(1e-30)).detach()


def layer_spectra(model: nn.Module, batch: dict[str, torch.Tensor], steps: int = 6,
                  calls: list[LayerCall] | None = None) -> dict[str, np.ndarray]:
    """Per sentence and layer (B, L): top singular value of the step's Jacobian and the Rayleigh quotient of
    h J_F along its top singular vector (`h_lambda`, see `effective_lambda`); per layer (L,): h and the scheme
    (explicit or implicit)."""
    mask = batch["attention_mask"]
    sv, hlam, hs, schemes = [], [], [], []
    for call in calls if calls is not None else layer_calls(model, batch):
        with math_attention():  # fused attention kernels have no double backward
            sigma, v, jv = top_singular(call.step, call.x, mask, steps)
            sv.append(sigma.cpu().numpy())
            hlam.append(effective_lambda(call, v, mask, jv).cpu().numpy())
        hs.append(float(getattr(call.module, "h", 1.0)))
        schemes.append(call.scheme)
    return {"jacobian_top_sv": np.stack(sv, 1), "h_lambda": np.stack(hlam, 1), "h": np.array(hs, dtype=float),
            "scheme": np.array(schemes)}


# ---------------------------------------------------------------- the probe of a trained run

def probe_set(run_dir: Path) -> str:
    """The set a run is probed on: AdvGLUE-SST2, or for a sentence-pair run its own task's last set (its AdvGLUE
    pairs where the task has them), so a pair model is probed on pairs."""
    if segment_names_for(run_dir) is None:
        return PROBE_SET
    return own_sets(read_json(run_dir / "config.json", {}))[-1]


def probe_texts(run_dir: Path, n: int = 16, seed: int = 0) -> tuple[list[Input], list[int]]:
    """The fixed probe batch of a run: n examples of its probe set (`probe_set`), a seeded sample, with their
    labels."""
    data = eval_set(read_json(run_dir / "config.json", {}), probe_set(run_dir), label_names_for(run_dir))
    data = data.sample(n, seed)
    return data.inputs, data.labels


def probe_model(model: nn.Module, tokenizer, texts: list[Input], labels: list[int] | None = None,
                scale: float = 1e-2, steps: int = 6, seed: int = 0, max_length: int = 128,
                chunk: int = 8, jacobian_n: int = 8) -> dict[str, Any]:
    """All stability probes of one model on a batch of sentences (or sentence pairs); means per layer l = 1..L.

    Growth is measured on every sentence; the layer Jacobians, by far the costliest probe, on the first
    `jacobian_n`. Sentences go in length-sorted chunks of `chunk`, so little time goes to padding; every
    per-sentence quantity is independent of the others, so chunking changes no number.
    """
    model.eval()
    device = next(model.parameters()).device
    sentence_batch(tokenizer, texts, max_length)           # refuses an empty batch or an empty sentence first
    lengths = encode(tokenizer, list(texts), max_length).lengths().tolist()

    def chunks(indices: list[int]) -> Iterator[tuple[int, list[int], dict[str, torch.Tensor]]]:
        ordered = sorted(indices, key=lambda i: (lengths[i], i))
        for c, start in enumerate(range(0, len(ordered), chunk)):
            idx = ordered[start:start + chunk]
            batch = sentence_batch(tokenizer, [texts[i] for i in idx], max_length)
            yield c, idx, {k: v.to(device) for k, v in batch.items()}

    n = len(texts)
    per = {key: {} for key in (*GROWTH_KEYS, "jacobian_top_sv", "h_lambda")}
    firsts, finals = [], []
    for c, idx, batch in chunks(list(range(n))):
        mask = batch["attention_mask"]
        clean = clean_pass(model, batch)
        y = torch.tensor([labels[i] for i in idx], device=device) if labels is not None else clean.logits.argmax(-1)
        gauss = growth(model, batch, gaussian_delta(clean.states[0], mask, scale, seed + c), clean.states)
        fgm = growth(model, batch, fgm_delta(model, batch, y, clean.states[0], scale), clean.states)
        measured = dict(zip(GROWTH_KEYS, (*gauss, *fgm)))
        for row, i in enumerate(idx):
            for key, values in measured.items():
                per[key][i] = values[row]
        firsts.append(clean.residual_first)
        finals.append(clean.residual_final)
    for _, idx, batch in chunks(list(range(min(jacobian_n, n)))):
        spectra = layer_spectra(model, batch, steps)
        for row, i in enumerate(idx):
            per["jacobian_top_sv"][i], per["h_lambda"][i] = spectra["jacobian_top_sv"][row], spectra["h_lambda"][row]
    arrays = {key: np.stack([values[i] for i in sorted(values)]) for key, values in per.items()}
    return {**{key: value.mean(0) for key, value in arrays.items()},
            "solver_residual": np.mean(finals, 0), "solver_residual_first": np.mean(firsts, 0),
            "h": spectra["h"], "scheme": spectra["scheme"],
            **{f"{key}_per_sentence": arrays[key] for key in (*GROWTH_KEYS, "jacobian_top_sv")},
            "n_sentences": np.array(n), "jacobian_sentences": np.array(min(jacobian_n, n))}


def _params(n: int, seed: int, scale: float, steps: int, jacobian_n: int) -> dict[str, Any]:
    return {"version": PROBE_VERSION, "n": n, "seed": seed, "scale": scale, "steps": steps, "jacobian_n": jacobian_n}


def probe_run(store, run_id: str, n: int = 16, seed: int = 0, scale: float = 1e-2, steps: int = 6,
              jacobian_n: int = 8, force: bool = False) -> dict[str, Any]:
    """Probe a finished run once and keep the result in its artifacts/probe.npz; later calls read it."""
    from engine.models.loading import load_trained

    if n < 1:
        raise ValueError(f"the probe batch needs at least 1 sentence (got {n})")
    if scale <= 0:
        raise ValueError(f"the perturbation scale must be > 0 (got {scale:g})")
    if steps < 1:
        raise ValueError(f"the Jacobian estimate needs at least 1 Lanczos step (got {steps})")
    run = store.get(run_id)
    if jacobian_n < 1:
        raise ValueError(f"the Jacobian probe needs at least 1 sentence (got {jacobian_n})")
    params = _params(n, seed, scale, steps, jacobian_n)
    stored = run.artifact("probe")
    if stored and not force and all(k in stored and float(stored[k]) == float(v) for k, v in params.items()):
        return probe_json(run, stored)
    started = time.perf_counter()
    model, tokenizer, _method = load_trained(run.dir, "cpu")
    texts, labels = probe_texts(run.dir, n, seed)
    loaded = time.perf_counter()
    result = probe_model(model, tokenizer, texts, labels, scale, steps, seed,
                         run.config.get("max_length", 128), jacobian_n=jacobian_n)
    result["seconds"] = np.array(time.perf_counter() - loaded)        # the probes alone
    result["load_seconds"] = np.array(loaded - started)
    arrays = {**{k: np.asarray(v) for k, v in result.items()}, **{k: np.array(v) for k, v in params.items()}}
    run.write_artifact("probe", arrays)
    return probe_json(run, arrays)


def probe_json(run, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The probe artifact as the CLI's JSON (NaN -> null)."""
    def listed(key: str) -> list:
        return [None if isinstance(v, float) and np.isnan(v) else v for v in np.asarray(arrays[key]).tolist()]

    return {"run_id": run.id, "method": run.config.get("method"), "settings": run.config.get("settings", {}),
            "n_sentences": int(arrays["n_sentences"]), "jacobian_sentences": int(arrays["jacobian_sentences"]),
            **{key: listed(key) for key in GROWTH_KEYS}, "jacobian_top_sv": listed("jacobian_top_sv"),
            "h_lambda": listed("h_lambda"), "h": listed("h"), "scheme": listed("scheme"),
            "solver_residual": listed("solver_residual"), "seconds": round(float(arrays["seconds"]), 3),
            "load_seconds": round(float(arrays.get("load_seconds", np.nan)), 3)}


# ---------------------------------------------------------------- a sentence and its perturbed copy

@torch.no_grad()
def divergence(model: nn.Module, tokenizer, clean: str, perturbed: str, max_length: int = 128) -> dict[str, Any]:
    """Per layer l = 0..L: how far the perturbed sentence's hidden states are from the clean one's.

    The two may tokenise to different lengths (a typo splits a word), so states are compared pooled:
    relative distance ||m_l(b) - m_l(a)|| / ||m_l(a)|| of the mean over real tokens, and of [CLS].
    """
    model.eval()
    device = next(model.parameters()).device
    states = []
    probs = []
    for text in (clean, perturbed):
        batch = {k: v.to(device) for k, v in sentence_batch(tokenizer, [text], max_length).items()}
        hs, logits = trajectory(model, batch)
        m = batch["attention_mask"][0].bool()
        states.append(([x[0][m].mean(0) for x in hs], [x[0, 0] for x in hs]))
        probs.append(torch.softmax(logits.float(), -1)[0].cpu().numpy())
        if len(states) == 1:
            tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0][m].tolist())
        else:
            tokens_b = tokenizer.convert_ids_to_tokens(batch["input_ids"][0][m].tolist())
    (mean_a, cls_a), (mean_b, cls_b) = states

    def rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> np.ndarray:
        return np.array([float((y - x).norm() / x.norm().clamp_min(1e-12)) for x, y in zip(a, b)])

    return {"mean": rel(mean_a, mean_b), "cls": rel(cls_a, cls_b), "probs_clean": probs[0],
            "probs_perturbed": probs[1], "tokens_clean": tokens, "tokens_perturbed": tokens_b}


def typo_copy(sentence: str, n_typos: int = 2, seed: int = 0) -> str:
    """A typo'd copy: swap two inner letters in up to n_typos of the longer words (deterministic per seed)."""
    words = sentence.split(" ")
    candidates = [i for i, w in enumerate(words) if len(re.sub(r"[^A-Za-z]", "", w)) >= 4 and w.isalpha()]
    rng = np.random.default_rng(seed)
    for i in sorted(rng.permutation(candidates)[:n_typos].tolist()):
        w = words[i]
        spots = [j for j in range(1, len(w) - 2) if w[j] != w[j + 1]] or [1]
        j = int(rng.choice(spots))
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)
