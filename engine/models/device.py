"""Pick the device and the mixed-precision context once, so every loop runs the same way."""
from __future__ import annotations

import contextlib
import os

import torch

from engine.user_text import quoted

DEVICE_VARIABLE = "ROBUSTLAB_DEVICE"


class DeviceError(ValueError):
    """The requested device does not exist here; the message says where the request came from."""


def pick_device(preferred: str | None = None) -> torch.device:
    """An explicit `preferred` device wins; "auto" (or None) takes `ROBUSTLAB_DEVICE` when it is set,
    else CUDA, then Apple MPS, then CPU."""
    if preferred and preferred != "auto":
        return _named(preferred, "the configured device")
    choice = os.environ.get(DEVICE_VARIABLE, "").strip() or "auto"
    if choice != "auto":
        return _named(choice, DEVICE_VARIABLE)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _named(name: str, source: str) -> torch.device:
    """A device from its name, refusing names torch does not know and accelerators this machine lacks."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise DeviceError(f"{source} {quoted(name)} is not a device name (use auto, cpu, cuda, cuda:N or mps)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"{source} {quoted(name)} asks for CUDA, which this machine does not have")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise DeviceError(f"{source} {quoted(name)} asks for Apple MPS, which this machine does not have")
    return device


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
