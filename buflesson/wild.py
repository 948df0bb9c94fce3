"""Bugs from the wild: small reproductions of state mistakes reported in public issue trackers.

Only the buggy models live here; their fixes are lesson 8's exercises (8.1 to 8.3), whose answers
are in the answer notebook and the tests, never in the package:

- `StaleStats`: a list that keeps references to buffers goes stale after a conversion that
  replaces them (`.to()` to another device, `.double()`).
- `PinnedMask`: a tensor made in `__init__` as a plain attribute, on a fixed device, stays there
  when the model moves.
- `UnsavedPeak`: a buffer that the model updates while it trains, registered with
  `persistent=False`, so checkpoints lose it.
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


class PinnedMask(nn.Module):
    """Buggy: a causal linear layer whose mask is a plain tensor made on a fixed device."""

    def __init__(self, size: int = 4, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.linear = nn.Linear(size, size)
        self.mask = torch.tril(torch.ones(size, size, device=device))  # the bug: never moves

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
