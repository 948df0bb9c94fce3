"""Lesson 8 checks: 8.1 stale statistics, 8.2 a mask pinned to a device, 8.3 an unsaved running peak."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from buflesson import PinnedMask, StaleStats, UnsavedPeak, check
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests
from wild_fixed import SavedPeak

DEVICE_MESSAGE = "Expected all tensors to be on the same device"


# --- 8.1 ---------------------------------------------------------------------------------------


class NormalizedLinear(nn.Module):  # the answer notebook's answer
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("std", torch.ones(3))

    def forward(self, x):
        return self.linear((x - self.mean) / self.std)


class StatsNnBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.mean = nn.Buffer(torch.zeros(3))
        self.std = nn.Buffer(torch.ones(3))

    def forward(self, x):
        return self.linear((x - self.mean) / self.std)


class StatsFirstOtherFormula(nn.Module):  # buffers first, other constructors, an equivalent formula
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(3, dtype=torch.float32))
        self.register_buffer("std", torch.full((3,), 1.0))
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        return F.linear((x - self.mean) * self.std.reciprocal(), self.linear.weight, self.linear.bias)


class StatsByGetBuffer(NormalizedLinear):  # reads the buffers by name through the module's API
    def forward(self, x):
        return self.linear((x - self.get_buffer("mean")) / self._buffers["std"])


class StatsProperty(NormalizedLinear):  # a property that reads the buffers by name at each call
    @property
    def stats(self):
        return self.mean, self.std

    def forward(self, x):
        mean, std = self.stats
        return self.linear((x - mean) / std)


class StatsWithExtras(NormalizedLinear):  # extra harmless code: a helper, a note, an unused number
    def __init__(self):
        super().__init__()
        self.note = "normalizes with saved statistics"
        self.eps = 0.0

    def normalize(self, x):
        return (x - self.mean) / (self.std + self.eps)

    def forward(self, x):
        return self.linear(self.normalize(x))


class StatsInDict(NormalizedLinear):
    def __init__(self):
        super().__init__()
        self.stats = {"mean": self.mean, "std": self.std}

    def forward(self, x):
        return self.linear((x - self.stats["mean"]) / self.stats["std"])


class StatsCachedOnFirstCall(NormalizedLinear):  # the bug of lesson 8, made at the first forward
    def forward(self, x):
        if not hasattr(self, "stats"):
            self.stats = (self.mean, self.std)
        mean, std = self.stats
        return self.linear((x - mean) / std)


class StatsInverseCached(NormalizedLinear):  # 1 / std computed at the first forward, kept
    def forward(self, x):
        if "inverse" not in self.__dict__:
            self.inverse = 1 / self.std
        return self.linear((x - self.mean) * self.inverse)


class StatsDetached(NormalizedLinear):  # the output cut from the graph: the layer is never trained
    def forward(self, x):
        with torch.no_grad():
            return super().forward(x)


class StatsInPlaceOnInput(NormalizedLinear):  # changes the caller's x
    def forward(self, x):
        return self.linear(x.sub_(self.mean).div_(self.std))


MEAN, STD = torch.zeros(3), torch.ones(3)


class StatsShared(NormalizedLinear):  # every model registers the same two tensors
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", MEAN)
        self.register_buffer("std", STD)


class StatsPlain(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.mean = torch.zeros(3)
        self.std = torch.ones(3)

    def forward(self, x):
        return self.linear((x - self.mean) / self.std)


class StatsCopied(NormalizedLinear):  # reads copies made in __init__
    def __init__(self):
        super().__init__()
        self.cached = (self.mean.clone(), self.std.clone())

    def forward(self, x):
        mean, std = self.cached
        return self.linear((x - mean) / std)


class StatsIgnored(NormalizedLinear):
    def forward(self, x):
        return self.linear(x)


class StatsNoStd(NormalizedLinear):
    def forward(self, x):
        return self.linear(x - self.mean)


class StatsTimesStd(NormalizedLinear):
    def forward(self, x):
        return self.linear((x - self.mean) * self.std)


class StatsThroughCpuMatmul(NormalizedLinear):  # reads the buffers by name, then a CPU matrix in `@`
    def forward(self, x):
        return self.linear(((x - self.mean) / self.std) @ torch.eye(3, dtype=x.dtype))


class StatsPlainMatrix(NormalizedLinear):  # a plain CPU matrix kept in __init__, used in `@`
    def __init__(self):
        super().__init__()
        self.rotation = torch.eye(3)

    def forward(self, x):
        return self.linear(((x - self.mean) / self.std) @ self.rotation.to(x.dtype))


class StdZeros(NormalizedLinear):
    def __init__(self):
        super().__init__()
        self.register_buffer("std", torch.zeros(3))


class MeanOnes(NormalizedLinear):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.ones(3))


class StatsFloat64(NormalizedLinear):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(3, dtype=torch.float64))


class StatsNotPersistent(NormalizedLinear):
    def __init__(self):
        super().__init__()
        self.register_buffer("std", torch.ones(3), persistent=False)


class StatsParameter(NormalizedLinear):
    def __init__(self):
        super().__init__()
        del self.mean
        self.mean = nn.Parameter(torch.zeros(3), requires_grad=False)


class StatsExtraSaved(NormalizedLinear):
    def __init__(self):
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


class StatsSwitchGradOff(NormalizedLinear):
    def __init__(self):
        super().__init__()
        torch.set_grad_enabled(False)


class NotYet(nn.Module):
    def __init__(self, *args):
        super().__init__()
        raise NotImplementedError


# --- 8.2 ---------------------------------------------------------------------------------------


class CausalLinear(nn.Module):  # the answer notebook's answer
    def __init__(self, size=4):
        super().__init__()
        self.linear = nn.Linear(size, size)
        self.register_buffer("mask", torch.tril(torch.ones(size, size)), persistent=False)

    def forward(self, x):
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)


class MaskBool(CausalLinear):  # a bool mask: the same outputs before and after .double()
    def __init__(self, size=4):
        super().__init__(size)
        self.register_buffer("mask", torch.ones(size, size, dtype=torch.bool).tril(), persistent=False)


class MaskNnBuffer(CausalLinear):
    def __init__(self, size=4):
        super().__init__(size)
        self.mask = nn.Buffer(torch.ones_like(self.linear.weight).tril(), persistent=False)


class MaskLoop(CausalLinear):  # the same mask, built element by element
    def __init__(self, size=4):
        super().__init__(size)
        mask = torch.zeros(size, size)
        for i in range(size):
            mask[i, : i + 1] = 1.0
        self.register_buffer("mask", mask, persistent=False)


class MaskProperty(CausalLinear):  # derived from the weight at each call: it moves, nothing is saved
    def __init__(self, size=4):
        nn.Module.__init__(self)
        self.linear = nn.Linear(size, size)

    @property
    def mask(self):
        return torch.ones_like(self.linear.weight).tril()


class MaskPersistent(CausalLinear):
    def __init__(self, size=4):
        super().__init__(size)
        self.register_buffer("mask", self.mask.clone())


class MaskParameter(CausalLinear):
    def __init__(self, size=4):
        super().__init__(size)
        del self.mask
        self.mask = nn.Parameter(torch.tril(torch.ones(size, size)), requires_grad=False)


class MaskUpper(CausalLinear):
    def __init__(self, size=4):
        super().__init__(size)
        self.mask.copy_(torch.triu(torch.ones(size, size)))


class MaskSizeFour(CausalLinear):  # the mask of the default size, whatever size is
    def __init__(self, size=4):
        super().__init__(size)
        self.register_buffer("mask", torch.tril(torch.ones(4, 4)), persistent=False)


class MaskRemadeOnCpu(CausalLinear):  # registers the mask, then forward remakes it on the CPU
    def forward(self, x):
        mask = torch.tril(torch.ones(self.mask.shape))
        return nn.functional.linear(x, self.linear.weight * mask, self.linear.bias)


class MaskNone(CausalLinear):
    def __init__(self, size=4):
        super().__init__(size)
        self.register_buffer("mask", None, persistent=False)


class MaskExtraSaved(CausalLinear):
    def __init__(self, size=4):
        super().__init__(size)
        self.register_buffer("size", torch.tensor(size))


class MaskSwitchGradOff(CausalLinear):
    def __init__(self, size=4):
        super().__init__(size)
        torch.set_grad_enabled(False)


TABLE16 = torch.ones(16, 16).tril()


class MaskFromTable(CausalLinear):  # cut from a table of a fixed size
    def __init__(self, size=4):
        super().__init__(size)
        self.register_buffer("mask", TABLE16[:size, :size].clone(), persistent=False)


class MaskSeeded(CausalLinear):
    def __init__(self, size=4):
        torch.manual_seed(0)
        super().__init__(size)


# --- 8.3 ---------------------------------------------------------------------------------------


class PeakScaled(UnsavedPeak):  # the answer notebook's answer
    def __init__(self):
        super().__init__()
        self.register_buffer("peak", torch.ones(3))


class PeakNnBuffer(UnsavedPeak):
    def __init__(self):
        super().__init__()
        self.peak = nn.Buffer(torch.ones(3))


class PeakSameTensorAgain(UnsavedPeak):  # registers the tensor UnsavedPeak made, persistent this time
    def __init__(self):
        super().__init__()
        self.register_buffer("peak", self.peak)


class PeakFlagOnly(UnsavedPeak):  # takes the name out of the non-persistent set
    def __init__(self):
        super().__init__()
        self._non_persistent_buffers_set.discard("peak")


class PeakOwnForward(PeakScaled):  # an equivalent forward, written out
    def forward(self, x):
        if self.training:
            self.peak.copy_(torch.maximum(self.peak, x.detach().abs().max(dim=0).values))
        return self.linear(x / self.peak)


PEAK = torch.ones(3)


class PeakShared(UnsavedPeak):  # every model registers the same tensor, and forward raises it
    def __init__(self):
        super().__init__()
        self.register_buffer("peak", PEAK)


class PeakTiny(UnsavedPeak):  # starts near zero, not at ones
    def __init__(self):
        super().__init__()
        self.register_buffer("peak", torch.full((3,), 1e-6))


class PeakSeeded(PeakScaled):
    def __init__(self):
        torch.manual_seed(0)
        super().__init__()


class PeakPlain(UnsavedPeak):
    def __init__(self):
        super().__init__()
        del self.peak
        self.peak = torch.ones(3)


class PeakZeros(UnsavedPeak):
    def __init__(self):
        super().__init__()
        self.register_buffer("peak", torch.zeros(3))


class PeakFloat64(UnsavedPeak):
    def __init__(self):
        super().__init__()
        self.register_buffer("peak", torch.ones(3, dtype=torch.float64))


class PeakParameter(UnsavedPeak):
    def __init__(self):
        super().__init__()
        del self.peak
        self.peak = nn.Parameter(torch.ones(3), requires_grad=False)


class PeakStillNotPersistent(UnsavedPeak):  # registers it again, with the same flag
    def __init__(self):
        super().__init__()
        self.register_buffer("peak", torch.ones(3), persistent=False)


class PeakNeverUpdated(PeakScaled):
    def forward(self, x):
        return self.linear(x / self.peak)


class PeakPlainScale(PeakScaled):  # a plain output scale, left on the CPU by .to()
    def __init__(self):
        super().__init__()
        self.scale = torch.ones(2)

    def forward(self, x):
        return super().forward(x) * self.scale


class PeakAlwaysRaised(PeakScaled):  # raises peak in evaluation mode too
    def forward(self, x):
        torch.maximum(self.peak, x.detach().abs().amax(dim=0), out=self.peak)
        return self.linear(x / self.peak)


class PeakSwitchGradOff(PeakScaled):
    def __init__(self):
        super().__init__()
        torch.set_grad_enabled(False)


RIGHT = {
    "8.1": [
        NormalizedLinear,
        StatsNnBuffer,
        StatsFirstOtherFormula,
        StatsByGetBuffer,
        StatsProperty,
        StatsWithExtras,
    ],
    "8.2": [CausalLinear, MaskBool, MaskNnBuffer, MaskLoop, MaskProperty],
    "8.3": [PeakScaled, PeakNnBuffer, PeakSameTensorAgain, PeakFlagOnly, PeakOwnForward, SavedPeak],
}

STALE = "still uses the mean and std loaded before .double()"

WRONG = {
    "8.1": [
        Wrong(StaleStats, STALE, "a list, dict or attribute that kept the old one"),
        Wrong(StatsInDict, STALE, "Read self.mean and self.std in forward each time"),
        Wrong(StatsCachedOnFirstCall, STALE, ".double() replaces each buffer with a new tensor"),
        Wrong(StatsPlain, "'mean' is a plain tensor attribute", "register_buffer('mean'"),
        Wrong(
            StatsCopied,
            "does not use the mean and std the model now holds",
            "The model keeps cached[0], cached[1] as plain attributes",
        ),
        Wrong(
            StatsIgnored, "does not use the mean and std the model now holds", "reading the buffers by name"
        ),
        Wrong(StatsNoStd, "it does not divide by the loaded std", "linear((x - self.mean) / self.std)"),
        Wrong(StatsInverseCached, "holds tensors it did not hold before: inverse", "store nothing on self"),
        Wrong(StatsInPlaceOnInput, "changed a tensor it was given, in place", "not an in-place change"),
        Wrong(StatsDetached, "does not require grad, though the model has parameters", "no torch.no_grad()"),
        Wrong(StatsShared, "Two models built from your class hold the same mean", "Make a new tensor"),
        Wrong(
            StatsTimesStd, "it multiplies by std instead of dividing", "linear((x - self.mean) / self.std)"
        ),
        Wrong(
            StatsThroughCpuMatmul, DEVICE_MESSAGE, "A tensor made inside forward lands on the default device"
        ),
        Wrong(StatsPlainMatrix, DEVICE_MESSAGE, "The model keeps rotation as plain attributes"),
        Wrong(
            StdZeros, "std starts as [0.0, 0.0, 0.0], but the exercise gives torch.ones(3)", "torch.ones(3)"
        ),
        Wrong(
            MeanOnes,
            "mean starts as [1.0, 1.0, 1.0], but the exercise gives torch.zeros(3)",
            "torch.zeros(3)",
        ),
        Wrong(StatsFloat64, "mean is torch.float64", "torch.zeros(3) gives float32"),
        Wrong(StatsNotPersistent, "'std' is a buffer with persistent=False", "as a persistent buffer"),
        Wrong(StatsParameter, "'mean' is an nn.Parameter", "Fixed state belongs in a buffer"),
        Wrong(StatsExtraSaved, "state_dict() also holds count", "Keep everything else out of state_dict()"),
        Wrong(StatsSwitchGradOff, "changed gradient tracking", "torch.no_grad()"),
        Wrong(NormalizedLinear(), "Got a model instance", "without calling it"),
    ],
    "8.2": [
        Wrong(PinnedMask, "'mask' is a plain tensor attribute: it does not move", "persistent=False"),
        Wrong(MaskPersistent, "'mask' is a persistent buffer", "register it with persistent=False"),
        Wrong(
            MaskParameter, "'mask' is an nn.Parameter", "register_buffer('mask', tensor, persistent=False)"
        ),
        Wrong(MaskUpper, "mask starts as", "output i may use inputs 0..i only"),
        Wrong(MaskSizeFour, "mask has shape (4, 4)", "Build the mask from the argument"),
        Wrong(MaskRemadeOnCpu, DEVICE_MESSAGE, "make any other tensor on x.device"),
        Wrong(
            MaskNone, "'mask' is registered as a buffer but holds None", "self.register_buffer('mask', tensor"
        ),
        Wrong(MaskExtraSaved, "state_dict() also holds size", "Keep everything else out of state_dict()"),
        Wrong(MaskSwitchGradOff, "changed gradient tracking", "torch.no_grad()"),
        Wrong(CausalLinear(), "Got a model instance", "without calling it"),
        Wrong(MaskFromTable, "mask has shape (16, 16), not (", "Build the mask from the argument"),
        Wrong(MaskSeeded, "changed torch's random seed", "leave torch's seed alone"),
    ],
    "8.3": [
        Wrong(UnsavedPeak, "'peak' is still a buffer with persistent=False", "register peak again"),
        Wrong(
            PeakStillNotPersistent, "'peak' is still a buffer with persistent=False", "register peak again"
        ),
        Wrong(PeakShared, "Two models built from your class hold the same peak", "Make a new tensor"),
        Wrong(PeakTiny, "peak starts as [1e-06, 1e-06, 1e-06]", "torch.ones(3)"),
        Wrong(PeakSeeded, "changed torch's random seed", "leave torch's seed alone"),
        Wrong(PeakPlain, "'peak' is a plain tensor attribute", "register_buffer('peak'"),
        Wrong(PeakParameter, "'peak' is an nn.Parameter", "Fixed state belongs in a buffer"),
        Wrong(
            PeakZeros, "peak starts as [0.0, 0.0, 0.0], but the exercise gives torch.ones(3)", "torch.ones(3)"
        ),
        Wrong(PeakFloat64, "peak is torch.float64", "torch.ones(3) gives float32"),
        Wrong(
            PeakNeverUpdated,
            "After forward in training mode, peak is [1.0, 1.0, 1.0]",
            "Keep UnsavedPeak's forward",
        ),
        Wrong(PeakAlwaysRaised, "forward in evaluation mode changed peak", "in training mode only"),
        Wrong(PeakPlainScale, DEVICE_MESSAGE, "The model keeps scale as plain attributes"),
        Wrong(PeakSwitchGradOff, "changed gradient tracking", "torch.no_grad()"),
        Wrong(PeakScaled(), "Got a model instance", "without calling it"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


@pytest.mark.parametrize("exercise_id", ["8.1", "8.2", "8.3"])
def test_placeholder_none_wrong_types_and_unwritten_body(exercise_id):
    assert check(exercise_id, ...).status == NOT_ATTEMPTED
    assert check(exercise_id, NotYet).status == NOT_ATTEMPTED
    assert check(exercise_id, None).status == FAILED
    assert check(exercise_id, nn.Linear).status == FAILED


def test_checks_leave_the_students_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for exercise_id, answer in [("8.1", NormalizedLinear), ("8.2", CausalLinear), ("8.3", PeakScaled)]:
        assert check(exercise_id, answer)
    assert torch.equal(torch.rand(3), expected)
