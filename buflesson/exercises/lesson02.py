"""Lesson 2: `.to(device)` and `.half()` skip plain attributes and tensors made inside forward."""

from __future__ import annotations

import torch
from torch import nn

from buflesson.checks import Fail, NotAttempted
from buflesson.devices import checking_device, device_rule
from buflesson.inventory import inventory
from buflesson.legacy_probes import build_isolated, legacy_exercise, move, same
from buflesson.models import SEED, plain_offset_model, sample_input

FIXED_DEVICE_HINT = (
    "A tensor made inside forward with torch.arange(...) or torch.ones(...) lands on the CPU unless you "
    "say otherwise: create it with device=x.device so it follows the input."
)

# A tensor made in forward lands on the CPU, and its dtype comes from its data unless given: a float32 or
# int64 ramp meets a float64 input after .double(), which a matrix product refuses.
FOLLOW_DTYPE_HINT = (
    "A tensor made inside forward lands on the CPU, and its dtype comes from its data "
    "(torch.arange(1, 4) is int64, torch.ones(3) is float32) unless you say otherwise: create it with "
    "device=x.device, dtype=x.dtype so it follows the input."
)


def _forward(model: nn.Module, x: torch.Tensor, where: str, hint: str = FIXED_DEVICE_HINT) -> torch.Tensor:
    """Run the student's forward; a device or dtype error gets `hint`."""
    try:
        out = model(x)
    except NotImplementedError as error:
        raise NotAttempted from error
    except Exception as error:
        text = str(error)
        known = any(word in text.lower() for word in ("device", "cuda", "dtype"))
        raise Fail(
            f"{where}, forward raised {type(error).__name__}: {text}",
            hint if known else "Run your class on an example input and read the error.",
        ) from None
    if not isinstance(out, torch.Tensor):
        raise Fail(f"forward returned {type(out).__name__}, not a tensor.", "Keep the given `return` line.")
    return out


@legacy_exercise(
    "2.1",
    "Create the ramp on the input's device",
    passed="The ramp is made where the input lives: forward works on the CPU, on the device and in float64.",
)
def ramp_on_input_device(answer: object) -> None:
    x = sample_input()
    model = build_isolated(answer, seed=SEED)
    tensors_before = set(inventory(model).names())
    out = _forward(model, x, "On the cpu")
    linear = getattr(model, "linear", None)
    if not isinstance(linear, nn.Linear):
        raise Fail(
            "The model has no nn.Linear named `linear`.", "Keep the given line self.linear = nn.Linear(3, 2)."
        )
    added = set(inventory(model).names()) - tensors_before
    if added:
        raise Fail(
            f"forward stores a new tensor on the model ({', '.join(sorted(added))}): it is created inside "
            "forward, after any .to() that came before.",
            "Keep the ramp a local variable of forward, made on x.device, and do not store it on self.",
        )
    if not same(out, linear(x * torch.arange(1, x.shape[-1] + 1))):
        raise Fail(
            "forward gives other values than linear(x * ramp) with ramp = [1, 2, 3].",
            "The ramp is torch.arange(1, n + 1) with n = x.shape[-1].",
        )

    # On a machine without an accelerator the device is buflesson's GPU stand-in, which refuses what
    # CUDA refuses (a CPU tensor in @, F.linear or indexing included), so the check fails where a GPU would.
    device = checking_device()
    where = f"After model.to('{device.type}')"
    with device_rule():
        on_device = move(build_isolated(answer, seed=SEED), device)
        out = _forward(on_device, x.to(device), where)
    if out.device.type != device.type:
        raise Fail(f"{where}, forward returned a tensor on {out.device}.", FIXED_DEVICE_HINT)

    doubled = move(build_isolated(answer, seed=SEED), torch.float64)
    out = _forward(doubled, x.double(), "After model.double()", FOLLOW_DTYPE_HINT)
    if out.dtype != torch.float64:
        raise Fail(
            f"After model.double(), forward returned {out.dtype} instead of torch.float64.", FOLLOW_DTYPE_HINT
        )


_ALIASES = {"half": "float16", "float": "float32", "double": "float64"}


def _dtype_name(value: object) -> str | None:
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, str):
        name = value.strip().removeprefix("torch.")
        return _ALIASES.get(name, name)
    return None


@legacy_exercise(
    "2.2",
    "Predict what `.half()` converts",
    passed="Right: .half() converts the parameters and skips the plain attribute.",
)
def predict_half(answer: object) -> None:
    if not isinstance(answer, dict):
        raise Fail(
            f"Expected a dict from tensor name to dtype, got {type(answer).__name__}.",
            'Write it like {"linear.weight": torch.float16, ...}, one entry per tensor of the model.',
        )
    truth = {row.name: row.dtype for row in inventory(plain_offset_model().half())}
    missing = [name for name in truth if name not in answer]
    if missing:
        raise Fail(
            f"No prediction for: {', '.join(missing)}.",
            "Give one entry per row of inventory(plain_offset_model()).",
        )
    extra = sorted(str(name) for name in answer if name not in truth)
    if extra:
        raise Fail(
            f"The model has no tensor named: {', '.join(extra)}.", f"The names are {', '.join(truth)}."
        )
    for name, expected in truth.items():
        guess = _dtype_name(answer[name])
        if guess is None:
            raise Fail(
                f"{name}: {answer[name]!r} is not a dtype.", "Write dtypes as torch.float16 or torch.float32."
            )
        if guess == expected:
            continue
        if name == "offset":
            raise Fail(
                f"offset stays {expected}: it is a plain attribute, which .half() does not see.",
                ".half(), .double(), .to(...) and .cuda() convert parameters and buffers only.",
            )
        raise Fail(
            f"{name} becomes {expected}: .half() converts every floating-point parameter.",
            "Parameters follow every conversion of the module: .half(), .double(), .to(...).",
        )
