"""Lesson 3 checks: 3.1 keeps mean and std as buffers, 3.2 keeps a mask the optimizer leaves alone."""

import pytest
import torch
from torch import nn

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED

MEAN, STD = [0.5, -1.0, 2.0], [1.0, 2.0, 0.5]


class Standardize(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1, bias=False)
        self.register_buffer("mean", torch.tensor(MEAN))
        self.register_buffer("std", torch.tensor(STD))

    def forward(self, x):
        return self.out(torch.relu(self.hidden((x - self.mean) / self.std)))


class WithNnBuffer(Standardize):
    def __init__(self):
        super().__init__()
        self.mean = nn.Buffer(torch.tensor(MEAN))


class Plain(Standardize):
    def __init__(self):
        super().__init__()
        del self.std
        self.std = torch.tensor(STD)


class Frozen(Standardize):
    def __init__(self):
        super().__init__()
        del self.mean
        self.mean = nn.Parameter(torch.tensor(MEAN), requires_grad=False)


class NotPersistent(Standardize):
    def __init__(self):
        super().__init__()
        self.register_buffer("std", torch.tensor(STD), persistent=False)


class InForward(Standardize):
    def __init__(self):
        super().__init__()
        del self.mean

    def forward(self, x):
        if not hasattr(self, "mean"):
            self.register_buffer("mean", torch.tensor(MEAN))
        return super().forward(x)


class Renamed(Standardize):
    def __init__(self):
        super().__init__()
        del self.std
        self.register_buffer("scale", torch.tensor(STD))


class WrongValues(Standardize):
    def __init__(self):
        super().__init__()
        self.register_buffer("std", torch.ones(3))


class NotYet(Standardize):
    def __init__(self):
        super().__init__()
        raise NotImplementedError


@pytest.mark.parametrize("answer", [Standardize, WithNnBuffer])
def test_3_1_accepts_buffers(answer):
    result = check("3.1", answer)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (Plain, "'std' is a plain tensor attribute", "register_buffer('std'"),
        (Frozen, "'mean' is an nn.Parameter", "unfreeze all"),
        (NotPersistent, "'std' is a buffer with persistent=False", "Drop persistent=False"),
        (InForward, "created inside forward", "Create it once in __init__"),
        (Renamed, "no tensor named 'std'", "Keep the name 'std'"),
        (WrongValues, "std holds [1.0, 1.0, 1.0], expected [1.0, 2.0, 0.5]", "torch.tensor([1.0, 2.0, 0.5])"),
    ],
)
def test_3_1_names_each_mistake(answer, message, hint):
    result = check("3.1", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_3_1_placeholder_and_wrong_types():
    assert check("3.1", ...).status == NOT_ATTEMPTED
    assert check("3.1", NotYet).status == NOT_ATTEMPTED
    assert check("3.1", None).status == FAILED
    assert check("3.1", nn.Linear).status == FAILED


def test_3_1_leaves_the_students_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check("3.1", Standardize)
    assert torch.equal(torch.rand(1), expected)


MASK = torch.tril(torch.ones(3, 3))


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("mask", torch.tril(torch.ones(3, 3)))

    def forward(self, x):
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)


class MaskPlain(Masked):
    def __init__(self):
        super().__init__()
        del self.mask
        self.mask = MASK.clone()


class MaskFrozen(Masked):
    def __init__(self):
        super().__init__()
        del self.mask
        self.mask = nn.Parameter(MASK.clone(), requires_grad=False)


class MaskNotPersistent(Masked):
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", MASK.clone(), persistent=False)


class MaskInForward(Masked):
    def __init__(self):
        super().__init__()
        del self.mask

    def forward(self, x):
        if not hasattr(self, "mask"):
            self.register_buffer("mask", MASK.clone())
        return super().forward(x)


class MaskRequiresGrad(Masked):
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", MASK.clone().requires_grad_())


class MaskUnused(Masked):
    def forward(self, x):
        return self.linear(x)


class MaskFrozenLayer(Masked):
    def __init__(self):
        super().__init__()
        self.linear.requires_grad_(False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        return super().forward(x) + self.bias


def test_3_2_accepts_a_mask_buffer():
    result = check("3.2", Masked)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (MaskPlain, "'mask' is a plain tensor attribute", "register_buffer('mask'"),
        (MaskFrozen, "'mask' is an nn.Parameter", "Fixed state belongs in a buffer"),
        (MaskNotPersistent, "persistent=False", "Drop persistent=False"),
        (MaskInForward, "created inside forward", "Create it once in __init__"),
        (MaskRequiresGrad, "mask requires grad", "without requires_grad=True"),
        (MaskUnused, "other values than the masked layer", "Keep the given forward"),
        (MaskFrozenLayer, "did not change linear.weight", "Keep the given layer trainable"),
    ],
)
def test_3_2_names_each_mistake(answer, message, hint):
    result = check("3.2", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_3_2_placeholder_and_wrong_types():
    assert check("3.2", ...).status == NOT_ATTEMPTED
    assert check("3.2", None).status == FAILED
    assert check("3.2", MASK).status == FAILED
