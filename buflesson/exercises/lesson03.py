"""Lesson 3: `register_buffer` keeps fixed tensors in the state: saved, moved, never stepped."""

from __future__ import annotations

import torch
from torch import nn

from buflesson.checks import Fail, exercise
from buflesson.inventory import BUFFER
from buflesson.models import SEED, Standardize, sample_input
from buflesson.probes import (
    build_isolated,
    call_student,
    expect_kind,
    move,
    same,
    save_and_reload,
    sgd_step,
)


def _expect_values(model: nn.Module, name: str, expected: torch.Tensor) -> None:
    actual = getattr(model, name)
    if not same(actual, expected):
        raise Fail(
            f"{name} holds {actual.tolist()}, expected {expected.tolist()}.",
            f"Register the tensor torch.tensor({expected.tolist()}).",
        )


def _runs_on_meta(answer: object, x: torch.Tensor) -> None:
    """Move a fresh model to the meta device and run it there: every tensor it uses must follow."""
    model = move(build_isolated(answer, seed=SEED), torch.device("meta"))
    out = call_student(model, x.to("meta"), what="After model.to('meta'), forward")
    if out.device.type != "meta":
        raise Fail(
            f"After model.to('meta'), forward returned a tensor on {out.device}.",
            "Every tensor forward uses must be a parameter or a buffer so that .to() moves it.",
        )


@exercise(
    "3.1",
    "Keep mean and std as buffers",
    passed="mean and std are buffers: saved, reloaded, and moved with the model.",
)
def standardize_with_buffers(answer: object) -> None:
    x = sample_input()
    model = build_isolated(answer, seed=SEED)
    for name in ("mean", "std"):
        expect_kind(model, name, BUFFER, sample=x)
    with torch.random.fork_rng(devices=[]):
        reference = Standardize()
    _expect_values(model, "mean", reference.mean)
    _expect_values(model, "std", reference.std)
    out = call_student(model, x, what="forward")
    hidden, last = getattr(model, "hidden", None), getattr(model, "out", None)
    if not (isinstance(hidden, nn.Linear) and isinstance(last, nn.Linear)):
        raise Fail("The layers `hidden` and `out` are missing.", "Keep the two given nn.Linear lines.")
    expected = last(torch.relu(hidden((x - reference.mean) / reference.std)))
    if not same(out, expected):
        raise Fail("forward gives other values than Standardize does.", "Keep the given forward.")

    with torch.no_grad():
        model.mean += 1.0
        model.std *= 2.0
    fresh = save_and_reload(model, lambda: build_isolated(answer, seed=SEED))
    for name in ("mean", "std"):
        if not same(getattr(fresh, name), getattr(model, name)):
            raise Fail(f"{name} lost its value in a save/load round trip through a file.")

    _runs_on_meta(answer, x)


MASK = torch.tril(torch.ones(3, 3))


@exercise(
    "3.2",
    "A mask the optimizer leaves alone",
    passed="mask is a buffer: not a parameter, no gradient, unchanged by the optimizer step, and saved.",
)
def masked_linear(answer: object) -> None:
    x = sample_input()
    model = build_isolated(answer, seed=SEED)
    expect_kind(model, "mask", BUFFER, sample=x)
    _expect_values(model, "mask", MASK)
    linear = getattr(model, "linear", None)
    if not isinstance(linear, nn.Linear):
        raise Fail(
            "The model has no nn.Linear named `linear`.", "Keep the given line self.linear = nn.Linear(3, 3)."
        )
    out = call_student(model, x, what="forward")
    if not same(out, nn.functional.linear(x, linear.weight * MASK, linear.bias)):
        raise Fail("forward gives other values than the masked layer should.", "Keep the given forward.")
    if model.mask.requires_grad:
        raise Fail(
            "mask requires grad, so backward() would compute a gradient nobody uses.",
            "Register the tensor without requires_grad=True: torch.tril(torch.ones(3, 3)) is all it takes.",
        )
    weight = linear.weight.detach().clone()
    sgd_step(model, x)
    if model.mask.grad is not None:
        raise Fail("mask got a gradient in backward().", "Register a tensor that does not require grad.")
    if not same(model.mask, MASK):
        raise Fail(
            "The optimizer step changed mask.", "Register mask as a buffer: the optimizer never sees it."
        )
    if same(linear.weight, weight):
        raise Fail(
            "The optimizer step did not change linear.weight.",
            "Keep the given layer trainable; only the mask is fixed.",
        )

    fresh = save_and_reload(model, lambda: build_isolated(answer, seed=SEED))
    if not same(fresh.mask, model.mask):
        raise Fail("mask lost its value in a save/load round trip through a file.")
    _runs_on_meta(answer, x)
