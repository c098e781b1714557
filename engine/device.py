"""Pick the device and the mixed-precision context once, so every loop runs the same way."""
from __future__ import annotations

import contextlib
import os

import torch


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU; `ROBUSTLAB_DEVICE` or `preferred` overrides."""
    choice = preferred or os.environ.get("ROBUSTLAB_DEVICE") or "auto"
    if choice != "auto":
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on a GPU; on CPU full precision (bf16 on CPU is slower and changes results)."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
