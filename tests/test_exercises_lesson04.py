"""Lesson 4 checks: 4.1 the gradient of a buffer, 4.2 counting what an optimizer step can change."""

import pytest
import torch
from torch import nn

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED


def loss_of(model, x):
    return model(x).pow(2).mean()


def gradient_right(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    try:
        (grad,) = torch.autograd.grad(loss_of(model, x), buffer)
    finally:
        buffer.requires_grad_(False)
    return grad


def gradient_with_backward(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    loss_of(model, x).backward()
    grad = buffer.grad
    buffer.grad = None
    buffer.requires_grad_(False)
    return grad


def gradient_without_requires_grad(model, name, x):
    loss_of(model, x).backward()
    return getattr(model, name).grad


def gradient_not_returned(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    loss_of(model, x).backward()
    buffer.requires_grad_(False)


def gradient_as_parameter(model, name, x):
    setattr(model, name, nn.Parameter(getattr(model, name).clone()))
    loss_of(model, x).backward()
    return getattr(model, name).grad


def gradient_left_on(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_of(model, x), buffer)
    return grad


def gradient_left_in_grad(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    loss_of(model, x).backward()
    buffer.requires_grad_(False)
    return buffer.grad


def gradient_of_sum(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), buffer)
    buffer.requires_grad_(False)
    return grad


def gradient_of_bias(model, name, x):
    loss_of(model, x).backward()
    return model.linear.bias.grad


def gradient_with_step(model, name, x):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    grad = gradient_with_backward(model, name, x)
    optimizer.step()
    return grad


def gradient_not_yet(model, name, x):
    raise NotImplementedError


@pytest.mark.parametrize("answer", [gradient_right, gradient_with_backward])
def test_4_1_accepts_autograd_grad_and_backward(answer):
    result = check("4.1", answer)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (gradient_without_requires_grad, "backward() left the buffer's .grad empty", "requires_grad_(True)"),
        (gradient_not_returned, "returned None, though model.offset.grad holds", "Return the gradient"),
        (gradient_as_parameter, "no longer a buffer but a parameter", "turns it into a parameter"),
        (gradient_left_on, "still requires grad", "requires_grad_(False)"),
        (gradient_left_in_grad, "grad still holds the gradient", "model.offset.grad = None"),
        (gradient_of_sum, "The gradient for 'offset' is", "model(x).pow(2).mean()"),
        (gradient_of_bias, "gradient of linear.bias, a parameter", "model.scale.grad"),
        (gradient_with_step, "changed the model's parameters", "no optimizer step"),
    ],
)
def test_4_1_names_each_mistake(answer, message, hint):
    result = check("4.1", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_4_1_placeholder_and_wrong_types():
    assert check("4.1", ...).status == NOT_ATTEMPTED
    assert check("4.1", gradient_not_yet).status == NOT_ATTEMPTED
    assert check("4.1", None).status == FAILED
    assert "Pass the function itself" in check("4.1", torch.ones(2)).hint


@pytest.mark.parametrize("exercise_id, answer", [("4.1", gradient_right), ("4.2", lambda m: 12)])
def test_4_checks_leave_the_students_random_state_alone(exercise_id, answer):
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check(exercise_id, answer)
    assert torch.equal(torch.rand(1), expected)


def count_right(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_as_tensor(model):
    return torch.tensor(count_right(model))


@pytest.mark.parametrize("answer", [count_right, count_as_tensor])
def test_4_2_accepts_the_count(answer):
    result = check("4.2", answer)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (lambda m: sum(p.numel() for p in m.parameters()), "counted the frozen parameter", "p.requires_grad"),
        (lambda m: sum(t.numel() for t in m.state_dict().values()), "everything in state_dict()", "buffers"),
        (
            lambda m: sum(t.numel() for t in [*m.parameters(), *m.buffers()] if t.requires_grad),
            "counted the buffer that requires grad",
            "not in parameters()",
        ),
        (
            lambda m: sum(t.numel() for t in [*m.parameters(), *m.buffers()]),
            "counted parameters and buffers",
            "never handed to the optimizer",
        ),
        (lambda m: sum(1 for p in m.parameters() if p.requires_grad), "counted tensors", "p.numel()"),
        (lambda m: 12, "After the unfreeze loop, trainable_count gave 12, expected 16", "at call time"),
        (lambda m: 13, "gave 13 for a model with 12 trainable numbers", "require grad"),
        (lambda m: 12.0, "did not return a whole number", "as an int"),
        (lambda m: True, "did not return a whole number", "as an int"),
    ],
)
def test_4_2_names_each_mistake(answer, message, hint):
    result = check("4.2", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_4_2_placeholder_and_wrong_types():
    assert check("4.2", ...).status == NOT_ATTEMPTED
    assert check("4.2", None).status == FAILED
    assert check("4.2", 12).status == FAILED
    assert check("4.2", nn.Linear).status == FAILED
