"""Lesson 8 checks: 8.1 stale statistics, 8.2 a mask pinned to a device, 8.3 an unsaved running peak."""

import pytest
import torch
from torch import nn

from buflesson import FreshStats, PinnedMask, RegisteredMask, SavedPeak, StaleStats, UnsavedPeak, check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED


class StatsInDict(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))
        self.stats = {"mean": self.mean, "std": self.std}

    def forward(self, x):
        return self.linear((x - self.stats["mean"]) / self.stats["std"])


class StatsPlain(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.mean = torch.zeros(3)
        self.std = torch.ones(3)

    def forward(self, x):
        return self.linear((x - self.mean) / self.std)


class StatsCopied(FreshStats):
    """Reads copies made in __init__: the audit finds plain tensors."""

    def __init__(self):
        super().__init__()
        self.cached = (self.mean.clone(), self.std.clone())

    def forward(self, x):
        mean, std = self.cached
        return self.linear((x - mean) / std)


class StatsWrongFormula(FreshStats):
    def forward(self, x):
        return self.linear(x - self.mean)


class StatsThroughCpuMatmul(FreshStats):
    """Reads the buffers by name, then multiplies by a matrix made on the CPU in forward."""

    def forward(self, x):
        return self.linear(((x - self.mean) / self.std) @ torch.eye(3, dtype=x.dtype))


class StatsNotYet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        raise NotImplementedError


def test_8_1_right_answer_passes():
    result = check("8.1", FreshStats)
    assert result.status == PASSED, str(result)


def test_8_1_a_cpu_tensor_in_a_matrix_product_fails_on_the_device():
    # Plain meta lets a CPU matrix through `@`; a GPU, and buflesson's stand-in, refuse it.
    result = check("8.1", StatsThroughCpuMatmul)
    assert result.status == FAILED
    assert (
        "forward raised" in result.message
        and "Expected all tensors to be on the same device" in result.message
    )


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (StaleStats, "audit finds a stale reference in stats[0]", "read self.mean"),
        (StatsInDict, "stale reference in stats['mean']", "Keep the name, not the tensor"),
        (StatsPlain, "'mean' is a plain tensor attribute", "register_buffer('mean'"),
        (StatsCopied, "audit finds a plain tensor in cached[0]", "register_buffer"),
        (StatsWrongFormula, "does not compute linear((x - mean) / std)", "read self.mean and self.std"),
        (FreshStats(), "Got a model instance", "without calling it"),
    ],
)
def test_8_1_names_each_mistake(answer, message, hint):
    result = check("8.1", answer)
    assert result.status == FAILED
    assert message in result.message, result.message
    assert hint in result.hint


class MaskPersistent(RegisteredMask):
    def __init__(self, size=4):
        super().__init__(size)
        self.register_buffer("mask", self.mask.clone())


class MaskParameter(RegisteredMask):
    def __init__(self, size=4):
        super().__init__(size)
        del self.mask
        self.mask = nn.Parameter(torch.tril(torch.ones(size, size)), requires_grad=False)


class MaskUpper(RegisteredMask):
    def __init__(self, size=4):
        super().__init__(size)
        self.mask.copy_(torch.triu(torch.ones(size, size)))


def test_8_2_right_answer_passes():
    result = check("8.2", RegisteredMask)
    assert result.status == PASSED, str(result)


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (PinnedMask, "'mask' is a plain tensor attribute", "register_buffer('mask'"),
        (MaskPersistent, "'mask' is a persistent buffer", "persistent=False"),
        (MaskParameter, "'mask' is an nn.Parameter", "register_buffer('mask'"),
        (MaskUpper, "computes something else than PinnedMask", "torch.tril"),
    ],
)
def test_8_2_names_each_mistake(answer, message, hint):
    result = check("8.2", answer)
    assert result.status == FAILED
    assert message in result.message, result.message
    assert hint in result.hint


class PeakNeverUpdated(SavedPeak):
    def forward(self, x):
        return self.linear(x / self.peak)


class PeakPlain(SavedPeak):
    def __init__(self):
        super().__init__()
        del self.peak
        self.peak = torch.ones(3)


class PeakReRegistered(UnsavedPeak):
    """The lesson's answer: register peak again, persistent this time."""

    def __init__(self):
        super().__init__()
        self.register_buffer("peak", torch.ones(3))


@pytest.mark.parametrize("answer", [SavedPeak, PeakReRegistered])
def test_8_3_right_answers_pass(answer):
    result = check("8.3", answer)
    assert result.status == PASSED, str(result)


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (UnsavedPeak, "'peak' is a buffer with persistent=False", "Drop persistent=False"),
        (PeakPlain, "'peak' is a plain tensor attribute", "register_buffer('peak'"),
        (PeakNeverUpdated, "peak did not change", "Keep the given forward"),
    ],
)
def test_8_3_names_each_mistake(answer, message, hint):
    result = check("8.3", answer)
    assert result.status == FAILED
    assert message in result.message, result.message
    assert hint in result.hint


@pytest.mark.parametrize("exercise_id", ["8.1", "8.2", "8.3"])
def test_placeholder_none_and_unwritten_body(exercise_id):
    assert check(exercise_id, ...).status == NOT_ATTEMPTED
    assert check(exercise_id, StatsNotYet).status == NOT_ATTEMPTED
    assert check(exercise_id, None).status == FAILED


def test_checks_leave_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for exercise_id, answer in [("8.1", FreshStats), ("8.2", RegisteredMask), ("8.3", SavedPeak)]:
        assert check(exercise_id, answer).status == PASSED
    assert torch.equal(torch.rand(3), expected)
