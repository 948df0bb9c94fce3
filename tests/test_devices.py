"""pick_device(): a real accelerator when present, else meta, which fails as a GPU does."""

import re
from pathlib import Path

import pytest
import torch

from buflesson import pick_device, plain_offset_model, sample_input

ROOT = Path(__file__).resolve().parent.parent


def test_pick_device_returns_a_device_and_an_explanation():
    choice = pick_device()
    assert isinstance(choice.device, torch.device)
    assert choice.why.endswith(".") and "\n" not in choice.why
    if not torch.cuda.is_available():
        assert choice.device.type in ("meta", "mps", "xpu")


def test_without_accelerator_it_falls_back_to_meta(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.xpu, "is_available", lambda: False)
    choice = pick_device()
    assert choice.device == torch.device("meta")
    assert "meta" in choice.why


def test_the_chosen_device_shows_the_plain_attribute_failure():
    device = pick_device().device
    model = plain_offset_model().to(device)
    assert model.linear.weight.device.type == device.type
    assert model.offset.device.type == "cpu"
    with pytest.raises(RuntimeError, match="device"):
        model(sample_input().to(device))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_error_is_pytorchs_device_mismatch():
    model = plain_offset_model().cuda()
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        model(sample_input().cuda())


def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text())
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize(
    "cpu_text, gpu_text",
    [
        (
            (
                "No accelerator here: using the meta device, "
                "which refuses a CPU tensor as a GPU would (its message differs)."
            ),
            "Using the accelerator: cuda.",
        ),
        (
            "Tensor on device cpu is not on the expected device meta!",
            "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
        ),
        ("linear.weight  parameter  yes  meta  float32", "linear.weight  parameter  yes  cuda:0  float32"),
    ],
)
def test_nbval_sanitizing_makes_cpu_and_gpu_outputs_equal(cpu_text, gpu_text):
    assert _sanitize(cpu_text) == _sanitize(gpu_text)
    assert _sanitize("offset  plain attribute  cpu") == "offset  plain attribute  cpu"
