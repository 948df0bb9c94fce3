"""Lesson 6 checks: 6.1 a causal mask as a non-persistent buffer, 6.2 a normalizer fitted by assignment."""

import pytest
import torch
from torch import nn

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED


def tril(length, dtype=torch.bool):
    return torch.ones(length, length, dtype=dtype).tril()


class CausalMask(nn.Module):
    def __init__(self, max_len):
        super().__init__()
        self.register_buffer("mask", tril(max_len), persistent=False)

    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(~self.mask[:length, :length], float("-inf"))


class WithNnBuffer(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.mask = nn.Buffer(tril(max_len), persistent=False)


class FloatMask(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(max_len, torch.float32), persistent=False)

    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(self.mask[:length, :length] == 0, float("-inf"))


class Persistent(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(max_len))


class Plain(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        del self.mask
        self.mask = tril(max_len)


class AsParameter(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        del self.mask
        self.mask = nn.Parameter(tril(max_len), requires_grad=False)


class UpperTriangle(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(max_len).T.contiguous(), persistent=False)


class WrongShape(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(max_len + 1), persistent=False)


class Uncut(CausalMask):
    def forward(self, scores):
        return scores.masked_fill(~self.mask, float("-inf"))


class FillsZero(CausalMask):
    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(~self.mask[:length, :length], 0.0)


class MadeInForward(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        del self.mask

    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(~tril(length), float("-inf"))


class NotYet(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        raise NotImplementedError


@pytest.mark.parametrize("answer", [CausalMask, WithNnBuffer, FloatMask])
def test_6_1_accepts_a_non_persistent_mask(answer):
    result = check("6.1", answer)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (Persistent, "'mask' is a persistent buffer", "persistent=False"),
        (Plain, "plain tensor attribute", "register_buffer('mask'"),
        (AsParameter, "is an nn.Parameter", "Fixed state belongs in a buffer"),
        (UpperTriangle, "upper triangle", ".tril(), not .triu()"),
        (WrongShape, "mask has shape (7, 7)", "from max_len"),
        (Uncut, "shorter than max_len", "self.mask[:T, :T]"),
        (FillsZero, "-inf above the diagonal", "float('-inf')"),
        (MadeInForward, "no tensor named 'mask'", "Keep the name 'mask'"),
    ],
)
def test_6_1_names_each_mistake(answer, message, hint):
    result = check("6.1", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_6_1_placeholder_and_wrong_types():
    assert check("6.1", ...).status == NOT_ATTEMPTED
    assert check("6.1", NotYet).status == NOT_ATTEMPTED
    assert check("6.1", None).status == FAILED
    assert check("6.1", tril(4)).status == FAILED


class Normalizer(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.mean = nn.Buffer(torch.zeros(features))
        self.std = nn.Buffer(torch.ones(features))

    def fit(self, x):
        self.mean = x.mean(0)
        self.std = x.std(0)
        return self

    def forward(self, x):
        return (x - self.mean) / self.std


class RegisterBuffer(Normalizer):
    def __init__(self, features):
        super().__init__(features)
        self.register_buffer("mean", torch.zeros(features))


class CopiesInPlace(Normalizer):
    def fit(self, x):
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0))


class FitsParameters(Normalizer):
    def fit(self, x):
        self.mean = nn.Parameter(x.mean(0), requires_grad=False)
        self.std = nn.Parameter(x.std(0), requires_grad=False)


class FitsNotPersistent(Normalizer):
    def fit(self, x):
        self.mean = nn.Buffer(x.mean(0), persistent=False)
        self.std = nn.Buffer(x.std(0), persistent=False)


class DeletesFirst(Normalizer):
    def fit(self, x):
        del self.mean, self.std
        self.mean = x.mean(0)
        self.std = x.std(0)


class PlainInInit(Normalizer):
    def __init__(self, features):
        super().__init__(features)
        del self.mean
        self.mean = torch.zeros(features)


class NotPersistentInInit(Normalizer):
    def __init__(self, features):
        super().__init__(features)
        self.std = nn.Buffer(torch.ones(features), persistent=False)


class PopulationStd(Normalizer):
    def fit(self, x):
        self.mean = x.mean(0)
        self.std = x.std(0, correction=0)


class StartsFitted(Normalizer):
    def __init__(self, features):
        super().__init__(features)
        self.mean = torch.ones(features)


class NoFit(Normalizer):
    fit = None


class CentresOnly(Normalizer):
    def forward(self, x):
        return x - self.mean


class NotYetNormalizer(Normalizer):
    def fit(self, x):
        raise NotImplementedError


@pytest.mark.parametrize("answer", [Normalizer, RegisterBuffer, CopiesInPlace])
def test_6_2_accepts_assignment_and_in_place_fits(answer):
    result = check("6.2", answer)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (FitsParameters, "'mean' became a parameter", "stays a buffer"),
        (FitsNotPersistent, "non-persistent buffer", "registers it anew"),
        (DeletesFirst, "'mean' is a plain attribute", "Do not delete the buffer"),
        (PlainInInit, "plain tensor attribute", "register_buffer('mean'"),
        (NotPersistentInInit, "persistent=False", "Drop persistent=False"),
        (PopulationStd, "population formula", "x.std(0)"),
        (StartsFitted, "Before fit()", "torch.zeros(features)"),
        (NoFit, "no fit() method", "def fit(self, x)"),
        (CentresOnly, "other values than (x - mean) / std", "(x - self.mean) / self.std"),
    ],
)
def test_6_2_names_each_mistake(answer, message, hint):
    result = check("6.2", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_6_2_placeholder_and_wrong_types():
    assert check("6.2", ...).status == NOT_ATTEMPTED
    assert check("6.2", NotYetNormalizer).status == NOT_ATTEMPTED
    assert check("6.2", None).status == FAILED
    assert "not the class" in check("6.2", Normalizer(3)).message


@pytest.mark.parametrize("exercise_id, answer", [("6.1", CausalMask), ("6.2", Normalizer)])
def test_6_checks_leave_the_students_random_state_alone(exercise_id, answer):
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check(exercise_id, answer)
    assert torch.equal(torch.rand(1), expected)
