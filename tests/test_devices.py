"""pick_device() and buflesson's GPU stand-in: it refuses exactly what CUDA refuses.

The table below holds CUDA's device rule for PyTorch 2.13, written from PyTorch's source (see the
docstring of buflesson/cuda_rule.py for the files): for each operation, what a GPU does when one
operand is a CPU tensor, and when it is a 0-dim CPU tensor. The stand-in must raise
StandInDeviceError exactly where a GPU refuses, run where a GPU runs, and fail (for a reason that
has nothing to do with devices) where the call is invalid on every device. Beside it, what plain
`meta` does: it lets through much of what a GPU refuses, which is why the stand-in exists.
"""

import io
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from buflesson import inventory, pick_device, plain_offset_model, sample_input
from buflesson.devices import STANDIN_WHY, DeviceChoice, accelerator, checking_device
from buflesson.i18n import render, tr
from buflesson.standin import STANDIN, StandInDeviceError, device_rule, rule_active

ROOT = Path(__file__).resolve().parent.parent

OK, DEVICE, INVALID = "runs", "device error", "invalid on every device"
FULL, SCALAR = "a CPU tensor", "a 0-dim CPU tensor"


def _cpu(shape, dtype=torch.float32):
    """The CPU operand of a row: `shape` for FULL, () for SCALAR."""

    def make(kind):
        return torch.ones(shape if kind == FULL else (), dtype=dtype)

    return make


@dataclass(frozen=True)
class Row:
    name: str
    call: object  # call(device, cpu_operand)
    operand: object  # operand(kind) -> the CPU tensor
    cuda: tuple  # (outcome with FULL, outcome with SCALAR) on a GPU, from PyTorch's source
    plain_meta: tuple  # (FULL, SCALAR) on plain meta: OK or "raises"
    source: str


def _ones(*shape, device, dtype=torch.float32):
    return torch.ones(shape, device=device, dtype=dtype)


def _setitem(tensor, index, value):
    tensor[index] = value
    return tensor


RAISES = "raises"
ROWS = [
    Row("add", lambda d, c: _ones(2, 3, device=d) + c, _cpu((2, 3)), (DEVICE, OK), (RAISES, OK),
        "TensorIterator.cpp compute_types: one 0-dim CPU input allowed (BINARY_OP_CONFIG)"),
    Row("add, the CPU tensor first", lambda d, c: c + _ones(2, 3, device=d), _cpu((2, 3)), (DEVICE, OK),
        (RAISES, OK), "compute_types: the common device is the first non-CPU one, wherever it stands"),
    Row("add_ into a CPU tensor", lambda d, c: c.add_(_ones(device=d)), _cpu((2, 3)), (DEVICE, DEVICE),
        (OK, OK), "compute_types: the CPU-scalar exception is for inputs; an output never"),
    Row("mul", lambda d, c: _ones(2, 3, device=d) * c, _cpu((2, 3)), (DEVICE, OK), (RAISES, OK),
        "TensorIterator binary op"),
    Row("matmul (@)", lambda d, c: _ones(2, 3, device=d) @ c, _cpu((3, 3)), (DEVICE, INVALID), (OK, RAISES),
        "matmul is CompositeImplicitAutograd -> mm, whose CUDA kernel has torchgen's check"),
    Row("mm", lambda d, c: torch.mm(_ones(2, 3, device=d), c), _cpu((3, 3)), (DEVICE, DEVICE), (OK, RAISES),
        "native_functions.yaml: mm has no `device_check: NoCheck` -> generated check, before shapes"),
    Row("F.linear, CPU weight", lambda d, c: F.linear(_ones(2, 3, device=d), c), _cpu((4, 3)),
        (DEVICE, INVALID), (OK, RAISES), "linear (CompositeImplicitAutograd) -> mm: generated check"),
    Row("F.linear, CPU bias", lambda d, c: F.linear(_ones(2, 3, device=d), _ones(4, 3, device=d), c),
        _cpu((4,)), (DEVICE, DEVICE), (RAISES, OK),
        "linear -> addmm(bias, ...): generated check, no 0-dim exception"),
    Row("index: device[CPU indices]", lambda d, c: _ones(3, 2, device=d)[c], _cpu((2,), torch.long), (OK, OK),
        (OK, OK), "TensorAdvancedIndexing.cpp check_indices_on_cpu_or_selfdevice; a 0-dim index is an int"),
    Row("index: device[CPU mask]", lambda d, c: _ones(2, 3, device=d)[c], _cpu((2,), torch.bool), (OK, OK),
        (OK, OK), "IndexingUtils.h expandTensors: nonzero on the CPU, moved to the device"),
    Row("index: CPU[device indices]", lambda d, c: c[_ones(2, device=d, dtype=torch.long)], _cpu((3, 2)),
        (DEVICE, INVALID), (OK, RAISES), "check_indices_on_cpu_or_selfdevice refuses it"),
    Row("setitem: device[CPU indices] = 0", lambda d, c: _setitem(_ones(3, 2, device=d), c, 0.0),
        _cpu((2,), torch.long), (OK, OK), (OK, OK), "_index_put_impl_: make_info moves indices"),
    Row("setitem: device[i] = CPU value", lambda d, c: _setitem(_ones(3, 2, device=d), _ones(1, device=d,
        dtype=torch.long), c), _cpu((2,)), (DEVICE, OK), (OK, OK),
        "_index_put_impl_: a 0-dim value is moved; another goes to a TensorIterator"),
    Row("cat", lambda d, c: torch.cat([_ones(2, 3, device=d), c]), _cpu((2, 3)), (DEVICE, DEVICE),
        (RAISES, RAISES), "cat: generated check (Tensor[] argument), before the 0-dim check"),
    Row("stack", lambda d, c: torch.stack([_ones(2, 3, device=d), c]), _cpu((2, 3)), (DEVICE, INVALID),
        (RAISES, RAISES), "stack is CompositeExplicitAutograd: checks sizes, then cat"),
    Row("where, CPU other", lambda d, c: torch.where(_ones(2, 3, device=d, dtype=torch.bool),
        _ones(2, 3, device=d), c), _cpu((2, 3)), (DEVICE, OK), (RAISES, OK),
        "TensorCompare.cpp where_self_out: 0-dim operands are moved to the device"),
    Row("where, CPU condition", lambda d, c: torch.where(c, _ones(2, 3, device=d), _ones(2, 3, device=d)),
        _cpu((2, 3), torch.bool), (DEVICE, OK), (RAISES, OK), "where_self_out, as above"),
    Row("embedding, CPU indices", lambda d, c: F.embedding(c, _ones(5, 3, device=d)), _cpu((2,), torch.long),
        (DEVICE, DEVICE), (OK, OK), "embedding (CompositeExplicitAutograd) -> index_select: generated check"),
    Row("embedding, CPU weight", lambda d, c: F.embedding(torch.zeros(2, dtype=torch.long, device=d), c),
        _cpu((5, 3)), (DEVICE, INVALID), (OK, RAISES), "index_select: generated check"),
    Row("masked_fill, CPU mask", lambda d, c: _ones(2, 3, device=d).masked_fill(c, 0.0),
        _cpu((2, 3), torch.bool), (DEVICE, DEVICE), (RAISES, OK),
        "cuda/Indexing.cu masked_fill__cuda: self and mask on the same device, exactly"),
    Row("masked_fill, CPU value", lambda d, c: _ones(2, 3, device=d).masked_fill(_ones(2, 3, device=d,
        dtype=torch.bool), c), _cpu((2, 3)), (INVALID, OK), (RAISES, RAISES),
        "masked_fill_ reads a 0-dim value with item(); other values are refused on every device"),
    Row("clamp(min=CPU tensor)", lambda d, c: _ones(2, 3, device=d).clamp(min=c), _cpu((2, 3)),
        (DEVICE, DEVICE), (RAISES, OK), "clamp.Tensor: generated check"),
    Row("addcmul", lambda d, c: torch.addcmul(_ones(2, 3, device=d), _ones(2, 3, device=d), c), _cpu((2, 3)),
        (DEVICE, DEVICE), (RAISES, OK), "build_ternary_op does not allow CPU scalars"),
    Row("lerp, CPU weight", lambda d, c: torch.lerp(_ones(2, 3, device=d), _ones(2, 3, device=d), c),
        _cpu((2, 3)), (DEVICE, OK), (RAISES, OK), "Lerp.cpp: allow_cpu_scalars(true)"),
    Row("cross_entropy, CPU target", lambda d, c: F.cross_entropy(_ones(2, 3, device=d), c),
        _cpu((2,), torch.long), (DEVICE, INVALID), (RAISES, RAISES), "nll_loss_forward: generated check"),
    Row("torch.equal", lambda d, c: torch.equal(_ones(2, 3, device=d), c), _cpu((2, 3)), (DEVICE, DEVICE),
        (RAISES, RAISES), "equal: generated check"),
    Row("copy_ from the CPU", lambda d, c: _ones(2, 3, device=d).copy_(c), _cpu((2, 3)), (OK, OK), (OK, OK),
        "copy_ is NoCheck: it copies across devices"),
    Row(".to(device)", lambda d, c: c.to(d), _cpu((2, 3)), (OK, OK), (OK, OK), "_to_copy is NoCheck"),
]  # fmt: skip
CASES = [pytest.param(row, kind, id=f"{row.name} | {kind}") for row in ROWS for kind in (FULL, SCALAR)]


def _expected(row, kind):
    return row.cuda[0 if kind == FULL else 1]


def _run(call):
    """OK, or the exception the call raised."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the outcome is what is compared
        return error
    return OK


@pytest.mark.parametrize("row, kind", CASES)
def test_the_stand_in_refuses_exactly_where_cuda_does(row, kind):
    with device_rule():
        outcome = _run(lambda: row.call(STANDIN, row.operand(kind)))
    expected = _expected(row, kind)
    if expected == OK:
        assert outcome == OK, f"a GPU runs this ({row.source}); the stand-in raised {outcome!r}"
    elif expected == DEVICE:
        assert isinstance(outcome, StandInDeviceError), f"a GPU refuses this ({row.source}); got {outcome!r}"
    else:
        assert isinstance(outcome, Exception) and not isinstance(outcome, StandInDeviceError), outcome


@pytest.mark.parametrize("row, kind", CASES)
def test_plain_meta_behaves_as_documented(row, kind):
    outcome = _run(lambda: row.call(STANDIN, row.operand(kind)))
    expected = row.plain_meta[0 if kind == FULL else 1]
    assert (outcome == OK) == (expected == OK), f"plain meta: {outcome!r}"
    assert not isinstance(outcome, StandInDeviceError)


def test_plain_meta_lets_through_what_a_gpu_refuses():
    missed = [
        f"{row.name} | {kind}"
        for row in ROWS
        for kind in (FULL, SCALAR)
        if _expected(row, kind) == DEVICE and row.plain_meta[0 if kind == FULL else 1] == OK
    ]
    gaps = ("matmul (@)", "mm", "F.linear, CPU weight", "embedding, CPU indices", "add_ into a CPU tensor")
    for name in gaps:
        assert f"{name} | {FULL}" in missed


@pytest.mark.parametrize("row, kind", [case for case in CASES if _expected(*case.values) == OK])
def test_what_a_gpu_runs_gives_the_same_shape_on_the_stand_in_as_on_the_cpu(row, kind):
    cpu = row.call(torch.device("cpu"), row.operand(kind))
    with device_rule():
        standin = row.call(STANDIN, row.operand(kind))
    assert standin.shape == cpu.shape and standin.dtype == cpu.dtype
    assert standin.device == STANDIN


CUDA_WORDS = re.compile(
    r"Expected all tensors to be on the same device|indices should be either on cpu|"
    r"expected self and mask to be on the same device|Trying to pass too many CPU scalars"
)


@pytest.mark.gpu
@pytest.mark.skipif(accelerator() is None, reason="needs a CUDA, MPS or XPU device")
@pytest.mark.parametrize("row, kind", CASES)
def test_the_table_holds_on_a_real_accelerator(row, kind):
    outcome = _run(lambda: row.call(accelerator(), row.operand(kind)))
    expected = _expected(row, kind)
    if expected == OK:
        assert outcome == OK, outcome
    elif expected == DEVICE:
        assert isinstance(outcome, RuntimeError) and CUDA_WORDS.search(str(outcome)), outcome
    else:
        assert isinstance(outcome, Exception) and not CUDA_WORDS.search(str(outcome)), outcome


def test_the_error_names_the_operation_both_devices_and_the_stand_in():
    with device_rule(), pytest.raises(StandInDeviceError) as caught:
        torch.ones(2, 3, device=STANDIN) @ torch.ones(3, 3)
    message = str(caught.value)
    assert message.startswith(
        "Expected all tensors to be on the same device, but got mat2 is on cpu, "
        "different from other tensors on meta"
    )
    assert "aten.mm.default" in message and "buflesson's GPU stand-in" in message
    assert isinstance(caught.value, RuntimeError)


def test_outside_the_rule_nothing_is_checked_and_the_rule_is_off_again():
    assert not rule_active()
    with device_rule() as device:
        assert device == STANDIN and rule_active()
        with device_rule():  # nested: still one rule
            assert rule_active()
    assert not rule_active()
    torch.ones(2, 3, device=STANDIN) @ torch.ones(3, 3)  # plain meta: no error


def test_the_rule_leaves_cpu_only_and_stand_in_only_work_alone():
    with device_rule():
        assert torch.equal(torch.ones(2) + torch.tensor([1.0, 2.0]), torch.tensor([2.0, 3.0]))
        out = torch.ones(2, 3, device=STANDIN) @ torch.ones(3, 3, device=STANDIN)
    assert out.shape == (2, 3) and out.device == STANDIN


def _train(model, x, optimizer_class, **options):
    optimizer = optimizer_class(model.parameters(), lr=0.1, **options)
    for _ in range(2):
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()


def test_legitimate_code_runs_under_the_rule(tmp_path):
    from buflesson import buffer_offset_model

    with device_rule():
        model = buffer_offset_model().to(STANDIN)
        assert "device='meta'" in repr(model.offset) and "BufferOffset" in repr(model)
        assert inventory(model)["offset"].device == "meta"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch warns that copying into meta tensors does nothing
            model.load_state_dict(buffer_offset_model().state_dict())
        torch.save(model.state_dict(), tmp_path / "state.pt")
        assert torch.load(tmp_path / "state.pt", weights_only=True)["offset"].device == STANDIN
        x = sample_input().to(STANDIN)
        for optimizer_class, options in [(torch.optim.SGD, {"momentum": 0.9}), (torch.optim.Adam, {})]:
            _train(buffer_offset_model().to(STANDIN), x, optimizer_class, **options)
        norm = nn.BatchNorm1d(3).to(STANDIN).train()
        assert norm(x).shape == (4, 3)
        net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.1), nn.LayerNorm(4)).to(STANDIN)
        assert F.cross_entropy(net(x), torch.tensor([0, 1, 2, 3], device=STANDIN)).shape == ()
        assert buffer_offset_model().to(STANDIN).double().offset.dtype == torch.float64
        buffer = io.BytesIO()
        torch.save(buffer_offset_model().to(STANDIN), buffer)


def test_pick_device_returns_a_device_and_an_explanation(monkeypatch):
    enabled = []
    monkeypatch.setattr("buflesson.devices.enable", lambda: enabled.append(True))
    choice = pick_device()
    device, why = choice  # notebooks unpack two values
    assert isinstance(device, torch.device) and why.endswith(".") and "\n" not in why
    assert choice.standin == (device == STANDIN) == (accelerator() is None)
    assert enabled == ([True] if choice.standin else [])


def test_without_accelerator_it_falls_back_to_the_stand_in(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.xpu, "is_available", lambda: False)
    monkeypatch.setattr("buflesson.devices.enable", lambda: None)
    choice = pick_device()
    assert choice == DeviceChoice(STANDIN, STANDIN_WHY) and choice.standin
    assert "stand-in" in choice.why and "meta" in choice.why
    assert checking_device() == STANDIN


def test_an_accelerator_is_not_a_stand_in():
    assert not DeviceChoice(torch.device("cuda"), "Using the accelerator: cuda.").standin


def test_choosing_the_stand_in_turns_the_rule_on_for_the_process():
    script = (
        "import torch\n"
        "for name in ('cuda', 'xpu'): getattr(torch, name).is_available = lambda: False\n"
        "torch.backends.mps.is_available = lambda: False\n"
        "from buflesson import pick_device, plain_offset_model, sample_input\n"
        "device, why = pick_device()\n"
        "try:\n"
        "    plain_offset_model().linear.to(device)(sample_input()).sum()\n"
        "except RuntimeError as error:\n"
        "    print(type(error).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "StandInDeviceError", done.stderr


def test_the_chosen_device_shows_the_plain_attribute_failure():
    device = checking_device()
    model = plain_offset_model().to(device)
    assert model.linear.weight.device.type == device.type
    assert model.offset.device.type == "cpu"
    with device_rule(), pytest.raises(RuntimeError, match="same device"):
        model(sample_input().to(device))


def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text())
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize(
    "cpu_text, gpu_text",
    [
        (STANDIN_WHY, "Using the accelerator: cuda."),
        (tr(STANDIN_WHY, "zh"), render("Using the accelerator: {device}.", "zh", device="cuda")),
        (
            "No accelerator here: using the meta device, "
            "which refuses a CPU tensor as a GPU would (its message differs).",
            "Using the accelerator: mps.",
        ),
        (
            "StandInDeviceError: Expected all tensors to be on the same device, but found at least two "
            "devices, meta and cpu! (buflesson's GPU stand-in, which refuses aten.add.Tensor here as "
            "CUDA does)",
            "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, "
            "cuda:0 and cpu!",
        ),
        (
            "Expected all tensors to be on the same device, but got mat2 is on cpu, different from other "
            "tensors on meta (buflesson's GPU stand-in, which refuses aten.mm.default here as CUDA does)",
            "Expected all tensors to be on the same device, but got mat2 is on cpu, different from other "
            "tensors on cuda:0 (when checking argument in method wrapper_CUDA_mm)",
        ),
        ("linear.weight  parameter  yes  meta  float32", "linear.weight  parameter  yes  cuda:0  float32"),
    ],
)
def test_nbval_sanitizing_makes_cpu_and_gpu_outputs_equal(cpu_text, gpu_text):
    assert _sanitize(cpu_text) == _sanitize(gpu_text)
    assert _sanitize("offset  plain attribute  cpu") == "offset  plain attribute  cpu"
