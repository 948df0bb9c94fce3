"""Lesson 1 checks: 1.1 predicts state_dict() keys, 1.2 saves a plain attribute by hand."""

import pytest
import torch

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED

KEYS = ["hidden.weight", "hidden.bias", "out.weight"]


def test_1_1_accepts_the_keys_in_any_order_and_collection():
    assert check("1.1", KEYS).status == PASSED
    assert check("1.1", set(reversed(KEYS))).status == PASSED


@pytest.mark.parametrize(
    "keys, message, hint",
    [
        (KEYS + ["mean", "std"], "plain tensor attributes are not in state_dict()", "parameters and buffers"),
        (KEYS + ["out.bias"], "has no bias", "bias=False"),
        (["weight", "bias", "out.weight"], "names its submodule", "'hidden.weight'"),
        (["hidden.weight", "hidden.bias"], "1 key(s) missing", "bias=False"),
        (KEYS + ["hidden.scale"], "Not keys of state_dict(): hidden.scale", ""),
        ([1, 2, 3], "Every key of state_dict() is a string", "quotes"),
        ("hidden.weight", "Expected a list of key names, got str", "list of strings"),
    ],
)
def test_1_1_names_each_mistake(keys, message, hint):
    result = check("1.1", keys)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_1_1_placeholder_and_none():
    assert check("1.1", ...).status == NOT_ATTEMPTED
    assert check("1.1", None).status == FAILED


def save_right(model, path):
    torch.save({"state": model.state_dict(), "offset": model.offset}, path)


def load_right(model, path):
    saved = torch.load(path)
    model.load_state_dict(saved["state"])
    model.offset = saved["offset"]


def save_state_only(model, path):
    torch.save(model.state_dict(), path)


def load_state_only(model, path):
    model.load_state_dict(torch.load(path))


def load_forgets_offset(model, path):
    model.load_state_dict(torch.load(path)["state"])


def save_nothing(model, path):
    pass


def load_nothing(model, path):
    pass


def save_whole_model(model, path):
    torch.save(model, path)


def load_whole_model(model, path):
    return torch.load(path, weights_only=False)


def not_yet(model, path):
    raise NotImplementedError


def test_1_2_accepts_a_dict_checkpoint_and_a_pickled_model():
    assert check("1.2", (save_right, load_right)).status == PASSED
    assert check("1.2", (save_whole_model, load_whole_model)).status == PASSED


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        ((save_state_only, load_state_only), "does not hold the offset", "side by side"),
        ((save_right, load_forgets_offset), "does not put it back", "set model.offset"),
        ((save_right, load_nothing), "weights were not restored", "load_state_dict"),
        ((save_nothing, load_right), "wrote nothing", "torch.save"),
        ((save_right,), "Expected the two functions as a pair", "check('1.2'"),
        ((save_right, "load"), "as a pair", ""),
    ],
)
def test_1_2_names_each_mistake(answer, message, hint):
    result = check("1.2", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_1_2_a_crash_in_the_student_code_is_a_failed_result():
    result = check("1.2", (save_right, lambda model, path: model.load_state_dict({"nope": 1})))
    assert result.status == FAILED and "load_checkpoint(model, path) raised RuntimeError" in result.message


def test_1_2_placeholder_and_none():
    assert check("1.2", ...).status == NOT_ATTEMPTED
    assert check("1.2", (not_yet, not_yet)).status == NOT_ATTEMPTED
    assert check("1.2", (save_right, not_yet)).status == NOT_ATTEMPTED
    assert check("1.2", None).status == FAILED
