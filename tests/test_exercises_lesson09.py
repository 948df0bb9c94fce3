"""Lesson 9 checks: predictions of what is saved, moved and trained, compared with PyTorch at check time."""

import torch

from buflesson import check, everything_model, inventory
from buflesson.recap import moved_names, saved_names, trained_names
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests

PARAMETERS = {"gain", "norm.weight", "norm.bias", "linear.weight", "linear.bias"}
BUFFERS = {"offset", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"}
SAVED = PARAMETERS | BUFFERS | {"frozen_bias"}
MOVED = SAVED | {"window"}
TRAINED = PARAMETERS
ALL = MOVED | {"cache", "shift"}


def test_truth_is_what_pytorch_does_and_agrees_with_inventory():
    assert saved_names() == SAVED
    assert moved_names() == MOVED
    assert trained_names() == TRAINED
    table = inventory(everything_model())
    assert {row.name for row in table if row.in_state_dict} == SAVED
    assert {row.name for row in table if row.follows_to} == MOVED
    assert {row.name for row in table if row.stepped_by_optimizer} == TRAINED


# The answer notebook's answers: functions that return a set.
def predict_saved():
    parameters = {"gain", "frozen_bias", "norm.weight", "norm.bias", "linear.weight", "linear.bias"}
    buffers = {"offset", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"}
    return parameters | buffers


def predict_moved():
    parameters = {"gain", "frozen_bias", "norm.weight", "norm.bias", "linear.weight", "linear.bias"}
    buffers = {"offset", "window", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"}
    return parameters | buffers


def predict_trained():
    return {"gain", "norm.weight", "norm.bias", "linear.weight", "linear.bias"}


def saved_as_list():  # a list, in another order
    return sorted(SAVED, reverse=True)


def moved_as_devices():  # a dict from every name to where it ends up, written with devices
    where = {name: torch.device("meta") for name in MOVED}
    where.update(shift="cpu", cache="-")
    return where


def moved_as_strings():
    return {name: ("meta" if name in MOVED else "cpu") for name in sorted(ALL - {"cache"})}


def trained_as_flags():  # the shape training_step returns: name -> changed?
    return {name: name in TRAINED for name in sorted(ALL - {"cache"})}


def trained_by_kind():
    layers = [f"{layer}.{kind}" for layer in ("norm", "linear") for kind in ("weight", "bias")]
    return tuple(["gain", *layers])


def returns_nothing():
    parameters = PARAMETERS  # noqa: F841  (forgot the return)


def wants_the_model(model):
    return set(model.state_dict())


def returns_keys():  # reads the answer off a model, and not as plain data
    return everything_model().state_dict().keys()


def not_yet():
    raise NotImplementedError


RIGHT = {
    "9.1": [predict_saved, SAVED, saved_as_list, tuple(sorted(SAVED)), frozenset(SAVED)],
    "9.2": [predict_moved, sorted(MOVED), moved_as_devices, moved_as_strings],
    "9.3": [
        predict_trained,
        sorted(TRAINED, key=lambda name: (len(name), name)),
        trained_as_flags,
        trained_by_kind,
        {n: 1 for n in TRAINED},
    ],
}

WRONG = {
    "9.1": [
        Wrong(SAVED | {"window"}, "includes 'window', but state_dict() does not hold it", "non-persistent"),
        Wrong(SAVED | {"shift"}, "includes 'shift'", "plain tensor attribute"),
        Wrong(SAVED | {"cache"}, "includes 'cache'", "holds None"),
        Wrong(
            SAVED - {"frozen_bias"}, "leaves out 'frozen_bias', but state_dict() holds it", "frozen or not"
        ),
        Wrong(SAVED - {"norm.num_batches_tracked"}, "leaves out 'norm.num_batches_tracked'", "num_batches"),
        Wrong(SAVED - {"gain", "offset"}, "(1 more name is wrong.)", "parameter"),
        Wrong(sorted(SAVED) + ["gain"], "Listed more than once: 'gain' (2 times)", "write it once"),
        Wrong(SAVED | {"running_mean"}, "no tensor named 'running_mean'", "'norm.running_mean', not"),
        Wrong(SAVED | {"weight"}, "no tensor named 'weight'", "'norm.weight' or 'linear.weight'"),
        Wrong(
            SAVED | {"nonsense", "other"}, "no tensor named 'nonsense', 'other'", "names listed in the lesson"
        ),
        Wrong((SAVED - {"gain"}) | {"Gain "}, "no tensor named 'Gain '", "The name is 'gain'"),
        Wrong(
            (SAVED - {"gain"}) | {"model.gain"}, "no tensor named 'model.gain'", "'gain', not 'model.gain'"
        ),
        Wrong(returns_nothing, "returns_nothing() returned None", "`return`"),
        Wrong(wants_the_model, "wants_the_model() raised TypeError", "yourself"),
        Wrong(returns_keys, "got odict_keys", "Write it as"),
        Wrong(everything_model(), "got a model (Everything)", "Write it as"),
    ],
    "9.2": [
        Wrong(MOVED | {"shift"}, "includes 'shift', but .to('meta') leaves it where it was", "plain"),
        Wrong(MOVED - {"window"}, "leaves out 'window', but .to('meta') moves it", "like every buffer"),
        Wrong(MOVED | {"cache"}, "includes 'cache'", "no tensor to move"),
        Wrong(MOVED - {"frozen_bias"}, "leaves out 'frozen_bias'", "frozen or not"),
        Wrong(SAVED, "leaves out 'window'", "non-persistent buffer"),
        Wrong(sorted(MOVED) + ["window"], "Listed more than once: 'window' (2 times)", "write it once"),
        Wrong({name: "cuda" for name in MOVED}, "leaves out", "moves every"),
        Wrong({"gain": "somewhere"}, "gives 'gain' the value 'somewhere'", "True or False"),
    ],
    "9.3": [
        Wrong(TRAINED | {"frozen_bias"}, "includes 'frozen_bias'", "changes a parameter whose .grad is None"),
        Wrong(TRAINED | {"norm.running_mean"}, "includes 'norm.running_mean'", "in the forward pass"),
        Wrong(TRAINED | {"offset"}, "optimizer.step() does not change it", "model.parameters()"),
        Wrong(TRAINED - {"norm.weight"}, "leaves out 'norm.weight'", "BatchNorm's weight and bias"),
        Wrong(SAVED, "includes 'frozen_bias'", "requires_grad=False"),
        Wrong({"gain": 2, "linear.weight": True}, "gives 'gain' the value 2", "True or False"),
        Wrong("gain", "Expected a set of tensor names, got str", "Write it as"),
        Wrong({1, 2}, "Every name is a string: 1, 2 are not", "in quotes"),
        Wrong(torch.ones(2), "got a tensor", "Write it as"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


def test_placeholder_none_and_unwritten_function():
    for exercise_id in ("9.1", "9.2", "9.3"):
        assert check(exercise_id, ...).status == NOT_ATTEMPTED
        assert check(exercise_id, not_yet).status == NOT_ATTEMPTED
        assert check(exercise_id, None).status == FAILED


def test_checks_leave_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for exercise_id, names in [("9.1", SAVED), ("9.2", MOVED), ("9.3", TRAINED)]:
        assert check(exercise_id, names)
    assert torch.equal(torch.rand(3), expected)


def test_9_3_what_the_pass_message_says_holds_on_this_torch():
    """In training_step the frozen parameter has no gradient when the step runs, and a step skips a
    parameter by its .grad, not by requires_grad: frozen after backward(), a parameter still moves."""
    from buflesson.recap import training_batch

    model = everything_model()
    inputs, targets = training_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    (model(inputs) - targets).pow(2).mean().backward()
    assert model.frozen_bias.grad is None
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert all(b.grad is None for b in model.buffers())
    model.gain.requires_grad_(False)
    gain = model.gain.detach().clone()
    optimizer.step()
    assert not torch.equal(model.gain, gain)
