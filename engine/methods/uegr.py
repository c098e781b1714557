"""UEGR: bi-stage optimisation for generalisation and robustness (Sun et al., arXiv 2503.16550).

No official code exists; this is RobustLab's labelled reconstruction (docs/methods.md, UEGR):

forward stage   an adversarial perturbation delta of the word embeddings (FGM/PGD, per-example
                Frobenius ball of radius epsilon) from FreeLB's random start, then K sub-model passes
                on e(x) + delta, pass k with dropout p_k on a fixed linear schedule over [p_min, p_max]
                (the paper's "adaptive dropout" rule is not published, so none is claimed); the loss is
                L = CE(clean) + lambda_adv * mean_k CE(pass k) + lambda_js * JS(P_1..P_K).
backward stage  saliency s = |theta * g| (or g^2) of every element of the encoder's weight matrices;
                only the top-rho fraction of each tensor (or of all of them) is updated, by the masked
                AdamW shared with ROSE: an unselected element does not move in that step (no gradient,
                no momentum-driven step, no weight decay) and keeps its momentum. Embeddings, biases,
                LayerNorm, pooler and classifier are always updated (plain AdamW).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.data.batching import model_inputs
from engine.methods._tensors import describe_tensors, dropout_rates, layer_index
from engine.methods.base import Method, Setting, SettingError, StepContext, param_groups
from engine.methods.masked_optimizer import MaskedAdamW

SALIENCY_BINS = np.linspace(-14.0, 0.0, 57)        # log10 bin edges of the saliency histogram
FREQUENCY_BINS = np.linspace(0.0, 1.0, 11)         # how often an element was selected
SAMPLE_PER_TENSOR = 4096                           # elements per tensor followed for the histograms


def js_divergence(log_probs: list[torch.Tensor]) -> torch.Tensor:
    """Generalised Jensen-Shannon divergence (1/K) sum_k KL(P_k || mean P), averaged over the batch."""
    stacked = torch.stack([lp.float() for lp in log_probs])                     # (K, B, C)
    log_mean = torch.logsumexp(stacked, dim=0) - math.log(len(log_probs))       # (B, C)
    kl = (stacked.exp() * (stacked - log_mean)).sum(-1)                        # (K, B)
    return kl.mean(0).mean()


def dropout_schedule(k: int, p_min: float, p_max: float) -> list[float]:
    """The linear dropout schedule p_k = p_min + (k-1)(p_max - p_min)/(K-1); a single pass uses p_min.
    Fixed, not adaptive: the same rates every step."""
    if k == 1:
        return [p_min]
    return [p_min + i * (p_max - p_min) / (k - 1) for i in range(k)]


def freelb_start(embeds: torch.Tensor, mask: torch.Tensor, init_mag: float) -> torch.Tensor:
    """FreeLB's random start (Zhu et al., ICLR 2020, Algorithm 1 line 4, and its official code for the
    L2 norm): delta_0 = U(-1, 1) * init_mag / sqrt(T_i * H) on the real tokens of example i (T_i of them,
    padding stays 0), H the embedding width. So E||delta_0||_F = init_mag / sqrt(3) for every example,
    whatever its length or the model's width."""
    keep = mask.unsqueeze(-1).to(embeds.dtype)
    elements = mask.sum(1).to(embeds.dtype).clamp_min(1) * embeds.shape[-1]
    return (torch.rand_like(embeds) * 2 - 1) * keep * (init_mag / elements.sqrt())[:, None, None]


def top_fraction_mask(scores: torch.Tensor, rho: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean mask of the top-rho fraction of `scores` (ties at the threshold are all kept).

    Exact: a sampled quantile brackets the threshold, and the exact k-th value is found among the few
    elements inside the bracket, so large tensors cost a few passes instead of a full selection.
    """
    flat = scores.flatten()
    n = flat.numel()
    k = max(1, min(n, int(round(rho * n))))
    if k == n:
        return torch.ones_like(scores, dtype=torch.bool)
    if n > 65536:
        idx = torch.randint(n, (16384,), generator=generator).to(flat.device)
        q = (n - k) / n
        bounds = torch.tensor([max(q - 0.02, 0.0), min(q + 0.02, 1.0)], dtype=flat.dtype, device=flat.device)
        low, high = torch.quantile(flat[idx], bounds)
        above = int((flat > high).sum())
        band = flat[(flat >= low) & (flat <= high)]
        need = k - above
        if 0 < need <= band.numel():
            threshold = torch.kthvalue(band, band.numel() - need + 1).values
            return scores >= threshold
    threshold = torch.kthvalue(flat, n - k + 1).values
    return scores >= threshold


class UEGR(Method):
    name = "uegr"
    title = "UEGR (bi-stage)"
    summary_line = ("Trains on adversarially perturbed embeddings seen through several dropout sub-models that "
                    "must agree, then updates only the most salient weights of each tensor.")
    settings_spec = (
        Setting("K", 3, "Number of dropout sub-model passes on the perturbed input (cost grows with K). Their rates "
                "follow a fixed linear schedule from p_min to p_max: the paper's adaptive-dropout rule is not "
                "published, so RobustLab does not claim one.", low=1, high=8),
        Setting("p_min", 0.05, "Dropout rate of the first sub-model (linear schedule).", low=0, high=1,
                high_open=True),
        Setting("p_max", 0.3, "Dropout rate of the last sub-model; the others are spread evenly in between (linear "
                "schedule, the same every step).", low=0, high=1, high_open=True),
        Setting("epsilon", 0.1, "Radius of the embedding perturbation (Frobenius norm per example).",
                low=0, low_open=True),
        Setting("alpha", 0.03, "Step size of each adversarial ascent step (along the normalised gradient).",
                low=0, low_open=True),
        Setting("n_adv", 1, "Adversarial ascent steps: 1 is FGM, more is PGD, 0 keeps only the random start.",
                low=0, high=10),
        Setting("init", "uniform", "Start of the perturbation: FreeLB's random start (uniform, scaled by init_mag / "
                "sqrt(length x width)), or zero.", choices=("uniform", "zero")),
        Setting("init_mag", 0.01, "Size of the uniform start as in FreeLB: its expected norm per sentence is "
                "init_mag / sqrt(3) (0.006 by default, a fifth of one ascent step alpha), the same for short and "
                "long sentences.", low=0),
        Setting("lambda_adv", 1.0, "Weight of the sub-models' cross-entropy on the perturbed input.", low=0),
        Setting("lambda_js", 1.0, "Weight of the Jensen-Shannon divergence among the sub-models' outputs.", low=0),
        Setting("rho", 0.5, "Fraction of each weight tensor's elements updated each step (the most salient); the "
                "others do not move in that step (no gradient, no momentum-driven step, no weight decay).",
                low=0, high=1, low_open=True),
        Setting("saliency", "taylor", "Importance of an element: |theta * g| (taylor) or g^2 (fisher).",
                choices=("taylor", "fisher")),
        Setting("scope", "tensor", "Top-rho within each tensor (avoids layer-scale bias), or over all at once.",
                choices=("tensor", "global")),
    )
    artifacts = {"uegr": ("step", "selected_fraction", "overall_fraction", "moved_fraction", "overall_moved",
                          "hist_selected", "hist_other"),
                 "uegr_tensors": ("name", "layer", "module", "saliency_bins", "frequency_bins", "frequency_hist",
                                  "records"),
                 "uegr_curves": ("step", "clean_loss", "adv_loss", "js")}

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.optimizer: MaskedAdamW | None = None
        self.names: list[str] = []
        self.params: list[nn.Parameter] = []
        self.samples: list[torch.Tensor] = []
        self.sample_counts: list[torch.Tensor] = []
        self.records = 0
        self.selected_sum = 0.0
        self.moved_sum = 0.0
        self.pending: dict[str, Any] | None = None   # a recording step's record, completed once the step is taken
        self.generator = torch.Generator().manual_seed(0)

    def check_settings(self) -> None:
        if self.settings["p_min"] > self.settings["p_max"]:
            raise SettingError(f"setting p_min={self.settings['p_min']:g} must not exceed p_max="
                               f"{self.settings['p_max']:g} (both dropout rates in [0, 1))")

    def make_optimizer(self, model: nn.Module, lr: float, weight_decay: float,
                       betas: tuple[float, float]) -> torch.optim.Optimizer:
        chosen = [(n, p) for n, p in model.named_parameters()
                  if p.requires_grad and p.dim() >= 2 and layer_index(n) is not None and "LayerNorm" not in n]
        self.names = [n for n, _ in chosen]
        self.params = [p for _, p in chosen]
        self.samples = [torch.randint(p.numel(), (min(SAMPLE_PER_TENSOR, p.numel()),), generator=self.generator)
                        for p in self.params]
        self.sample_counts = [torch.zeros(len(s)) for s in self.samples]
        self.optimizer = MaskedAdamW(param_groups(model, weight_decay), lr=lr, betas=betas, eps=1e-8)
        return self.optimizer

    # -- forward stage

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.settings
        ids, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
        segments = batch.get("token_type_ids")
        clean = nn.functional.cross_entropy(model(**model_inputs(batch)).logits, y)
        embeds = model.get_input_embeddings()(ids)
        delta = self._perturbation(model, embeds.detach(), mask, y, segments)
        log_probs, adv_losses = [], []
        for p in dropout_schedule(s["K"], s["p_min"], s["p_max"]):
            with dropout_rates(model, p, p):
                logits = model(inputs_embeds=embeds + delta, attention_mask=mask, token_type_ids=segments).logits
            adv_losses.append(nn.functional.cross_entropy(logits, y))
            log_probs.append(torch.log_softmax(logits.float(), -1))
        adv = torch.stack(adv_losses).mean()
        js = js_divergence(log_probs)
        loss = clean + s["lambda_adv"] * adv + s["lambda_js"] * js
        scalars = {"clean_loss": float(clean.detach()), "adv_loss": float(adv.detach()), "js": float(js.detach())}
        ctx.recorder.append("uegr_curves", ctx.step, **{k: np.float32(v) for k, v in scalars.items()})
        return loss, scalars

    def _perturbation(self, model: nn.Module, embeds: torch.Tensor, mask: torch.Tensor, y: torch.Tensor,
                      segments: torch.Tensor | None = None) -> torch.Tensor:
        """FGM/PGD in embedding space from FreeLB's random start; padding stays unperturbed."""
        s = self.settings
        keep = mask.unsqueeze(-1).to(embeds.dtype)
        if s["init"] == "uniform":
            delta = freelb_start(embeds, mask, s["init_mag"])
        else:
            delta = torch.zeros_like(embeds)
        for _ in range(s["n_adv"]):
            delta.requires_grad_(True)
            logits = model(inputs_embeds=embeds + delta, attention_mask=mask, token_type_ids=segments).logits
            (grad,) = torch.autograd.grad(nn.functional.cross_entropy(logits.float(), y, reduction="sum"), delta)
            grad = grad * keep
            norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
            delta = delta.detach() + s["alpha"] * grad / norms[:, None, None]
            radius = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            delta = delta * torch.clamp(s["epsilon"] / radius, max=1.0)[:, None, None]
        return delta.detach()

    # -- backward stage

    @torch.no_grad()
    def before_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, ctx: StepContext) -> None:
        """Select the top-rho elements and hand their masks to the optimizer: the others sit this step out."""
        live = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        fisher = self.settings["saliency"] == "fisher"
        scores = [p.grad.float() ** 2 if fisher else (p.detach().float() * p.grad.float()).abs() for _, p in live]
        if self.settings["scope"] == "global" and scores:
            flat = top_fraction_mask(torch.cat([sc.flatten() for sc in scores]), self.settings["rho"], self.generator)
            masks, start = [], 0
            for sc in scores:
                masks.append(flat[start:start + sc.numel()].view_as(sc))
                start += sc.numel()
        else:
            masks = [top_fraction_mask(sc, self.settings["rho"], self.generator) for sc in scores]
        self.optimizer.set_mask([p for _, p in live], masks)
        self.pending = self._selection_record(live, scores, masks) if ctx.record_now and live else None

    @torch.no_grad()
    def after_step(self, model: nn.Module, ctx: StepContext) -> None:
        """On recording steps: which elements actually changed, beside which were selected."""
        if self.pending is None:
            return
        record, self.pending = self.pending, None
        before, selected = record.pop("before"), record.pop("overall_fraction")
        moved = np.full(len(self.params), np.nan, dtype=np.float32)
        changed = total = 0
        for i, old in before.items():
            n_changed = int((self.params[i].detach() != old).sum())
            moved[i] = n_changed / old.numel()
            changed, total = changed + n_changed, total + old.numel()
        overall_moved = changed / total
        self.records += 1
        self.selected_sum += selected
        self.moved_sum += overall_moved
        ctx.recorder.append("uegr", ctx.step, overall_fraction=np.float32(selected), moved_fraction=moved,
                            overall_moved=np.float32(overall_moved), **record)
        freq = np.stack([np.histogram((c / self.records).numpy(), FREQUENCY_BINS)[0] for c in self.sample_counts])
        ctx.recorder.put("uegr_tensors", **describe_tensors(self.names), saliency_bins=SALIENCY_BINS,
                         frequency_bins=FREQUENCY_BINS, frequency_hist=freq.astype(np.int32),
                         records=np.int32(self.records))

    def _selection_record(self, live: list, scores: list[torch.Tensor], masks: list[torch.Tensor]) -> dict[str, Any]:
        """Saliency histograms (on a fixed sample of each tensor), selected fraction per tensor, how often each
        sampled element has been selected so far, and a copy of the weights to see afterwards what moved."""
        fractions = np.full(len(self.params), np.nan, dtype=np.float32)
        sal, sel = [], []
        for (i, _), sc, m in zip(live, scores, masks):
            fractions[i] = float(m.float().mean())
            idx = self.samples[i].to(sc.device)
            picked = m.flatten()[idx].cpu()
            self.sample_counts[i] += picked.float()
            sal.append(sc.flatten()[idx].cpu())
            sel.append(picked)
        overall = sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)
        log_s = torch.log10(torch.cat(sal).double().clamp_min(1e-300)).clamp(SALIENCY_BINS[0], SALIENCY_BINS[-1])
        chosen = torch.cat(sel)
        hist_sel, _ = np.histogram(log_s[chosen].numpy(), SALIENCY_BINS)
        hist_rest, _ = np.histogram(log_s[~chosen].numpy(), SALIENCY_BINS)
        return {"before": {i: p.detach().clone() for i, p in live}, "selected_fraction": fractions,
                "overall_fraction": overall, "hist_selected": hist_sel.astype(np.int32),
                "hist_other": hist_rest.astype(np.int32)}

    def summary(self) -> dict[str, float]:
        if not self.records:
            return {}
        return {"mean_selected_fraction": round(self.selected_sum / self.records, 4),
                "mean_moved_fraction": round(self.moved_sum / self.records, 4),
                "selectable_tensors": len(self.params)}


METHODS = {"uegr": UEGR}
