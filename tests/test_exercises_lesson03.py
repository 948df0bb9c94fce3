"""Lesson 3 checks: 3.1 keeps mean and std as buffers, 3.2 keeps a mask the optimizer leaves alone."""

import torch
from torch import nn

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests

MEAN, STD = [0.5, -1.0, 2.0], [1.0, 2.0, 0.5]
SHARED_MEAN = torch.tensor(MEAN)


class Standardize(nn.Module):  # the answer notebook's answer
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1, bias=False)
        self.register_buffer("mean", torch.tensor(MEAN))
        self.register_buffer("std", torch.tensor(STD))

    def forward(self, x):
        return self.out(torch.relu(self.hidden((x - self.mean) / self.std)))


class KeepsTheInput(Standardize):  # forward stores the standardized input on the model
    def forward(self, x):
        self.last = (x - self.mean) / self.std
        return self.out(torch.relu(self.hidden(self.last)))


class DetachesTheOutput(Standardize):  # the output leaves the graph: the layers are never trained
    def forward(self, x):
        return super().forward(x).detach()


class WithNnBuffer(Standardize):
    def __init__(self):
        super().__init__()
        self.mean = nn.Buffer(torch.tensor(MEAN))
        self.std = nn.Buffer(torch.tensor(STD))


class BuffersFirst(nn.Module):  # buffers registered before the layers, from other constructors
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(MEAN, dtype=torch.float32))
        self.register_buffer("std", torch.tensor([2.0, 4.0, 1.0]) / 2)
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1, bias=False)

    def forward(self, x):
        return self.out(torch.relu(self.hidden((x - self.mean) / self.std)))


class WithExtras(Standardize):  # extra harmless code: a name, a helper, a note
    def __init__(self):
        super().__init__()
        self.note = "standardizes with fixed statistics"

    def standardized(self, x):
        return (x - self.mean) / self.std

    def forward(self, x):
        return self.out(torch.relu(self.hidden(self.standardized(x))))


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


class FourRowsOnly(Standardize):  # works for the lesson's batch of 4 rows only
    def forward(self, x):
        return self.out(torch.relu(self.hidden((x.reshape(4, 3) - self.mean) / self.std)))


class Float64Buffers(Standardize):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN, dtype=torch.float64))
        self.register_buffer("std", torch.tensor(STD, dtype=torch.float64))


class SharedTensor(Standardize):  # every model holds the same tensor object
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", SHARED_MEAN)


class SwitchesGradOff(Standardize):
    def __init__(self):
        super().__init__()
        torch.set_grad_enabled(False)


class NotYet(Standardize):
    def __init__(self):
        super().__init__()
        raise NotImplementedError


MASK = torch.tril(torch.ones(3, 3))


class Masked(nn.Module):  # the answer notebook's answer
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("mask", torch.tril(torch.ones(3, 3)))

    def forward(self, x):
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)


class BoolMask(Masked):
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.ones(3, 3, dtype=torch.bool).tril())


class MaskNnBuffer(Masked):
    def __init__(self):
        super().__init__()
        self.mask = nn.Buffer(torch.ones_like(self.linear.weight).tril())


class MaskLoop(Masked):  # the same mask, built element by element
    def __init__(self):
        super().__init__()
        mask = torch.zeros(3, 3)
        for i in range(3):
            for j in range(i + 1):
                mask[i, j] = 1.0
        self.register_buffer("mask", mask)


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


class MaskUpper(Masked):
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.triu(torch.ones(3, 3)))


class MaskFrozenLayer(Masked):
    def __init__(self):
        super().__init__()
        self.linear.requires_grad_(False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        return super().forward(x) + self.bias


class NoneThenAssigned(Standardize):  # None buffers first; assigning a tensor to the name keeps it a buffer
    def __init__(self):
        nn.Module.__init__(self)
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1, bias=False)
        self.register_buffer("mean", None)
        self.register_buffer("std", None)
        self.mean = torch.tensor(MEAN)
        self.std = torch.tensor([1.0, 4.0, 0.25]).sqrt()


class BuffersRequireGrad(Standardize):  # buffers whose tensors require grad
    def __init__(self):
        super().__init__()
        self.mean = nn.Buffer(torch.tensor(MEAN, requires_grad=True))
        self.std = nn.Buffer(torch.tensor(STD, requires_grad=True))


class IntegerMask(Masked):  # an int64 mask: weight * mask is still float
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.ones(3, 3, dtype=torch.long).tril())


class Float64Mask(Masked):
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.tril(torch.ones(3, 3, dtype=torch.float64)))


class BuiltInFloat64(Standardize):  # the default dtype switched while the layers are built, then back
    def __init__(self):
        torch.set_default_dtype(torch.float64)
        try:
            super().__init__()
        finally:
            torch.set_default_dtype(torch.float32)


class MaskBuiltInFloat64(Masked):
    def __init__(self):
        torch.set_default_dtype(torch.float64)
        try:
            super().__init__()
        finally:
            torch.set_default_dtype(torch.float32)


class MaskFromTheWeight(Masked):  # new_ones of the weight: a float32 tensor that does not require grad
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", self.linear.weight.new_ones(3, 3).tril())


RIGHT = {
    "3.1": [Standardize, WithNnBuffer, BuffersFirst, WithExtras, NoneThenAssigned],
    "3.2": [Masked, BoolMask, MaskNnBuffer, MaskLoop, IntegerMask, MaskFromTheWeight],
}

WRONG = {
    "3.1": [
        Wrong(KeepsTheInput, "holds tensors it did not hold before: last", "store nothing on self"),
        Wrong(DetachesTheOutput, "does not require grad", "no torch.no_grad(), .detach()"),
        Wrong(Plain, "'std' is a plain tensor attribute", "register_buffer('std'"),
        Wrong(Frozen, "'mean' is an nn.Parameter", "unfreeze all"),
        Wrong(NotPersistent, "'std' is a buffer with persistent=False", "as a persistent buffer"),
        Wrong(InForward, "created inside forward", "Create it once in __init__"),
        Wrong(Renamed, "no tensor named 'std'", "Keep the name 'std'"),
        Wrong(WrongValues, "std starts as [1.0, 1.0, 1.0]", "torch.tensor([1.0, 2.0, 0.5])"),
        Wrong(FourRowsOnly, "forward raised RuntimeError", "Run that step yourself"),
        Wrong(Float64Buffers, "mean is torch.float64", "torch.tensor([...]) of Python floats gives float32"),
        Wrong(BuiltInFloat64, "hidden.weight is torch.float64", "torch.set_default_dtype included"),
        Wrong(BuffersRequireGrad, "mean requires grad", "without requires_grad=True"),
        Wrong(SharedTensor, "hold the same mean tensor", "not a tensor made once outside the"),
        Wrong(SwitchesGradOff, "changed gradient tracking", "torch.no_grad()"),
        Wrong(Standardize(), "not the class", "check(..., Standardize)"),
    ],
    "3.2": [
        Wrong(MaskPlain, "'mask' is a plain tensor attribute", "register_buffer('mask'"),
        Wrong(MaskFrozen, "'mask' is an nn.Parameter", "Fixed state belongs in a buffer"),
        Wrong(MaskNotPersistent, "persistent=False", "as a persistent buffer"),
        Wrong(MaskInForward, "created inside forward", "Create it once in __init__"),
        Wrong(MaskRequiresGrad, "mask requires grad", "without requires_grad=True"),
        Wrong(MaskUnused, "other values than the masked layer", "Keep the given forward"),
        Wrong(MaskBuiltInFloat64, "linear.weight is torch.float64", "torch.set_default_dtype included"),
        Wrong(Float64Mask, "mask is torch.float64", "torch.tril(torch.ones(3, 3)) gives float32"),
        Wrong(MaskUpper, "mask starts as", "torch.tril(torch.ones(3, 3))"),
        Wrong(MaskFrozenLayer, "did not change linear.weight", "Keep the given layer trainable"),
        Wrong(MASK, "Expected the class MaskedLinear", "Pass the class"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


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


def test_3_2_placeholder():
    assert check("3.2", ...).status == NOT_ATTEMPTED
