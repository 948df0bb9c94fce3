"""Bugs from the wild: small reproductions of state mistakes reported in public issue trackers.

Each bug comes as a pair, the buggy model and its fix, with the same layers and
the same forward computation, so that only the way the tensor is kept differs:

- `StaleStats` / `FreshStats`: a list that keeps references to buffers goes stale
  after `.to()` or `.double()`, because those replace buffers with new tensors.
- `PinnedMask` / `RegisteredMask`: a tensor made in `__init__` as a plain attribute,
  on a fixed device, stays there when the model moves.
- `UnsavedPeak` / `SavedPeak`: a buffer that the model updates while it trains,
  registered with `persistent=False`, so checkpoints lose it.
"""

from __future__ import annotations

import torch
from torch import nn


class StaleStats(nn.Module):
    """Buggy: normalises with buffers it also keeps in a plain list."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))
        self.stats = [self.mean, self.std]  # the bug: references to today's buffer tensors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.stats
        return self.linear((x - mean) / std)


class FreshStats(nn.Module):
    """Fixed: reads the buffers by name each time, so it always gets the current tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)


class PinnedMask(nn.Module):
    """Buggy: a causal linear layer whose mask is a plain tensor made on a fixed device."""

    def __init__(self, size: int = 4, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.linear = nn.Linear(size, size)
        self.mask = torch.tril(torch.ones(size, size, device=device))  # the bug: never moves

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)


class RegisteredMask(nn.Module):
    """Fixed: the mask is a non-persistent buffer, so it moves and old checkpoints still load."""

    def __init__(self, size: int = 4, device: str | torch.device | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(size, size)
        self.register_buffer("mask", torch.tril(torch.ones(size, size, device=device)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)


class UnsavedPeak(nn.Module):
    """Buggy: scales inputs by the largest magnitude seen in training, kept in a non-persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("peak", torch.ones(3), persistent=False)  # the bug: learned, not saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            torch.maximum(self.peak, x.detach().abs().amax(dim=0), out=self.peak)
        return self.linear(x / self.peak)


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
