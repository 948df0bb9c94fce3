"""Lesson 4: a buffer gets a gradient only when it requires grad; the optimizer never steps it."""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable

import torch
from torch import nn

from buflesson.checks import Fail
from buflesson.inventory import BUFFER
from buflesson.legacy_probes import call_student, kind_of, legacy_exercise, same
from buflesson.models import BufferOffset, sample_input


def _expect_function(answer: object, exercise_id: str, name: str) -> None:
    if not callable(answer) or isinstance(answer, (type, nn.Module)):
        raise Fail(
            f"Expected the function {name}, got {type(answer).__name__}.",
            f"Pass the function itself, without calling it: check({exercise_id!r}, {name}).",
        )


class _Scaled(nn.Module):
    """A linear layer whose output is multiplied by a fixed `scale` buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("scale", torch.tensor([2.0, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """`build()` under `seed`, leaving the student's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _gradients(model: nn.Module, name: str, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The buffer's gradient and every parameter's, computed on a copy: the student's model is untouched."""
    twin = copy.deepcopy(model)
    buffer = getattr(twin, name).requires_grad_(True)
    params = dict(twin.named_parameters())
    grads = torch.autograd.grad(twin(x).pow(2).mean(), [buffer, *params.values()])
    return grads[0], dict(zip(params, grads[1:], strict=True))


def _rounded(tensor: torch.Tensor) -> list[float]:
    return [round(value, 4) for value in tensor.detach().flatten().tolist()]


def _check_gradient(answer: object, model: nn.Module, name: str, x: torch.Tensor) -> None:
    expected, param_grads = _gradients(model, name, x)
    weights = {key: value.detach().clone() for key, value in model.named_parameters()}
    got = call_student(answer, model, name, x, what=f"buffer_gradient(model, {name!r}, x)")
    buffer = getattr(model, name, None)
    if kind_of(model, name) != BUFFER:
        raise Fail(
            f"After buffer_gradient, {name!r} is no longer a buffer but a {kind_of(model, name)}.",
            "Assigning an nn.Parameter to a buffer's name turns it into a parameter. Switch on "
            f"gradients in place instead: getattr(model, {name!r}).requires_grad_(True).",
        )
    if got is None:
        if buffer.grad is not None:
            raise Fail(
                f"buffer_gradient returned None, though model.{name}.grad holds a gradient.",
                "Return the gradient at the end of the function.",
            )
        raise Fail(
            "buffer_gradient returned None: backward() left the buffer's .grad empty.",
            "A buffer registered from a plain tensor does not require grad, so backward() skips it. "
            f"Switch it on before the forward pass: getattr(model, {name!r}).requires_grad_(True).",
        )
    if not isinstance(got, torch.Tensor):
        raise Fail(f"buffer_gradient returned {type(got).__name__}, not a tensor.", "Return the gradient.")
    if got.shape != expected.shape or not torch.allclose(got.detach(), expected, atol=1e-6):
        for param_name, grad in param_grads.items():
            if got.shape == grad.shape and torch.allclose(got.detach(), grad, atol=1e-6):
                raise Fail(
                    f"buffer_gradient returned the gradient of {param_name}, a parameter.",
                    f"Read the buffer's gradient: getattr(model, name).grad, here model.{name}.grad.",
                )
        raise Fail(
            f"The gradient for {name!r} is {_rounded(got)}, expected {_rounded(expected)}.",
            "Use the loss model(x).pow(2).mean() and call backward() once.",
        )
    if any(not same(value, weights[key]) for key, value in model.named_parameters()):
        raise Fail(
            "buffer_gradient changed the model's parameters.",
            "Only compute the gradient: no optimizer step.",
        )
    if buffer.requires_grad:
        raise Fail(
            f"After buffer_gradient, model.{name} still requires grad.",
            "Leave the model as you found it: switch the buffer back off with requires_grad_(False), "
            "or every later backward() fills its .grad for nothing.",
        )
    if buffer.grad is not None:
        raise Fail(
            f"After buffer_gradient, model.{name}.grad still holds the gradient.",
            f"Clear it (model.{name}.grad = None), or compute it with torch.autograd.grad, which "
            "fills no .grad at all.",
        )


@legacy_exercise(
    "4.1",
    "The gradient of the loss with respect to a buffer",
    passed="Right: the buffer got a gradient only while it required grad, and the model is as it was.",
)
def buffer_gradient(answer: object) -> None:
    _expect_function(answer, "4.1", "buffer_gradient")
    _check_gradient(answer, _seeded(BufferOffset, 3), "offset", sample_input(seed=3))
    _check_gradient(answer, _seeded(_Scaled, 4), "scale", sample_input(rows=5, seed=4))


class _Mixed(nn.Module):
    """Every kind of tensor: trainable and frozen parameters, buffers (one requires grad)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)  # 8 trainable numbers
        self.norm = nn.BatchNorm1d(2)  # 4 trainable; buffers 2 + 2 + 1
        self.frozen = nn.Parameter(torch.zeros(4), requires_grad=False)
        self.register_buffer("table", torch.zeros(5))
        self.register_buffer("probe", torch.zeros(6, requires_grad=True))
        self.register_buffer("mask", torch.ones(3), persistent=False)


def _count(model: nn.Module, answer: object) -> int | None:
    got = call_student(answer, model, what="trainable_count(model)")
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool):
        return None
    try:
        return operator.index(got)
    except TypeError:
        return None


def _numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


@legacy_exercise(
    "4.2",
    "Count what an optimizer step can change",
    passed="Right: only parameters that require grad are stepped; buffers never are.",
)
def trainable_count(answer: object) -> None:
    _expect_function(answer, "4.2", "trainable_count")
    with torch.random.fork_rng(devices=[]):
        model = _Mixed()
    got = _count(model, answer)
    if got is None:
        raise Fail(
            "trainable_count(model) did not return a whole number.",
            "Return the total as an int: sum(p.numel() for p in ...).",
        )
    params = list(model.parameters())
    expected = _numel(p for p in params if p.requires_grad)
    mistakes = {
        _numel(params): (
            "counted the frozen parameter too",
            "parameters() also lists parameters with requires_grad=False. They get no gradient, so "
            "the step skips them: keep only p.requires_grad.",
        ),
        _numel(model.state_dict().values()): (
            "counted everything in state_dict()",
            "state_dict() holds buffers and frozen parameters too. Count model.parameters() that "
            "require grad.",
        ),
        _numel(t for t in params + list(model.buffers()) if t.requires_grad): (
            "counted the buffer that requires grad",
            "A buffer that requires grad gets a .grad in backward(), but it is not in parameters(), "
            "so the optimizer never steps it. Count model.parameters() only.",
        ),
        _numel(params + list(model.buffers())): (
            "counted parameters and buffers",
            "Buffers are never handed to the optimizer. Count model.parameters() that require grad.",
        ),
        sum(1 for p in params if p.requires_grad): (
            "counted tensors, not numbers",
            "Each parameter holds p.numel() numbers: add those up.",
        ),
    }
    if got != expected:
        if got in mistakes:
            what, hint = mistakes[got]
            raise Fail(f"trainable_count gave {got}, expected {expected}: it {what}.", hint)
        raise Fail(
            f"trainable_count gave {got} for a model with {expected} trainable numbers.",
            "Add up p.numel() for the parameters in model.parameters() that require grad.",
        )

    for param in model.parameters():  # the "unfreeze everything" loop of the lesson
        param.requires_grad_(True)
    after = _count(model, answer)
    expected = _numel(model.parameters())
    if after != expected:
        raise Fail(
            f"After the unfreeze loop, trainable_count gave {after}, expected {expected}.",
            "Count at call time: read p.requires_grad each time, do not remember an earlier answer.",
        )
    with torch.random.fork_rng(devices=[]):
        other = nn.Linear(4, 3)
    if _count(other, answer) != 15:
        raise Fail(
            "trainable_count gave a wrong count for nn.Linear(4, 3) (15 numbers).",
            "Work from the model you are given, not from the lesson's model.",
        )
