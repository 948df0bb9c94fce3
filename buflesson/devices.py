"""Choose the device the lessons move models to: a real accelerator, else buflesson's GPU stand-in."""

from __future__ import annotations

from typing import NamedTuple

import torch

from buflesson.i18n import N_, render, tr
from buflesson.standin import STANDIN, StandInDeviceError, device_rule, enable, rule_active

__all__ = ["DeviceChoice", "StandInDeviceError", "device_rule", "pick_device", "rule_active"]

STANDIN_WHY = N_(
    "No accelerator here: using buflesson's GPU stand-in, the meta device checked by CUDA's device rule."
)


class DeviceChoice(NamedTuple):
    """The device the lessons move models to, and one line that says why (in the language current when
    it was chosen)."""

    device: torch.device
    why: str

    @property
    def standin(self) -> bool:
        """True for buflesson's stand-in (the `meta` device), False for a real accelerator."""
        return self.device.type == STANDIN.type


def accelerator() -> torch.device | None:
    """The best accelerator present (cuda, mps, xpu), or None."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return torch.device("xpu")
    return None


def pick_device() -> DeviceChoice:
    """Return the best accelerator present (cuda, mps, xpu), else buflesson's GPU stand-in.

    The stand-in is the `meta` device (shapes and dtypes, no values) under CUDA's device rule:
    every operation that mixes it with a CPU tensor is judged by CUDA's rule as
    `buflesson.cuda_rule` writes it down (exactly for the operators whose source was read, by a
    simpler rule for the others) and refused with `StandInDeviceError` where that rule refuses.
    Choosing the stand-in turns that rule on for the rest of the process, in the calling thread
    (in a notebook: every later cell). On a real accelerator buflesson enforces nothing: PyTorch does.
    """
    device = accelerator()
    if device is not None:
        return DeviceChoice(device, render("Using the accelerator: {device}.", device=device.type))
    enable()
    return DeviceChoice(STANDIN, tr(STANDIN_WHY))


def checking_device() -> torch.device:
    """The device a check moves a model to: the accelerator if any, else the stand-in.

    Run the check's code inside `device_rule()` so the stand-in refuses what a GPU refuses.
    """
    return accelerator() or STANDIN
