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
from buflesson.results import FAILED, NOT_ATTEMPTED
from buflesson.standin import STANDIN

from corpus import Wrong, verdict_tests

DEVICE = checking_device()


class Ramp(nn.Module):  # the answer notebook's answer
    def __init__(self, features=3):
        super().__init__()
        self.linear = nn.Linear(features, 2)

    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device)
        return self.linear(x * ramp)


class RampWithoutGrad(Ramp):  # forward under no_grad: the layer is never trained
    @torch.no_grad()
    def forward(self, x):
        return super().forward(x)


class RampDtypeToo(Ramp):
    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype)
        return self.linear(x * ramp)


class RampNewTensor(Ramp):
    def forward(self, x):
        return self.linear(x * x.new_tensor(range(1, x.shape[1] + 1)))


class RampToX(Ramp):
    def forward(self, x):
        ramp = torch.arange(1, x.size(-1) + 1).to(x)
        return self.linear(x * ramp)


class RampCumsum(Ramp):  # another formula, from the layer's size and the weight's device
    def forward(self, x):
        ones = torch.ones(self.linear.in_features, device=self.linear.weight.device, dtype=x.dtype)
        return self.linear(x * ones.cumsum(0))


class RampDiagMatmul(Ramp):  # the ramp as a diagonal matrix, made where x is
    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype)
        return self.linear(x @ torch.diag(ramp))


class RampWithExtras(Ramp):  # extra harmless code: a helper, a note, a plain number
    def __init__(self, features=3):
        super().__init__(features)
        self.note = "scales feature i by i + 1"
        self.first = 1

    def ramp(self, x):
        return torch.arange(self.first, x.shape[-1] + self.first, device=x.device)

    def forward(self, x):
        return self.linear(x * self.ramp(x))


class RampIndexedWithCpuIndices(Ramp):  # a device tensor indexed with CPU indices: a GPU accepts it
    def forward(self, x):
        n = x.shape[-1]
        ramp = torch.arange(1, n + 1, device=x.device, dtype=x.dtype)[torch.arange(n)]
        return self.linear(x * ramp)


class RampTimesCpuScalar(Ramp):  # a 0-dim CPU integer tensor next to device tensors: a GPU accepts it
    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device) * torch.tensor(1)
        return self.linear(x * ramp)


class RampOnCpu(Ramp):  # the typical mistake: a tensor created on a fixed device
    def forward(self, x):
        return self.linear(x * torch.arange(1, x.shape[-1] + 1))


class OnesOnCpu(Ramp):
    def forward(self, x):
        return self.linear(x * torch.ones(x.shape[-1]).cumsum(0))


class RampMatmulOnCpu(Ramp):  # a float32 CPU matrix: refused on the device, and again after .double()
    def forward(self, x):
        return self.linear(x @ torch.diag(torch.arange(1.0, x.shape[-1] + 1)))


class RampMatmulFollowsDtypeOnCpu(Ramp):  # right dtype, CPU device: only a GPU (or the stand-in) refuses it
    def forward(self, x):
        return self.linear(x @ torch.diag(torch.arange(1, x.shape[-1] + 1, dtype=x.dtype)))


class RampLinearOnCpu(Ramp):  # the ramp as the weight of F.linear, made on the CPU
    def forward(self, x):
        return self.linear(F.linear(x, torch.diag(torch.arange(1, x.shape[-1] + 1, dtype=x.dtype))))


class RampFloat32(Ramp):  # hard-codes float32: float64 promotes, float16 does not
    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=torch.float32)
        return self.linear(x * ramp)


class RampFloat64(Ramp):  # hard-codes float64: already wrong for the float32 model
    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=torch.float64)
        return self.linear(x * ramp)


class FloatOutput(Ramp):
    def forward(self, x):
        return super().forward(x).float()


class RampLengthThree(Ramp):  # works for the lesson's 3 features only
    def forward(self, x):
        return self.linear(x * torch.arange(1, 4, device=x.device, dtype=x.dtype))


class RampListOfThree(Ramp):
    def forward(self, x):
        return self.linear(x * x.new_tensor([1.0, 2.0, 3.0]))


class RampFromZero(Ramp):
    def forward(self, x):
        return self.linear(x * torch.arange(x.shape[-1], device=x.device))


class RampBufferInForward(Ramp):
    def forward(self, x):
        if not hasattr(self, "ramp"):
            self.register_buffer("ramp", torch.arange(1, x.shape[-1] + 1, device=x.device))
        return self.linear(x * self.ramp)


class RampStoredOnSelf(Ramp):  # made on x.device each time, but kept on the model
    def forward(self, x):
        self.ramp = torch.arange(1, x.shape[-1] + 1, device=x.device)
        return self.linear(x * self.ramp)


class RampCachedOnFirstCall(Ramp):  # the ramp of the first call, on the device of the first call
    def forward(self, x):
        if not hasattr(self, "cache"):
            self.cache = {"ramp": torch.arange(1, x.shape[-1] + 1, device=x.device)}
        return self.linear(x * self.cache["ramp"])


class RampBufferInInit(Ramp):  # lesson 3's tool; the exercise keeps __init__ as given
    def __init__(self, features=3):
        super().__init__(features)
        self.register_buffer("ramp", torch.arange(1, features + 1), persistent=False)

    def forward(self, x):
        return self.linear(x * self.ramp)


class OldSignature(nn.Module):  # the class as it was before it took the number of features
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        return self.linear(x * torch.arange(1, x.shape[-1] + 1, device=x.device))


class SwitchesGradOff(Ramp):
    def __init__(self, features=3):
        super().__init__(features)
        torch.set_grad_enabled(False)


class RampOverRows(Ramp):  # one entry per row of x, not per feature
    def forward(self, x):
        ramp = torch.arange(1, x.shape[0] + 1, device=x.device, dtype=x.dtype)
        return self.linear(x * ramp)


class NotYet(Ramp):
    def forward(self, x):
        raise NotImplementedError


DEVICE_MESSAGE = "Expected all tensors to be on the same device"

HALF = {"offset": torch.float32, "linear.weight": torch.float16, "linear.bias": torch.float16}

RIGHT = {
    "2.1": [
        Ramp,
        RampDtypeToo,
        RampNewTensor,
        RampToX,
        RampCumsum,
        RampDiagMatmul,
        RampWithExtras,
        RampIndexedWithCpuIndices,
        RampTimesCpuScalar,
    ],
    "2.2": [
        HALF,
        {"linear.bias": "float16", "offset": "torch.float32", "linear.weight": "half"},
        {"linear.weight": torch.half, "linear.bias": torch.zeros(1).half().dtype, "offset": torch.float},
        {"linear.weight": " Float16", "linear.bias": "torch.half", "offset": "float"},
    ],
}

WRONG = {
    "2.1": [
        Wrong(RampWithoutGrad, "does not require grad", "no torch.no_grad()"),
        Wrong(RampOnCpu, DEVICE_MESSAGE, "device=x.device"),
        Wrong(OnesOnCpu, DEVICE_MESSAGE, "device=x.device"),
        Wrong(RampMatmulOnCpu, DEVICE_MESSAGE, "device=x.device"),
        Wrong(RampMatmulFollowsDtypeOnCpu, DEVICE_MESSAGE, "device=x.device"),
        Wrong(RampLinearOnCpu, DEVICE_MESSAGE, "device=x.device"),
        Wrong(RampFloat32, "After model.half(), on a torch.float16 input, forward raised", "dtype=x.dtype"),
        Wrong(RampFloat64, "For Ramp(3) on the cpu", "dtype=x.dtype"),
        Wrong(
            FloatOutput, "After model.double(), forward on a torch.float64 input returned", "dtype=x.dtype"
        ),
        Wrong(RampLengthThree, "features, forward raised RuntimeError", "x.shape[-1]"),
        Wrong(RampListOfThree, "features, forward raised RuntimeError", "not a fixed number"),
        Wrong(RampFromZero, "ramp = 0, 1, ..., 2", "torch.arange(n) starts at 0"),
        Wrong(RampOverRows, "must match the size of tensor b", "the batch instead of the features"),
        Wrong(RampBufferInForward, "forward stores the ramp on the model", "store nothing on self"),
        Wrong(RampStoredOnSelf, "holds tensors it did not hold before: ramp", "local variable of forward"),
        Wrong(RampCachedOnFirstCall, "did not hold before: cache['ramp']", "store nothing on self"),
        Wrong(RampBufferInInit, "holds tensors besides linear's: ramp", "Leave __init__ as given"),
        Wrong(OldSignature, "Creating Ramp(3) raised TypeError", "def __init__(self, features=3)"),
        Wrong(SwitchesGradOff, "changed gradient tracking", "torch.no_grad()"),
        Wrong(Ramp(), "not the class", "without calling it"),
        Wrong("Ramp", "Expected the class Ramp", "Pass the class"),
    ],
    "2.2": [
        Wrong(
            {**HALF, "offset": torch.float16}, "offset stays float32: it is a plain attribute", "buffers only"
        ),
        Wrong(
            {**HALF, "linear.bias": torch.float32},
            "linear.bias becomes float16",
            "Floating-point parameters follow",
        ),
        Wrong(
            {**HALF, "linear.weight": "float32", "linear.bias": torch.bfloat16},
            "linear.weight and linear.bias become float16: .half() converts every floating-point parameter.",
            "Floating-point parameters follow",
        ),
        Wrong(
            {"linear.weight": "float32", "linear.bias": "float32", "offset": "float16"},
            "linear.bias become float16: .half() converts every floating-point parameter; offset stays",
            "Floating-point parameters follow every conversion of the module: .half(), .double(), .to(...) "
            "(an integer tensor keeps its dtype). .half(), .double(), .to(...) and .cuda() convert "
            "parameters and buffers only.",
        ),
        Wrong(
            {"linear.weight": torch.float16, "linear.bias": torch.float16},
            "No prediction for: offset",
            "offset",
        ),
        Wrong({**HALF, "linear.scale": torch.float16}, "no tensor named: linear.scale", "offset"),
        Wrong({**HALF, "offset": 32}, "offset: 32 is not a dtype", "torch.float16"),
        Wrong({**HALF, "offset": "float8"}, "'float8' is not a dtype", "torch.float32"),
        Wrong({**HALF, "linear.bias": torch.zeros(2).half()}, "linear.bias: tensor(", "not the tensor"),
        Wrong([torch.float16], "Expected a dict", "linear.weight"),
        Wrong({**HALF, "offset": nn.Linear(1, 1)}, "values that are not dtypes", "torch.float16"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


def test_2_1_placeholder_and_wrong_types():
    assert check("2.1", ...).status == NOT_ATTEMPTED
    assert check("2.1", NotYet).status == NOT_ATTEMPTED
    assert check("2.1", None).status == FAILED
    assert check("2.1", nn.Linear).status == FAILED


def test_2_1_leaves_the_students_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check("2.1", Ramp)
    assert torch.equal(torch.rand(1), expected)


@pytest.mark.parametrize("answer", [RampMatmulFollowsDtypeOnCpu, RampLinearOnCpu])
def test_2_1_refuses_what_plain_meta_would_let_through(answer):
    model = answer()
    out = model.to(STANDIN)(torch.ones(4, 3, device=STANDIN))  # plain meta: no device check in mm
    assert out.device == STANDIN
    if DEVICE == STANDIN:
        assert "buflesson's GPU stand-in, which refuses aten." in check("2.1", answer).message


def test_2_2_placeholder_none_and_the_students_random_state():
    assert check("2.2", ...).status == NOT_ATTEMPTED
    assert check("2.2", None).status == FAILED
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    check("2.2", HALF)
    assert torch.equal(torch.rand(1), expected)


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


class RampReadsAValue(Ramp):  # runs on a GPU; the stand-in holds no values to read
    def forward(self, x):
        n = int(x.new_tensor(x.shape[-1]).item())
        return self.linear(x * torch.arange(1, n + 1, device=x.device))


class RampThroughAList(Ramp):  # runs on a GPU; the stand-in cannot copy its values out
    def forward(self, x):
        values = torch.arange(1, x.shape[-1] + 1, device=x.device).tolist()
        return self.linear(x * x.new_tensor(values))


@pytest.mark.skipif(DEVICE != STANDIN, reason="a limit of the stand-in: a GPU runs these")
@pytest.mark.parametrize("answer", [RampReadsAValue, RampThroughAList])
def test_2_1_says_so_when_the_stand_in_cannot_run_what_a_gpu_would(answer):
    result = check("2.1", answer)
    assert result.status == FAILED, str(result)
    assert "buflesson's GPU stand-in holds no values" in result.message
    assert "a GPU would)" in result.message and ".item()" in result.hint
