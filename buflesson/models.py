"""Seeded demo models for the lessons: the same small model, keeping its fixed tensor three ways."""

from __future__ import annotations

import torch
from torch import nn

from buflesson.seeding import lesson_seed

SEED = 0


class PlainOffset(nn.Module):
    """A linear layer plus a fixed offset, kept as a plain tensor attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.offset = torch.tensor([10.0, -10.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.offset


class BufferOffset(nn.Module):
    """The same model with the offset registered as a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("offset", torch.tensor([10.0, -10.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.offset


def plain_offset_model(seed: int = SEED) -> PlainOffset:
    """A seeded `PlainOffset`: the offset is a plain attribute, invisible to PyTorch."""
    lesson_seed(seed)
    return PlainOffset()


def buffer_offset_model(seed: int = SEED) -> BufferOffset:
    """A seeded `BufferOffset`: the offset is a registered buffer."""
    lesson_seed(seed)
    return BufferOffset()


def sample_input(rows: int = 4, seed: int = SEED) -> torch.Tensor:
    """A seeded batch of inputs for the demo models, shape (rows, 3)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 3, generator=generator)


class Standardize(nn.Module):
    """Standardizes its input with a fixed mean and std, then applies two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = torch.tensor([0.5, -1.0, 2.0])
        self.std = torch.tensor([1.0, 2.0, 0.5])
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden((x - self.mean) / self.std)))


class PlainProjection(nn.Module):
    """A linear layer followed by a fixed projection matrix, kept as a plain attribute and used with `@`."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.projection = torch.tensor([[1.0, 0.5], [0.0, 1.0]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) @ self.projection


class PlainScale(nn.Module):
    """A linear layer whose output is scaled by a 0-dim tensor kept as a plain attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.scale = torch.tensor(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale


def plain_scale_model(seed: int = SEED) -> PlainScale:
    """A seeded `PlainScale`: its 0-dim scale is a plain attribute."""
    lesson_seed(seed)
    return PlainScale()


def standardize_model(seed: int = SEED) -> Standardize:
    """A seeded `Standardize`: its mean and std are plain attributes."""
    lesson_seed(seed)
    return Standardize()


def plain_projection_model(seed: int = SEED) -> PlainProjection:
    """A seeded `PlainProjection`: its projection matrix is a plain attribute."""
    lesson_seed(seed)
    return PlainProjection()
