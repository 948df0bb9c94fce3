"""Two versions of one model, for the checkpoint lesson: the second adds a buffer.

`SensorV1` centres its three temperature readings with a constant written in the
code (`CENTER`, 20 degrees). `SensorV2` keeps the centre as state instead: a
persistent buffer `mean`, so it can be fitted to data and saved. A checkpoint
saved by version 1 has no `mean` key, which is what lesson 07 is about.
"""

from __future__ import annotations

import torch
from torch import nn

from buflesson.seeding import lesson_seed

SEED = 0


class SensorV1(nn.Module):
    """Version 1: a linear layer on readings centred by a constant in the code."""

    CENTER = 20.0

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x - self.CENTER)


class SensorV2(nn.Module):
    """Version 2: the centre is a saved buffer, `mean`, that `fit_mean` sets from data."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("mean", torch.zeros(3))

    def fit_mean(self, readings: torch.Tensor) -> None:
        """Set `mean` to the average of `readings` (rows of three values), in place."""
        with torch.no_grad():
            self.mean.copy_(readings.mean(dim=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x - self.mean)


def sensor_v1_model(seed: int = SEED) -> SensorV1:
    """A seeded `SensorV1`, standing in for a model trained and saved before version 2 existed."""
    lesson_seed(seed)
    return SensorV1()


def sensor_readings(rows: int = 4, seed: int = SEED) -> torch.Tensor:
    """A seeded batch of temperature readings around 20 degrees, shape (rows, 3)."""
    generator = torch.Generator().manual_seed(seed)
    return 20.0 + 2.0 * torch.randn(rows, 3, generator=generator)
