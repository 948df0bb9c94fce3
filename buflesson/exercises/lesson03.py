"""Lesson 3: `register_buffer` keeps fixed tensors in the state: saved, moved, never stepped."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from buflesson.checks import Fail, exercise
from buflesson.handles import Remote
from buflesson.i18n import N_
from buflesson.inventory import BUFFER
from buflesson.probes import (
    Draw,
    build,
    choose_weights,
    close,
    expect_dtype_follows,
    expect_follows_double,
    expect_kind,
    expect_module_class,
    expect_own_tensors,
    expect_plain_forward,
    expect_runs_on_device,
    forward,
    leaves_global_state,
    rounded,
    same,
    save_and_reload,
    sgd_step,
    state_dict,
    student,
    tensor,
)

MEAN = torch.tensor([0.5, -1.0, 2.0])
STD = torch.tensor([1.0, 2.0, 0.5])
MASK = torch.tril(torch.ones(3, 3))
STANDARDIZE_LAYERS = ("hidden.weight", "hidden.bias", "out.weight")
LESSON_ROWS = (4,)  # the batch size the lesson's sample_input() gives: never the only one checked


def _expect_values(model: Remote, name: str, expected: torch.Tensor) -> torch.Tensor:
    actual = tensor(model, name)
    if not same(actual, expected):
        raise Fail(
            "{name} starts as {actual}, but the exercise gives {expected}.",
            "Register the values the exercise states: torch.tensor({expected}).",
            name=name,
            actual=rounded(actual),
            expected=expected.tolist(),
        )
    if actual.dtype != torch.float32:
        raise Fail(
            "{name} is {dtype}, but the model's layers are torch.float32: forward would mix the two.",
            "Keep the model's tensors float32 (torch.tensor([...]) of Python floats gives float32), so "
            "that .double() and .float() decide the dtype of the whole model.",
            name=name,
            dtype=str(actual.dtype),
        )
    return actual


def _expect_float32_layer(model: Remote, name: str) -> None:
    """The given layer as nn.Linear makes it: float32 (not built under another default dtype)."""
    layer = state_dict(model).get(name)
    if layer is not None and layer.dtype != torch.float32:
        raise Fail(
            "{name} is {dtype}, but a model's tensors are torch.float32 until .double() converts them.",
            "Build the model with the default dtype, float32: change no dtype in __init__ "
            "(torch.set_default_dtype included).",
            name=name,
            dtype=str(layer.dtype),
        )


def _standardize(x: torch.Tensor, state: dict, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """What Standardize computes, from its state: out(relu(hidden((x - mean) / std)))."""
    hidden = F.linear((x - mean) / std, state["hidden.weight"], state["hidden.bias"])
    return F.linear(torch.relu(hidden), state["out.weight"])


def _layers(state: dict, names: tuple[str, ...], hint: str) -> None:
    missing = [name for name in names if name not in state]
    if missing:
        raise Fail("The model has no {missing}.", hint, missing=", ".join(missing))


@exercise(
    "3.1",
    "Keep `mean` and `std` as buffers",
    passed="mean and std are buffers: saved, reloaded, and moved with the model.",
)
def standardize_with_buffers(answer: Remote) -> None:
    expect_module_class(answer, "Standardize")
    draw = Draw()
    before = answer.session.state()
    rows_a, rows_b = draw.sizes(2, 2, 9, avoid=LESSON_ROWS)
    x, y = draw.randn(rows_a, 3), draw.randn(rows_b, 3)
    model = build(answer, seed=draw.seed())
    rows = {name: expect_kind(answer, model, name, BUFFER, sample=x) for name in ("mean", "std")}
    _expect_float32_layer(model, "hidden.weight")
    mean = _expect_values(model, "mean", MEAN)
    std = _expect_values(model, "std", STD)
    for name, expected in (("mean", MEAN), ("std", STD)):
        if rows[name]["requires_grad"]:
            raise Fail(
                "{name} requires grad, so backward() computes a gradient for it that nobody uses.",
                "Register the tensor without requires_grad=True: torch.tensor({expected}) is all it takes.",
                name=name,
                expected=expected.tolist(),
            )
    _layers(state_dict(model), STANDARDIZE_LAYERS, N_("Keep the two given nn.Linear lines."))
    state = choose_weights(model, STANDARDIZE_LAYERS, draw)
    for sample in (x, y):
        out = forward(model, sample)
        expect_dtype_follows(out, sample)
        if not close(out, _standardize(sample, state, mean, std)):
            raise Fail(
                "forward gives other values than out(relu(hidden((x - mean) / std))) for a batch of "
                "{rows} rows.",
                "Keep the given forward; it must work for any number of rows.",
                rows=sample.shape[0],
            )

    expect_own_tensors(answer, ("mean", "std"))
    expect_plain_forward(answer, x)
    with student("changing mean and std in place"):
        model.attr("mean", keep=True).method("add_", 1.5)
        model.attr("std", keep=True).method("mul_", 2.0)
    fresh = save_and_reload(model, lambda: build(answer, seed=draw.seed()))
    for name, expected in (("mean", mean + 1.5), ("std", std * 2.0)):
        if not same(tensor(fresh, name), expected):
            raise Fail("{name} lost its value in a save/load round trip through a file.", name=name)
    if not close(forward(fresh, y), forward(model, y)):
        raise Fail("The reloaded model computes something else than the saved one.")

    expect_runs_on_device(answer, x, ("mean", "std"))
    doubled = expect_follows_double(answer, x, ("mean", "std"))
    expected = _standardize(
        x.double(), choose_weights(doubled, STANDARDIZE_LAYERS, draw), MEAN.double(), STD.double()
    )
    if not close(forward(doubled, x.double()), expected):
        raise Fail("After model.double(), forward gives other values than before.")
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))


@exercise(
    "3.2",
    "A mask the optimizer leaves alone",
    passed="mask is a buffer: not a parameter, no gradient, unchanged by the optimizer step, and saved.",
)
def masked_linear(answer: Remote) -> None:
    expect_module_class(answer, "MaskedLinear")
    draw = Draw()
    before = answer.session.state()
    rows_a, rows_b = draw.sizes(2, 2, 9, avoid=LESSON_ROWS)
    x, y = draw.randn(rows_a, 3), draw.randn(rows_b, 3)
    model = build(answer, seed=draw.seed())
    row = expect_kind(answer, model, "mask", BUFFER, sample=x)
    mask = tensor(model, "mask")
    if not same(mask, MASK):
        raise Fail(
            "mask starts as {actual}, but the exercise gives torch.tril(torch.ones(3, 3)).",
            "Register the lower-triangular mask: torch.tril(torch.ones(3, 3)).",
            actual=rounded(mask),
        )
    _expect_float32_layer(model, "linear.weight")
    if mask.dtype == torch.float64:
        raise Fail(
            "{name} is {dtype}, but the model's layers are torch.float32: forward would mix the two.",
            "Keep the model's tensors float32 ({given} gives float32), so that .double() and .half() "
            "decide the dtype of the whole model.",
            name="mask",
            given="torch.tril(torch.ones(3, 3))",
            dtype=str(mask.dtype),
        )
    if row["requires_grad"]:
        raise Fail(
            "mask requires grad, so backward() computes a gradient for it that nobody uses.",
            "Register the tensor without requires_grad=True: torch.tril(torch.ones(3, 3)) is all it takes.",
        )
    _layers(
        state_dict(model),
        ("linear.weight", "linear.bias"),
        N_("Keep the given line self.linear = nn.Linear(3, 3)."),
    )
    state = choose_weights(model, ("linear.weight", "linear.bias"), draw)
    for sample in (x, y):
        expected = F.linear(sample, state["linear.weight"] * MASK, state["linear.bias"])
        out = forward(model, sample)
        expect_dtype_follows(out, sample)
        if not close(out, expected):
            raise Fail(
                "forward gives other values than the masked layer for a batch of {rows} rows.",
                "Keep the given forward; it must work for any number of rows.",
                rows=sample.shape[0],
            )

    sgd_step(model, x)
    if tensor(model, "mask").requires_grad or model.attr("mask.grad") is not None:
        raise Fail("mask got a gradient in backward().", "Register a tensor that does not require grad.")
    if not same(tensor(model, "mask"), MASK):
        raise Fail(
            "The optimizer step changed mask.", "Register mask as a buffer: the optimizer never sees it."
        )
    if same(tensor(model, "linear.weight"), state["linear.weight"]):
        raise Fail(
            "The optimizer step did not change linear.weight.",
            "Keep the given layer trainable; only the mask is fixed.",
        )

    expect_own_tensors(answer, ("mask",))
    expect_plain_forward(answer, x)
    with student("changing mask in place"):
        model.attr("mask", keep=True).method("fill_", 1)
    fresh = save_and_reload(model, lambda: build(answer, seed=draw.seed()))
    if not same(tensor(fresh, "mask"), torch.ones(3, 3)):
        raise Fail("mask lost its value in a save/load round trip through a file.")
    expect_runs_on_device(answer, x, ("mask",))
    expect_follows_double(answer, x, ())
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))
