"""Choose a device that shows the device case on any machine."""

from __future__ import annotations

from typing import NamedTuple

import torch


class DeviceChoice(NamedTuple):
    """The device the lessons move models to, and one line that says why."""

    device: torch.device
    why: str


def pick_device() -> DeviceChoice:
    """Return the best accelerator present (cuda, mps, xpu), else the `meta` device.

    The `meta` device holds shapes and dtypes but no data. A model moved there
    fails on a CPU tensor exactly as a model moved to a GPU does, so the device
    lesson shows PyTorch's real error on every machine.
    """
    if torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda"), "Using the accelerator: cuda.")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return DeviceChoice(torch.device("mps"), "Using the accelerator: mps.")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return DeviceChoice(torch.device("xpu"), "Using the accelerator: xpu.")
    return DeviceChoice(
        torch.device("meta"),
        (
            "No accelerator here: using the meta device, "
            "which refuses a CPU tensor as a GPU would (its message differs)."
        ),
    )
