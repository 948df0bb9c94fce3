"""The recap model: one of every way a module can hold a tensor, for lesson 09's predictions.

`saved_names`, `moved_names` and `trained_names` answer lesson 09's three questions
by asking PyTorch on a fresh model, never from a list written down here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from buflesson.inventory import inventory
from buflesson.seeding import lesson_seed

SEED = 0


class Everything(nn.Module):
    """A small model that mixes every kind of tensor the lessons met."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(3)  # submodule: parameters and running-statistics buffers
        self.linear = nn.Linear(3, 2)  # submodule: parameters
        self.gain = nn.Parameter(torch.ones(2))  # parameter
        self.frozen_bias = nn.Parameter(torch.zeros(2), requires_grad=False)  # frozen parameter
        self.register_buffer("offset", torch.tensor([1.0, -1.0]))  # buffer
        self.register_buffer("window", torch.tensor([1.0, 0.5]), persistent=False)  # non-persistent buffer
        self.register_buffer("cache", None)  # None buffer: a slot, no tensor yet
        self.shift = torch.tensor([0.1, 0.2])  # plain attribute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(self.norm(x))
        return (h * self.gain + self.frozen_bias + self.offset) * self.window + self.shift


def everything_model(seed: int = SEED) -> Everything:
    """A seeded `Everything`."""
    lesson_seed(seed)
    return Everything()


def training_batch(rows: int = 8, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch (inputs of shape (rows, 3), targets of shape (rows, 2)) for one training step."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 3, generator=generator), torch.randn(rows, 2, generator=generator)


def training_step(model: nn.Module, lr: float = 0.1) -> dict[str, bool]:
    """One SGD step in train() mode on `training_batch()`; return, per named tensor, whether
    `optimizer.step()` changed it.

    The snapshot is taken after the forward and backward passes, just before the
    step, so a buffer that the forward pass updates (BatchNorm's running
    statistics) is not counted as changed by the step.
    """
    inputs, targets = training_batch()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    optimizer.zero_grad()
    loss = (model(inputs) - targets).pow(2).mean()
    loss.backward()
    before = _named_tensors(model)
    snapshot = {name: tensor.detach().clone() for name, tensor in before.items()}
    optimizer.step()
    after = _named_tensors(model)
    return {
        name: name not in after or not torch.equal(after[name].detach(), snapshot[name]) for name in snapshot
    }


def _named_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {row.name: row.tensor for row in inventory(model) if row.tensor is not None}


def _fresh(build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        return build()


def saved_names(build: Callable[[], nn.Module] = everything_model) -> set[str]:
    """What PyTorch saves: the keys of `state_dict()` of a model from `build()`."""
    return set(_fresh(build).state_dict())


def moved_names(build: Callable[[], nn.Module] = everything_model) -> set[str]:
    """What PyTorch moves: the tensors on the meta device after `model.to('meta')`."""
    model = _fresh(build).to("meta")
    return {row.name for row in inventory(model) if row.device == "meta"}


def trained_names(build: Callable[[], nn.Module] = everything_model) -> set[str]:
    """What PyTorch trains: the tensors whose values `optimizer.step()` changes in `training_step`."""
    with torch.random.fork_rng(devices=[]):
        changed = training_step(build())
    return {name for name, did in changed.items() if did}
