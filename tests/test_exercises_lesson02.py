"""Lesson 2 checks: 2.1 makes a tensor on the input's device, 2.2 predicts what .half() converts."""

import re
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from buflesson import check
from buflesson.devices import checking_device
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED
from buflesson.standin import STANDIN

DEVICE = checking_device()


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


class RampMatmulOnCpu(Ramp):  # a float32 CPU matrix: refused on the device, and again after .double()
    def forward(self, x):
        return self.linear(x @ torch.diag(torch.arange(1.0, 4.0)))


class RampMatmulFollowsDtypeOnCpu(Ramp):  # right dtype, CPU device: only a GPU (or the stand-in) refuses it
    def forward(self, x):
        return self.linear(x @ torch.diag(torch.arange(1, x.shape[-1] + 1, dtype=x.dtype)))


class RampLinearOnCpu(Ramp):  # the ramp as the weight of F.linear, made on the CPU
    def forward(self, x):
        return self.linear(F.linear(x, torch.diag(torch.arange(1, x.shape[-1] + 1, dtype=x.dtype))))


class RampIndexedWithCpuIndices(Ramp):  # a device tensor indexed with CPU indices: a GPU accepts it
    def forward(self, x):
        ramp = torch.arange(1, 4, device=x.device, dtype=x.dtype)[torch.tensor([0, 1, 2])]
        return self.linear(x * ramp)


class RampTimesCpuScalar(Ramp):  # a 0-dim CPU tensor next to device tensors: a GPU accepts it
    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device) * torch.tensor(1.0)
        return self.linear(x * ramp)


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


@pytest.mark.parametrize("answer", [Ramp, RampFollowsWeights, RampIndexedWithCpuIndices, RampTimesCpuScalar])
def test_2_1_accepts_what_runs_on_a_gpu(answer):
    assert check("2.1", answer).status == PASSED


@pytest.mark.parametrize(
    "answer", [RampOnCpu, OnesOnCpu, RampMatmulOnCpu, RampMatmulFollowsDtypeOnCpu, RampLinearOnCpu]
)
def test_2_1_a_tensor_on_a_fixed_device_gets_the_device_hint(answer):
    result = check("2.1", answer)
    assert result.status == FAILED
    assert f"After model.to('{DEVICE.type}'), forward raised" in result.message
    assert "Expected all tensors to be on the same device" in result.message
    assert "device=x.device" in result.hint


@pytest.mark.parametrize("answer", [RampMatmulFollowsDtypeOnCpu, RampLinearOnCpu])
def test_2_1_refuses_what_plain_meta_would_let_through(answer):
    model = answer()
    out = model.to(STANDIN)(torch.ones(4, 3, device=STANDIN))  # plain meta: no device check in mm
    assert out.device == STANDIN
    if DEVICE == STANDIN:
        assert "buflesson's GPU stand-in, which refuses aten.mm.default" in check("2.1", answer).message


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


# The device lessons store the outputs of a CPU-only run (the meta device); nbval must find the same
# outputs equal on a machine with CUDA once tests/nbval_sanitize.cfg has been applied.
ROOT = Path(__file__).resolve().parent.parent
CPU_WHYS = [
    "No accelerator here: using buflesson's GPU stand-in, the meta device checked by CUDA's device rule.",
    # what lesson 3's stored outputs still say until it is regenerated
    "No accelerator here: using the meta device, which refuses a CPU tensor as a GPU would "
    "(its message differs).",
]
CPU_MISMATCHES = {
    "StandInDeviceError: Expected all tensors to be on the same device, but found at least two devices, meta "
    "and cpu! (buflesson's GPU stand-in, which refuses aten.add.Tensor here as CUDA does)": "RuntimeError: "
    "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
    "Tensor on device cpu is not on the expected device meta!": "Expected all tensors to be on the same "
    "device, but found at least two devices, cuda:0 and cpu!",
}
CUDA_MISMATCHES = [
    "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
    "Expected all tensors to be on the same device, but got mat1 is on cpu, different from other tensors "
    "on cuda:0 (when checking argument in method wrapper_CUDA_addmm)",
]


def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text()):
        text = re.sub(regex, replace, text)
    return text


def _as_on_cuda(text: str) -> str:
    """What a CUDA machine prints where the CPU-only run printed `text`."""
    for why in CPU_WHYS:
        text = text.replace(why, "Using the accelerator: cuda.")
    for mismatch, cuda in CPU_MISMATCHES.items():
        text = text.replace(mismatch, cuda)
    text = re.sub(r"\bStandInDeviceError\b", "RuntimeError", text)
    text = text.replace("meta  ", "cuda:0")  # inventory's device column is 6 wide: "cuda:0" fills it
    return re.sub(r"\bmeta\b", "cuda:0", text)


def _output_texts(path: Path) -> list[str]:
    texts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            texts += [output.get("text", ""), output.get("evalue", "")]
            texts += [value for value in output.get("data", {}).values() if isinstance(value, str)]
    return [text for text in texts if text]


DEVICE_NOTEBOOKS = [
    ROOT / "notebooks" / folder / name
    for folder in ("", "answers")
    for name in ("02-devices.ipynb", "03-register-buffer.ipynb")
]


@pytest.mark.parametrize("path", DEVICE_NOTEBOOKS, ids=lambda p: p.parent.name + "/" + p.name)
def test_stored_device_outputs_compare_equal_on_a_cuda_machine(path):
    texts = _output_texts(path)
    differing = [text for text in texts if _as_on_cuda(text) != text]
    assert len(differing) >= 3, "expected the device line, an inventory and a device name in the outputs"
    for text in differing:
        assert _sanitize(text) == _sanitize(_as_on_cuda(text)), text


@pytest.mark.parametrize("cuda_message", CUDA_MISMATCHES)
@pytest.mark.parametrize("cpu_message", list(CPU_MISMATCHES))
def test_each_cuda_wording_of_a_device_mismatch_is_sanitized_like_the_stand_in(cuda_message, cpu_message):
    assert _sanitize(cuda_message) == "DEVICE-MISMATCH"
    assert _sanitize(cpu_message) in ("DEVICE-MISMATCH", "RuntimeError: DEVICE-MISMATCH")
