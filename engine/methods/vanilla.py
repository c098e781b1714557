"""Vanilla fine-tuning: the base `Method` with empty hooks."""
from engine.methods.base import Method


class Vanilla(Method):
    pass


METHODS = {"vanilla": Vanilla}
