"""Lesson 6 checks: 6.1 a causal mask as a non-persistent buffer, 6.2 a normalizer fitted into its buffers."""

import torch
from torch import nn

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests


def tril(length, dtype=torch.bool):
    return torch.ones(length, length, dtype=dtype).tril()


# --- 6.1 right answers -------------------------------------------------------------------------


class CausalMask(nn.Module):  # the answer notebook's answer
    def __init__(self, max_len):
        super().__init__()
        allowed = torch.ones(max_len, max_len, dtype=torch.bool).tril()
        self.register_buffer("mask", allowed, persistent=False)

    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(~self.mask[:length, :length], float("-inf"))


class WithNnBuffer(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.mask = nn.Buffer(torch.tril(torch.ones(max_len, max_len)).bool(), persistent=False)


class FloatMask(CausalMask):  # a float mask, and a forward that tests it against 0
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(max_len, torch.float32), persistent=False)

    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(self.mask[:length, :length] == 0, float("-inf"))


class FromIndices(nn.Module):  # built from positions, with a harmless extra attribute
    def __init__(self, max_len):
        super().__init__()
        self.max_len = max_len
        positions = torch.arange(max_len)
        self.register_buffer("mask", positions[None, :] <= positions[:, None], persistent=False)

    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(~self.mask[:length, :length], float("-inf"))


class WithWhere(nn.Module):  # torch.where instead of masked_fill
    def __init__(self, max_len):
        super().__init__()
        self.register_buffer(
            "mask", torch.tril(torch.ones(max_len, max_len, dtype=torch.bool)), persistent=False
        )

    def forward(self, scores):
        length = scores.size(-1)
        return torch.where(self.mask[:length, :length], scores, float("-inf"))


# --- 6.1 wrong answers -------------------------------------------------------------------------


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


class NoneMask(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", None, persistent=False)


class UpperTriangle(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(max_len).T.contiguous(), persistent=False)


class HidesPositions(CausalMask):  # True where hidden: the given forward then hides the past
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", torch.ones(max_len, max_len, dtype=torch.bool).triu(1), persistent=False)


class NoDiagonal(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer(
            "mask", torch.ones(max_len, max_len, dtype=torch.bool).tril(-1), persistent=False
        )


class SixPositions(CausalMask):  # the size hard-coded
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(6), persistent=False)


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


class FloatMaskGivenForward(CausalMask):  # a float mask with the given ~mask
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", tril(max_len, torch.float32), persistent=False)


class CpuCopyInForward(CausalMask):  # forward uses a copy that .to() does not move
    def __init__(self, max_len):
        super().__init__(max_len)
        self.allowed = tril(max_len)

    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(~self.allowed[:length, :length], float("-inf"))


class AdditiveMadeOnCpu(CausalMask):  # an additive mask made in forward, on the CPU
    def forward(self, scores):
        length = scores.size(-1)
        return scores + torch.zeros(length, length).masked_fill(
            ~self.mask[:length, :length].cpu(), float("-inf")
        )


class NotYet(CausalMask):
    def __init__(self, max_len):
        super().__init__(max_len)
        raise NotImplementedError


# --- 6.2 right answers -------------------------------------------------------------------------


class Normalizer(nn.Module):  # the answer notebook's answer
    def __init__(self, features):
        super().__init__()
        self.mean = nn.Buffer(torch.zeros(features))
        self.std = nn.Buffer(torch.ones(features))

    def fit(self, x):
        self.mean = x.mean(0).to(self.mean)
        self.std = x.std(0).to(self.std)

    def forward(self, x):
        return (x - self.mean) / self.std


class CopiesInPlace(Normalizer):  # register_buffer, and copy_ under no_grad
    def __init__(self, features):
        nn.Module.__init__(self)
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    @torch.no_grad()
    def fit(self, x):
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0))
        return self


class ReRegisters(Normalizer):  # nn.Buffer again, made like the old buffer
    def fit(self, x):
        self.mean = nn.Buffer(x.mean(0).to(device=self.mean.device, dtype=self.mean.dtype))
        self.std = nn.Buffer(x.std(0, correction=1).to(device=self.std.device, dtype=self.std.dtype))


class SetsData(Normalizer):  # .data of the buffer, converted first
    def fit(self, x):
        x = x.to(self.mean)
        self.mean.data.copy_(x.mean(0))
        self.std.data.copy_(torch.sqrt(((x - x.mean(0)) ** 2).sum(0) / (x.shape[0] - 1)))
        return self


class TypeAs(Normalizer):  # type_as, and the std from the variance
    def fit(self, x):
        self.mean = x.mean(0).type_as(self.mean)
        self.std = x.var(0).sqrt().type_as(self.std)


# --- 6.1 and 6.2: mistakes found by students ----------------------------------------------------

TABLE = torch.ones(32, 32, dtype=torch.bool).tril()
SHARED = {}


class CutFromTable(CausalMask):  # a mask cut from a table of a fixed size
    def __init__(self, max_len):
        super().__init__(max_len)
        self.register_buffer("mask", TABLE[:max_len, :max_len], persistent=False)


class SharedMask(CausalMask):  # every model of one size holds the same tensor
    def __init__(self, max_len):
        super().__init__(max_len)
        if max_len not in SHARED:
            SHARED[max_len] = torch.ones(max_len, max_len, dtype=torch.bool).tril()
        self.register_buffer("mask", SHARED[max_len], persistent=False)


class CachesOutput(CausalMask):  # the output of the first input of each shape, kept
    def forward(self, scores):
        cache = self.__dict__.setdefault("cache", {})
        if scores.shape not in cache:
            cache[scores.shape] = super().forward(scores)
        return cache[scores.shape]


class MasksInPlace(CausalMask):  # changes the caller's scores
    def forward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill_(~self.mask[:length, :length], float("-inf"))


class SeedsInInit(CausalMask):
    def __init__(self, max_len):
        torch.manual_seed(0)
        super().__init__(max_len)


class FloatDefaultInInit(CausalMask):  # leaves the default dtype float64
    def __init__(self, max_len):
        torch.set_default_dtype(torch.float64)
        super().__init__(max_len)


class CheckedMask(CausalMask):  # extra harmless code: a shape check in forward
    def forward(self, scores):
        assert scores.shape[-1] == scores.shape[-2] <= self.mask.shape[0]
        return super().forward(scores)


class Foward(nn.Module):  # forward misspelt: model(x) finds no forward
    def __init__(self, max_len):
        super().__init__()
        self.register_buffer("mask", torch.ones(max_len, max_len, dtype=torch.bool).tril(), persistent=False)

    def foward(self, scores):
        length = scores.shape[-1]
        return scores.masked_fill(~self.mask[:length, :length], float("-inf"))


class AliasedMask(CausalMask):  # registered as 'causal'; self.mask a plain second name for it
    def __init__(self, max_len):
        nn.Module.__init__(self)
        self.register_buffer(
            "causal", torch.ones(max_len, max_len, dtype=torch.bool).tril(), persistent=False
        )
        self.mask = self.causal


class FitsInHalf(Normalizer):  # the statistics go through float16
    def fit(self, x):
        self.mean = x.mean(0).half().to(self.mean)
        self.std = x.std(0).half().to(self.std)


class FirstFitOnly(Normalizer):
    def __init__(self, features):
        super().__init__(features)
        self.fitted = False

    def fit(self, x):
        if not self.fitted:
            self.fitted = True
            super().fit(x)


class StdPlusEps(Normalizer):
    def fit(self, x):
        self.mean = x.mean(0).to(self.mean)
        self.std = (x.std(0) + 1e-5).to(self.std)


DEFAULTS = {}


class SharedDefaults(Normalizer):  # every model of one size starts with the same two tensors
    def __init__(self, features):
        nn.Module.__init__(self)
        if features not in DEFAULTS:
            DEFAULTS[features] = (torch.zeros(features), torch.ones(features))
        self.register_buffer("mean", DEFAULTS[features][0])
        self.register_buffer("std", DEFAULTS[features][1])


class SeedsInFit(Normalizer):
    def fit(self, x):
        torch.manual_seed(1234)
        super().fit(x)


class GradOffInFit(Normalizer):
    def fit(self, x):
        torch.set_grad_enabled(False)
        super().fit(x)


class NormalizesInPlace(Normalizer):
    def forward(self, x):
        return x.sub_(self.mean).div_(self.std)


class FitsWithChunks(Normalizer):  # right: the same statistics, computed another way
    def fit(self, x):
        with torch.no_grad():
            mean = sum(x.unbind(0)) / x.shape[0]
            self.mean.copy_(mean)
            self.std.copy_(x.std(0))


# --- 6.2 wrong answers -------------------------------------------------------------------------


class AssignsData(Normalizer):  # the old answer: the buffer takes the data's dtype and device
    def fit(self, x):
        self.mean = x.mean(0)
        self.std = x.std(0)


class AssignsDataDtypeOnly(Normalizer):
    def fit(self, x):
        self.mean = x.mean(0).to(self.mean.dtype)
        self.std = x.std(0).to(self.std.dtype)


class ReplacesData(Normalizer):  # .data = ... replaces the tensor's storage, dtype included
    def fit(self, x):
        self.mean.data = x.mean(0)
        self.std.data = x.std(0)


class FitsParameters(Normalizer):
    def fit(self, x):
        self.mean = nn.Parameter(x.mean(0).to(self.mean), requires_grad=False)
        self.std = nn.Parameter(x.std(0).to(self.std), requires_grad=False)


class FitsNotPersistent(Normalizer):
    def fit(self, x):
        self.mean = nn.Buffer(x.mean(0).to(self.mean), persistent=False)
        self.std = nn.Buffer(x.std(0).to(self.std), persistent=False)


class DeletesFirst(Normalizer):
    def fit(self, x):
        mean, std = x.mean(0).to(self.mean), x.std(0).to(self.std)
        del self.mean, self.std
        self.mean = mean
        self.std = std


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
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0, correction=0))


class FitsMeanOnly(Normalizer):
    def fit(self, x):
        self.mean.copy_(x.mean(0))


class OverAll(Normalizer):
    def fit(self, x):
        self.mean.fill_(x.mean().item())
        self.std.copy_(x.std(0))


class StartsFitted(Normalizer):
    def __init__(self, features):
        super().__init__(features)
        self.mean = torch.ones(features)


class ColumnStats(Normalizer):  # shape (1, features): the right count, an extra dimension
    def __init__(self, features):
        super().__init__(features)
        self.mean = nn.Buffer(torch.zeros(1, features))
        self.std = nn.Buffer(torch.ones(1, features))


class ThreeFeatures(Normalizer):  # the size hard-coded
    def __init__(self, features):
        super().__init__(features)
        self.mean = nn.Buffer(torch.zeros(3))
        self.std = nn.Buffer(torch.ones(3))


class NoFit(Normalizer):
    fit = None


class CentresOnly(Normalizer):
    def forward(self, x):
        return x - self.mean


class NotYetNormalizer(Normalizer):
    def fit(self, x):
        raise NotImplementedError


RIGHT = {
    "6.1": [CausalMask, WithNnBuffer, FloatMask, FromIndices, WithWhere, CheckedMask],
    "6.2": [Normalizer, CopiesInPlace, ReRegisters, SetsData, TypeAs, FitsWithChunks],
}

WRONG = {
    "6.1": [
        Wrong(Persistent, "'mask' is a persistent buffer", "persistent=False"),
        Wrong(Plain, "'mask' is a plain tensor attribute", "persistent=False"),
        Wrong(AsParameter, "'mask' is an nn.Parameter", "persistent=False"),
        Wrong(NoneMask, "holds None", "Register the tensor itself"),
        Wrong(UpperTriangle, "True on and above the diagonal", ".tril(), not .triu()"),
        Wrong(HidesPositions, "on the positions to hide", "True on and below the diagonal"),
        Wrong(NoDiagonal, "not True exactly on and below the diagonal", "the diagonal is included"),
        Wrong(SixPositions, "mask has shape (6, 6)", "never a fixed size"),
        Wrong(Uncut, "shorter than max_len", "self.mask[:T, :T]"),
        Wrong(FillsZero, "puts 0 above the diagonal", "float('-inf')"),
        Wrong(MadeInForward, "no tensor named 'mask'", "Keep the name 'mask'"),
        Wrong(FloatMaskGivenForward, "mask is torch.float32", "dtype=torch.bool"),
        Wrong(CpuCopyInForward, "), forward raised", "did not move with the model"),
        Wrong(AdditiveMadeOnCpu, "), forward raised", ""),  # the error and hint depend on the device
        Wrong(tril(4), "Expected the class CausalMask", "Pass the class"),
        Wrong(CutFromTable, "hold the same mask tensor", "Make a new tensor"),
        Wrong(SharedMask, "Two models built from your class hold the same mask", "Make a new tensor"),
        Wrong(CachesOutput, "same result for two inputs of the same shape", "keep nothing from one call"),
        Wrong(MasksInPlace, "changed a tensor it was given, in place", "not an in-place change"),
        Wrong(SeedsInInit, "changed torch's random seed", "leave torch's seed alone"),
        Wrong(Foward, "the model has no forward method", "Name the method exactly forward"),
        Wrong(AliasedMask, "points at the tensor registered as 'causal'", "under the name 'mask' itself"),
        Wrong(FloatDefaultInInit, "changed the default dtype", "leave global settings as you found them"),
    ],
    "6.2": [
        Wrong(
            AssignsData,
            "After model.double(), fit(x) on float32 CPU data left mean as torch.float32",
            "copy_",
        ),
        Wrong(
            AssignsDataDtypeOnly,
            "fit(x) on float32 CPU data left mean on cpu",
            "copy_",
        ),
        Wrong(ReplacesData, "left mean as torch.float32", ".to(self.mean)"),
        Wrong(FitsParameters, "'mean' is a parameter", "stays a buffer"),
        Wrong(FitsNotPersistent, "non-persistent buffer", "registers the buffer anew"),
        Wrong(DeletesFirst, "'mean' is a plain attribute", "Do not delete the buffer"),
        Wrong(PlainInInit, "'mean' is a plain tensor attribute", "register_buffer('mean'"),
        Wrong(NotPersistentInInit, "'std' is a buffer with persistent=False", "as a persistent buffer"),
        Wrong(PopulationStd, "population formula", "x.std(0)"),
        Wrong(FitsMeanOnly, "fit() left std as it was", "self.std.copy_(x.std(0))"),
        Wrong(OverAll, "mean is [", "one value per feature: x.mean(0)"),
        Wrong(StartsFitted, "Before fit(), mean is [1.0", "nn.Buffer(torch.zeros(features))"),
        Wrong(ThreeFeatures, "mean has shape (3,)", "never a fixed size"),
        Wrong(ColumnStats, "mean has shape (1, ", "Keep one dimension: torch.zeros(features)"),
        Wrong(NoFit, "no fit() method", "def fit(self, x)"),
        Wrong(CentresOnly, "other values than (x - mean) / std", "(x - self.mean) / self.std"),
        Wrong(Normalizer(3), "not the class", "check(..., Normalizer)"),
        Wrong(FirstFitOnly, "A second fit() on other data left mean and std", "every time it is called"),
        Wrong(StdPlusEps, "After fit(), std is [", "x.std(0)"),
        Wrong(FitsInHalf, "holds x.mean(0) rounded to torch.float16", "Keep full precision"),
        Wrong(SharedDefaults, "Two models built from your class hold the same mean", "Make a new tensor"),
        Wrong(SeedsInFit, "changed torch's random seed", "leave torch's seed alone"),
        Wrong(GradOffInFit, "changed gradient tracking", "torch.no_grad()"),
        Wrong(NormalizesInPlace, "changed a tensor it was given, in place", "not an in-place change"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


def test_no_message_shows_a_placeholder_or_a_handle():
    for exercise_id, cases in WRONG.items():
        for case in cases:
            result = check(exercise_id, case.answer)
            for text in (result.message, result.hint):
                assert "Ellipsis" not in text and "<Remote" not in text, (case, text)


def test_6_1_placeholder_and_wrong_types():
    assert check("6.1", ...).status == NOT_ATTEMPTED
    assert check("6.1", NotYet).status == NOT_ATTEMPTED
    assert check("6.1", None).status == FAILED


def test_6_2_placeholder_and_unwritten_fit():
    assert check("6.2", ...).status == NOT_ATTEMPTED
    assert check("6.2", NotYetNormalizer).status == NOT_ATTEMPTED
    assert check("6.2", None).status == FAILED


def test_6_checks_leave_the_students_random_state_alone():
    for exercise_id, answer in (("6.1", CausalMask), ("6.2", Normalizer)):
        torch.manual_seed(123)
        expected = torch.rand(1)
        torch.manual_seed(123)
        check(exercise_id, answer)
        assert torch.equal(torch.rand(1), expected), exercise_id
