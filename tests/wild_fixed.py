"""The fixed versions of lesson 8's bugs (`buflesson.wild`), for the tests only: they are the
answers of exercises 8.1 to 8.3, and the package holds no answers."""

import torch
from torch import nn

from buflesson.wild import PinnedMask, StaleStats, UnsavedPeak


class FreshStats(nn.Module):
    """Fixed: reads the buffers by name each time, so it always gets the current tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)


class RegisteredMask(nn.Module):
    """Fixed: the mask is a non-persistent buffer, so it moves and old checkpoints still load."""

    def __init__(self, size: int = 4, device: str | torch.device | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(size, size)
        self.register_buffer("mask", torch.tril(torch.ones(size, size, device=device)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)


class SavedPeak(nn.Module):
    """Fixed: the same running peak, registered as a persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("peak", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            torch.maximum(self.peak, x.detach().abs().amax(dim=0), out=self.peak)
        return self.linear(x / self.peak)


PAIRS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "stale reference": (StaleStats, FreshStats),
    "plain tensor": (PinnedMask, RegisteredMask),
    "unsaved state": (UnsavedPeak, SavedPeak),
}
"""Each bug's (buggy, fixed) classes, by the problem `audit` reports on the buggy one."""
