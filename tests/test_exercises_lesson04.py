"""Lesson 4 checks: 4.1 the gradient of a buffer, 4.2 counting what an optimizer step can change."""

import copy
import importlib
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from buflesson import check
from buflesson.probes import Draw
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests


def loss_of(model, x):
    return model(x).pow(2).mean()


# --- 4.1: right answers ----------------------------------------------------------------------------


def gradient_autograd(model, name, x):  # the answer notebook's answer
    buffer = getattr(model, name)
    was = buffer.requires_grad
    buffer.requires_grad_(True)
    try:
        (grad,) = torch.autograd.grad(model(x).pow(2).mean(), buffer)
    finally:
        buffer.requires_grad_(was)
    return grad


def gradient_backward_inputs(model, name, x):  # backward into the buffer only, old .grad put back
    buffer = getattr(model, name)
    was, old = buffer.requires_grad, buffer.grad
    buffer.grad = None
    buffer.requires_grad_(True)
    loss_of(model, x).backward(inputs=[buffer])
    grad = buffer.grad
    buffer.grad = old
    buffer.requires_grad_(was)
    return grad


def gradient_backward_restore_all(model, name, x):  # plain backward, every .grad put back after
    buffer = getattr(model, name)
    tensors = [*model.parameters(), buffer]
    old = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    was = buffer.requires_grad
    buffer.requires_grad_(True)
    with torch.enable_grad():
        loss_of(model, x).backward()
    grad = buffer.grad
    for t, g in zip(tensors, old, strict=True):
        t.grad = g
    buffer.requires_grad_(was)
    return grad


def gradient_functional(model, name, x):  # a detached copy of the buffer swapped in by functional_call
    leaf = getattr(model, name).detach().clone().requires_grad_(True)
    out = torch.func.functional_call(model, {name: leaf}, (x,))
    return torch.autograd.grad(out.pow(2).mean(), leaf)[0]


def gradient_swapped_leaf(model, name, x):  # a leaf copy put in the buffer's place, then the original back
    original = getattr(model, name)
    leaf = original.detach().clone().requires_grad_(True)
    setattr(model, name, leaf)
    try:
        (grad,) = torch.autograd.grad(loss_of(model, x), leaf)
    finally:
        setattr(model, name, original)
    return grad


def gradient_on_a_copy(model, name, x):  # the model itself is never touched
    twin = copy.deepcopy(model)
    buffer = getattr(twin, name)
    buffer.grad = None
    buffer.requires_grad_(True)
    loss_of(twin, x).backward()
    return buffer.grad.detach()


# --- 4.1: wrong answers ----------------------------------------------------------------------------


def gradient_without_requires_grad(model, name, x):
    loss_of(model, x).backward()
    return getattr(model, name).grad


def gradient_not_returned(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    loss_of(model, x).backward(inputs=[buffer])
    buffer.requires_grad_(False)


def gradient_autograd_not_returned(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    torch.autograd.grad(loss_of(model, x), buffer)
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
    was = buffer.requires_grad
    buffer.requires_grad_(True)
    loss_of(model, x).backward(inputs=[buffer])
    buffer.requires_grad_(was)
    return buffer.grad


def gradient_params_grads_left(model, name, x):  # plain backward, only the buffer cleaned up
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    loss_of(model, x).backward()
    grad = buffer.grad
    buffer.grad = None
    buffer.requires_grad_(False)
    return grad


def gradient_zero_grad_reset(model, name, x):  # right with no gradients around; wipes a caller's
    grad = gradient_params_grads_left(model, name, x)
    model.zero_grad()
    return grad


def gradient_switches_off(model, name, x):  # the answer notebook's earlier answer: always switches off
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    try:
        (grad,) = torch.autograd.grad(model(x).pow(2).mean(), buffer)
    finally:
        buffer.requires_grad_(False)
    return grad


def gradient_accumulated(model, name, x):  # forgets that backward() adds to .grad
    buffer = getattr(model, name)
    was, old = buffer.requires_grad, buffer.grad
    buffer.requires_grad_(True)
    loss_of(model, x).backward(inputs=[buffer])
    grad = buffer.grad.clone()
    buffer.grad = old
    buffer.requires_grad_(was)
    return grad


def gradient_drops_old_grad(model, name, x):
    buffer = getattr(model, name)
    was = buffer.requires_grad
    buffer.grad = None
    buffer.requires_grad_(True)
    loss_of(model, x).backward(inputs=[buffer])
    grad = buffer.grad
    buffer.grad = None
    buffer.requires_grad_(was)
    return grad


def gradient_of_sum(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), buffer)
    buffer.requires_grad_(False)
    return grad


def gradient_of_squares_sum(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).pow(2).sum(), buffer)
    buffer.requires_grad_(False)
    return grad


def gradient_of_bias(model, name, x):
    (grad,) = torch.autograd.grad(loss_of(model, x), model.linear.bias)
    return grad


def gradient_with_step(model, name, x):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    grad = gradient_backward_inputs(model, name, x)
    loss_of(model, x).backward()
    optimizer.step()
    return grad


def gradient_as_tuple(model, name, x):
    buffer = getattr(model, name)
    buffer.requires_grad_(True)
    grads = torch.autograd.grad(loss_of(model, x), buffer)
    buffer.requires_grad_(False)
    return grads


def gradient_named_offset(model, name, x):  # hard-codes the lesson's buffer name
    return gradient_autograd(model, "offset", x)


def gradient_in_eval(model, name, x):
    model.eval()
    return gradient_autograd(model, name, x)


def gradient_unfreezes(model, name, x):
    model.requires_grad_(True)
    return gradient_autograd(model, name, x)


def gradient_switches_grad_off(model, name, x):
    grad = gradient_autograd(model, name, x)
    torch.set_grad_enabled(False)
    return grad


def gradient_as_float64(model, name, x):  # the right values, converted
    return gradient_autograd(model, name, x).double()


def gradient_of_a_copy(model, name, x):  # a detached copy: the model never uses it
    copy = getattr(model, name).detach().clone().requires_grad_(True)
    return torch.autograd.grad(model(x).pow(2).mean(), copy)[0]


def gradient_loss_under_no_grad(model, name, x):  # the loss computed without a graph
    buffer = getattr(model, name)
    was = buffer.requires_grad
    buffer.requires_grad_(True)
    with torch.no_grad():
        loss = model(x).pow(2).mean()
    try:
        (grad,) = torch.autograd.grad(loss, buffer)
    finally:
        buffer.requires_grad_(was)
    return grad


def gradient_not_yet(model, name, x):
    raise NotImplementedError


# --- 4.2 ------------------------------------------------------------------------------------------


def count_right(model):  # the answer notebook's answer
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_named(model):
    total = 0
    for _, parameter in model.named_parameters():
        if parameter.requires_grad:
            total += parameter.numel()
    return total


def count_through_an_optimizer(model):
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return 0
    optimizer = torch.optim.SGD(params, lr=0.1)
    return sum(p.numel() for group in optimizer.param_groups for p in group["params"])


def count_as_float(model):  # summed as floats: the count all the same
    return float(sum(p.numel() * 1.0 for p in model.parameters() if p.requires_grad))


def count_with_a_grad_too(model):  # a .grad left from before counts as trainable
    return sum(p.numel() for p in model.parameters() if p.requires_grad or p.grad is not None)


def count_after_zero_grad(model):  # clears the caller's gradients while counting
    model.zero_grad()
    return count_right(model)


def count_as_tensor(model):
    return torch.tensor(count_right(model))


def count_numpy(model):
    return int(sum(np.prod(p.shape) for p in model.parameters() if p.requires_grad))


def count_numpy_integer(model):
    return np.int64(count_right(model))


_REMEMBERED = weakref.WeakKeyDictionary()


def count_remembered(model):  # counts once per model, then repeats itself
    if model not in _REMEMBERED:
        _REMEMBERED[model] = count_right(model)
    return _REMEMBERED[model]


def count_unfreezing(model):  # counts after switching everything on
    model.requires_grad_(True)
    return count_right(model)


def count_by_name(model):  # written for one model's attribute names
    return model.linear.weight.numel() + model.linear.bias.numel()


def count_leaking_grad_mode(model):
    torch.set_grad_enabled(False)
    return count_right(model)


def count(selection):
    """A typical wrong count, written as a student would."""
    answers = {
        "all parameters": lambda m: sum(p.numel() for p in m.parameters()),
        "frozen only": lambda m: sum(p.numel() for p in m.parameters() if not p.requires_grad),
        "state_dict": lambda m: sum(t.numel() for t in m.state_dict().values()),
        "state_dict requiring grad": lambda m: sum(
            t.numel() for t in m.state_dict(keep_vars=True).values() if t.requires_grad
        ),
        "buffer requiring grad": lambda m: sum(
            t.numel() for t in [*m.parameters(), *m.buffers()] if t.requires_grad
        ),
        "parameters and buffers": lambda m: sum(t.numel() for t in [*m.parameters(), *m.buffers()]),
        "tensors": lambda m: sum(1 for p in m.parameters() if p.requires_grad),
        "all tensors": lambda m: len(list(m.parameters())),
        "top level": lambda m: sum(p.numel() for p in m.parameters(recurse=False) if p.requires_grad),
        "duplicates": lambda m: sum(
            p.numel() for _, p in m.named_parameters(remove_duplicate=False) if p.requires_grad
        ),
        "has a gradient": lambda m: sum(p.numel() for p in m.parameters() if p.grad is not None),
    }
    answer = answers[selection]
    answer.__name__ = "count_" + selection.replace(" ", "_")
    return answer


RIGHT = {
    "4.1": [
        gradient_autograd,
        gradient_backward_inputs,
        gradient_backward_restore_all,
        gradient_functional,
        gradient_on_a_copy,
        gradient_swapped_leaf,
    ],
    "4.2": [
        count_right,
        count_as_float,
        count_named,
        count_through_an_optimizer,
        count_as_tensor,
        count_numpy,
        count_numpy_integer,
    ],
}

WRONG = {
    "4.1": [
        Wrong(gradient_as_float64, "returned the right values as torch.float64", "without converting it"),
        Wrong(
            gradient_without_requires_grad, "backward() left the buffer's .grad empty", "requires_grad_(True)"
        ),
        Wrong(gradient_not_returned, "returned None, though model.scale.grad holds", "Return the gradient"),
        Wrong(gradient_autograd_not_returned, "buffer_gradient returned None.", "Return the gradient"),
        Wrong(gradient_as_parameter, "no longer a buffer but a parameter", "turns it into a parameter"),
        Wrong(gradient_left_on, "model.scale still requires grad", "requires_grad_(False)"),
        Wrong(gradient_left_in_grad, "model.scale.grad still holds the gradient", "model.scale.grad = None"),
        Wrong(gradient_params_grads_left, "left gradients in the .grad of linear.weight", "autograd.grad"),
        Wrong(gradient_zero_grad_reset, "cleared the gradients that linear.weight", "zero_grad()"),
        Wrong(
            gradient_switches_off, "required grad before the call; buffer_gradient switched it", "remember"
        ),
        Wrong(gradient_accumulated, "this call's gradient plus the", "backward() adds to .grad"),
        Wrong(gradient_drops_old_grad, "model.offset.grad held", "Leave the buffer's .grad as you found it"),
        Wrong(gradient_of_sum, "the gradient of model(x).sum()", "model(x).pow(2).mean()"),
        Wrong(gradient_of_a_copy, "not have been used in the graph", "not a copy: .clone() and .detach()"),
        Wrong(gradient_loss_under_no_grad, "does not have a grad_fn", "computed under torch.no_grad()"),
        Wrong(gradient_of_squares_sum, "the gradient of model(x).pow(2).sum()", "model(x).pow(2).mean()"),
        Wrong(gradient_of_bias, "gradient of linear.bias, a parameter", "model.scale.grad"),
        Wrong(gradient_with_step, "changed the model's parameters", "no optimizer step"),
        Wrong(gradient_as_tuple, "returned a tuple holding one tensor", "(grad,) ="),
        Wrong(gradient_named_offset, "buffer_gradient(model, 'scale', x) raised AttributeError", "yourself"),
        Wrong(gradient_in_eval, "left the model in eval mode", "train() or eval()"),
        Wrong(gradient_unfreezes, "changed requires_grad of shift", "frozen parameter stays frozen"),
        Wrong(gradient_switches_grad_off, "changed gradient tracking", "torch.no_grad()"),
        Wrong(torch.ones(2), "Expected the function buffer_gradient", "Pass the function itself"),
    ],
    "4.2": [
        Wrong(count("all parameters"), "it counted the frozen parameters too", "p.requires_grad"),
        Wrong(count("frozen only"), "it counted only the frozen parameters", "p.requires_grad True"),
        Wrong(count("state_dict"), "it counted everything in state_dict()", "holds buffers"),
        Wrong(count("state_dict requiring grad"), "tensors of state_dict() that require grad", "twice"),
        Wrong(
            count("buffer requiring grad"), "it counted the buffer that requires grad", "not in parameters()"
        ),
        Wrong(count("parameters and buffers"), "it counted parameters and buffers", "never handed"),
        Wrong(count("tensors"), "it counted tensors, not numbers", "p.numel()"),
        Wrong(count("all tensors"), "counted the parameter tensors, not their numbers", "p.numel()"),
        Wrong(count("top level"), "not those of its submodules", "recurse=False"),
        Wrong(count("duplicates"), "counted a layer kept under two names twice", "remove_duplicate=False"),
        Wrong(count("has a gradient"), "it counted the parameters that hold a .grad", "p.requires_grad"),
        Wrong(count_with_a_grad_too, "still holds a .grad from an earlier backward()", "zero_grad() sets"),
        Wrong(count_after_zero_grad, "changed the gradients the model held", "never call zero_grad()"),
        Wrong(count_remembered, "After the unfreeze loop", "Count at call time"),
        Wrong(count_unfreezing, "changed requires_grad", "never set it"),
        Wrong(count_by_name, "trainable_count(model) raised AttributeError", "yourself"),
        Wrong(count_leaking_grad_mode, "changed gradient tracking", "torch.no_grad()"),
        Wrong(lambda m: 12, "trainable_count gave 12 for a model with", "require grad"),
        Wrong(lambda m: 12.5, "returned 12.5, not a whole number", "as an int"),
        Wrong(lambda m: True, "returned True, not a whole number", "as an int"),
        Wrong(12, "Expected the function trainable_count", "Pass the function itself"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


@pytest.mark.parametrize("seed", range(20))
def test_4_2_every_way_of_counting_gives_its_own_number(seed):
    """The sizes the check draws make each typical mistake give a count no other gives."""
    lesson04 = importlib.import_module("buflesson.exercises.lesson04")
    counts = lesson04._counts(lesson04.CountProbe(*lesson04._sizes(Draw(seed))))
    assert len(set(counts.values())) == len(counts)
    assert set(lesson04.MISTAKES) == set(counts) - {"right"}


def test_4_placeholders_and_not_yet():
    for exercise_id in ("4.1", "4.2"):
        assert check(exercise_id, ...).status == NOT_ATTEMPTED
        assert check(exercise_id, None).status == FAILED
    assert check("4.1", gradient_not_yet).status == NOT_ATTEMPTED


def test_4_1_refuses_to_run_with_gradient_tracking_off():
    with torch.no_grad():
        result = check("4.1", gradient_autograd)
    assert result.status == FAILED and "set_grad_enabled(True)" in result.hint


@pytest.mark.parametrize("exercise_id, answer", [("4.1", gradient_autograd), ("4.2", count_right)])
def test_4_checks_leave_the_students_random_state_alone(exercise_id, answer):
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check(exercise_id, answer)
    assert torch.equal(torch.rand(1), expected)


def test_4_2_what_the_pass_message_says_holds_on_this_torch():
    """backward() gives no gradient to a frozen parameter and gives one to a buffer that requires grad
    (which parameters() never lists); an optimizer steps every parameter whose .grad is set, frozen or
    not, and the default zero_grad() sets .grad to None, so the usual loop leaves a frozen one alone."""
    torch.manual_seed(0)
    model, x = nn.Linear(3, 2), torch.randn(4, 3)
    model.register_buffer("probe", torch.zeros(2, requires_grad=True))
    model.bias.requires_grad_(False)
    (model(x) + model.probe).pow(2).mean().backward()
    assert model.bias.grad is None and model.probe.grad is not None
    assert all(p is not model.probe for p in model.parameters())

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.bias.requires_grad_(True)
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    model.bias.requires_grad_(False)  # frozen after backward(), before step(): it still moves
    bias = model.bias.detach().clone()
    optimizer.step()
    assert not torch.equal(model.bias, bias)

    optimizer.zero_grad()  # sets .grad to None: the next step skips the frozen bias
    assert model.bias.grad is None
    model(x).pow(2).mean().backward()
    bias = model.bias.detach().clone()
    optimizer.step()
    assert torch.equal(model.bias, bias)
