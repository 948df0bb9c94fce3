"""Lesson 9 checks: predictions of what is saved, moved and trained, compared with PyTorch at check time."""

import pytest
import torch

from buflesson import check, everything_model, inventory
from buflesson.recap import moved_names, saved_names, trained_names
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED

PARAMETERS = {"gain", "norm.weight", "norm.bias", "linear.weight", "linear.bias"}
BUFFERS = {"offset", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"}
SAVED = PARAMETERS | BUFFERS | {"frozen_bias"}
MOVED = SAVED | {"window"}
TRAINED = PARAMETERS


def test_truth_is_what_pytorch_does_and_agrees_with_inventory():
    assert saved_names() == SAVED
    assert moved_names() == MOVED
    assert trained_names() == TRAINED
    table = inventory(everything_model())
    assert {row.name for row in table if row.in_state_dict} == SAVED
    assert {row.name for row in table if row.follows_to} == MOVED
    assert {row.name for row in table if row.stepped_by_optimizer} == TRAINED


@pytest.mark.parametrize("exercise_id, names", [("9.1", SAVED), ("9.2", MOVED), ("9.3", TRAINED)])
def test_right_answers_pass_as_set_list_or_function(exercise_id, names):
    assert check(exercise_id, names).status == PASSED
    assert check(exercise_id, sorted(names)).status == PASSED
    assert check(exercise_id, lambda: set(names)).status == PASSED


@pytest.mark.parametrize(
    "exercise_id, names, message, hint",
    [
        ("9.1", SAVED | {"window"}, "includes 'window', but state_dict() does not hold it", "non-persistent"),
        ("9.1", SAVED | {"shift"}, "includes 'shift'", "plain tensor attribute"),
        ("9.1", SAVED | {"cache"}, "includes 'cache'", "holds None"),
        (
            "9.1",
            SAVED - {"frozen_bias"},
            "leaves out 'frozen_bias', but state_dict() holds it",
            "frozen or not",
        ),
        ("9.1", SAVED - {"norm.num_batches_tracked"}, "leaves out 'norm.num_batches_tracked'", "num_batches"),
        ("9.1", SAVED - {"gain", "offset"}, "(1 more name is wrong.)", "parameter"),
        ("9.1", {"running_mean"}, "no tensor named 'running_mean'", "'norm.running_mean', not"),
        ("9.1", {"weight"}, "no tensor named 'weight'", "'norm.weight' or 'linear.weight'"),
        ("9.1", {"nonsense"}, "no tensor named 'nonsense'", "names listed in the lesson"),
        ("9.2", MOVED | {"shift"}, "includes 'shift', but .to('meta') leaves it where it was", "plain"),
        ("9.2", MOVED - {"window"}, "leaves out 'window', but .to('meta') moves it", "like every buffer"),
        ("9.2", MOVED | {"cache"}, "includes 'cache'", "no tensor to move"),
        ("9.2", MOVED - {"frozen_bias"}, "leaves out 'frozen_bias'", "frozen or not"),
        ("9.3", TRAINED | {"frozen_bias"}, "includes 'frozen_bias'", "requires_grad=False"),
        ("9.3", TRAINED | {"norm.running_mean"}, "includes 'norm.running_mean'", "in the forward pass"),
        ("9.3", TRAINED | {"offset"}, "optimizer.step() does not change it", "model.parameters()"),
        ("9.3", TRAINED - {"norm.weight"}, "leaves out 'norm.weight'", "BatchNorm's weight and bias"),
        ("9.3", "gain", "Expected a set of tensor names, got str", "set of strings"),
        ("9.3", {1, 2}, "Every name must be a string", "quotes"),
        ("9.3", torch.ones(2), "got Tensor", ""),
    ],
)
def test_each_mistake_gets_its_own_hint(exercise_id, names, message, hint):
    result = check(exercise_id, names)
    assert result.status == FAILED
    assert message in result.message, result.message
    assert hint in result.hint, result.hint


def not_yet():
    raise NotImplementedError


@pytest.mark.parametrize("exercise_id", ["9.1", "9.2", "9.3"])
def test_placeholder_none_and_unwritten_function(exercise_id):
    assert check(exercise_id, ...).status == NOT_ATTEMPTED
    assert check(exercise_id, not_yet).status == NOT_ATTEMPTED
    assert check(exercise_id, None).status == FAILED
    assert check(exercise_id, lambda: None).status == FAILED


def test_checks_leave_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for exercise_id, names in [("9.1", SAVED), ("9.2", MOVED), ("9.3", TRAINED)]:
        assert check(exercise_id, names).status == PASSED
    assert torch.equal(torch.rand(3), expected)
