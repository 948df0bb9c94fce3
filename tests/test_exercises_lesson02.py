"""Lesson 2 checks: 2.1 makes a tensor on the input's device, 2.2 predicts what .half() converts."""

import pytest
import torch
from torch import nn

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED


class Ramp(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device)
        return self.linear(x * ramp)


class RampFollowsWeights(Ramp):
    def forward(self, x):
        ramp = torch.arange(1, 4, device=self.linear.weight.device, dtype=x.dtype)
        return self.linear(x * ramp)


class RampOnCpu(Ramp):  # the typical mistake: a tensor created on a fixed device
    def forward(self, x):
        return self.linear(x * torch.arange(1, x.shape[-1] + 1))


class OnesOnCpu(Ramp):
    def forward(self, x):
        return self.linear(x * torch.ones(3).cumsum(0))


class RampMatmulOnCpu(Ramp):  # meta does not check a matmul with a cpu tensor; .double() shows it
    def forward(self, x):
        return self.linear(x @ torch.diag(torch.arange(1.0, 4.0)))


class RampBufferInForward(Ramp):
    def forward(self, x):
        if not hasattr(self, "ramp"):
            self.register_buffer("ramp", torch.arange(1, x.shape[-1] + 1))
        return self.linear(x * self.ramp)


class RampCachedOnSelf(Ramp):
    def forward(self, x):
        self.ramp = torch.arange(1, x.shape[-1] + 1, device=x.device)
        return self.linear(x * self.ramp)


class WrongRamp(Ramp):
    def forward(self, x):
        return self.linear(x * torch.arange(x.shape[-1], device=x.device))


class FloatRamp(Ramp):
    def forward(self, x):
        ramp = torch.arange(1, 4, device=x.device, dtype=torch.float32)
        return self.linear(x * ramp).float()


class NotYet(Ramp):
    def forward(self, x):
        raise NotImplementedError


@pytest.mark.parametrize("answer", [Ramp, RampFollowsWeights])
def test_2_1_accepts_a_tensor_made_on_the_right_device(answer):
    assert check("2.1", answer).status == PASSED


@pytest.mark.parametrize(
    "answer, message",
    [
        (RampOnCpu, "Tensor on device cpu is not on the expected device meta!"),
        (OnesOnCpu, "After model.to('meta'), forward raised RuntimeError"),
        (RampMatmulOnCpu, "After model.double(), forward raised RuntimeError: expected m1 and m2"),
    ],
)
def test_2_1_a_tensor_on_a_fixed_device_gets_the_device_hint(answer, message):
    result = check("2.1", answer)
    assert result.status == FAILED
    assert message in result.message
    assert "device=x.device" in result.hint


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (RampBufferInForward, "created inside forward", "do not store it on self"),
        (RampCachedOnSelf, "created inside forward", "do not store it on self"),
        (WrongRamp, "other values", "torch.arange(1, n + 1)"),
        (FloatRamp, "returned torch.float32 instead of torch.float64", "dtype=x.dtype"),
        (Ramp(), "not the class", "without calling it"),
    ],
)
def test_2_1_names_each_other_mistake(answer, message, hint):
    result = check("2.1", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_2_1_placeholder_and_wrong_types():
    assert check("2.1", ...).status == NOT_ATTEMPTED
    assert check("2.1", NotYet).status == NOT_ATTEMPTED
    assert check("2.1", None).status == FAILED
    assert check("2.1", "Ramp").status == FAILED


HALF = {"offset": torch.float32, "linear.weight": torch.float16, "linear.bias": torch.float16}


def test_2_2_accepts_dtypes_or_their_names():
    assert check("2.2", HALF).status == PASSED
    named = {"offset": "float32", "linear.weight": "torch.float16", "linear.bias": "half"}
    assert check("2.2", named).status == PASSED


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        ({**HALF, "offset": torch.float16}, "offset stays float32", "parameters and buffers only"),
        ({**HALF, "linear.bias": torch.float32}, "linear.bias becomes float16", "Parameters follow"),
        ({"linear.weight": torch.float16, "linear.bias": torch.float16}, "No prediction for: offset", ""),
        ({**HALF, "linear.scale": torch.float16}, "no tensor named: linear.scale", "offset"),
        ({**HALF, "offset": 32}, "32 is not a dtype", "torch.float16"),
        ([torch.float16], "Expected a dict", "linear.weight"),
    ],
)
def test_2_2_names_each_mistake(answer, message, hint):
    result = check("2.2", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_2_2_placeholder_and_none():
    assert check("2.2", ...).status == NOT_ATTEMPTED
    assert check("2.2", None).status == FAILED
