"""Vanilla fine-tuning: the base `Method` with empty hooks."""
from engine.methods._tensors import DriftTracker
from engine.methods.base import Method


class Vanilla(Method):
    drift: DriftTracker | None = None

    # Per-layer weight drift, recorded so the method pages can set a robust method's drift against
    # vanilla's (about 40 norms per run).
    def make_optimizer(self, model, lr, weight_decay, betas):
        self.drift = DriftTracker(model)
        return super().make_optimizer(model, lr, weight_decay, betas)

    def after_step(self, model, ctx) -> None:
        if self.drift is not None:
            self.drift.record(ctx)


METHODS = {"vanilla": Vanilla}
