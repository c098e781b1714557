"""The train job kind: its config, flags, training loop, evaluation and what a run records while it trains."""
