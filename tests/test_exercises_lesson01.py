"""Lesson 1 checks: 1.1 predicts state_dict() keys, 1.2 saves a plain attribute by hand."""

import pickle
from collections import OrderedDict

import pytest
import torch
from torch import nn

from buflesson import check, standardize_model
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path, monkeypatch):
    """Answers that ignore `path` write into the working directory: keep that out of the repository."""
    monkeypatch.chdir(tmp_path)


KEYS = ["hidden.weight", "hidden.bias", "out.weight"]  # the answer notebook's answer

# --- 1.2 -----------------------------------------------------------------------------------------


def save_dict(model, path):  # the answer notebook's answer
    torch.save({"state": model.state_dict(), "offset": model.offset}, path)


def load_dict(model, path):
    saved = torch.load(path)
    model.load_state_dict(saved["state"])
    model.offset = saved["offset"]


def save_tuple(model, path):
    torch.save((model.state_dict(), model.offset.clone()), path)


def load_tuple_in_place(model, path):  # copies into the existing tensors, returns the model
    state, offset = torch.load(path, weights_only=True)
    model.load_state_dict(state)
    with torch.no_grad():
        model.offset.copy_(offset)
    return model


def save_flat(model, path):  # the offset as one more entry of a copy of the state dict
    state = dict(model.state_dict())
    state["extra.offset"] = model.offset
    torch.save(state, path)


def load_flat(model, path):
    state = torch.load(path, map_location="cpu")
    offset = state.pop("extra.offset")
    model.load_state_dict(state, strict=True)
    model.offset = offset.clone()
    return None


def save_whole_model(model, path):
    torch.save(model, path)


def load_from_whole_model(model, path):
    loaded = torch.load(path, weights_only=False)
    model.load_state_dict(loaded.state_dict())
    model.offset = loaded.offset


def save_state_only(model, path):
    torch.save(model.state_dict(), path)


def load_state_only(model, path):
    model.load_state_dict(torch.load(path))


def load_forgets_offset(model, path):
    model.load_state_dict(torch.load(path)["state"])


def load_nothing(model, path):
    pass


def save_nothing(model, path):
    pass


def load_into_new_model(model, path):  # the case: the model it is given is left alone
    from buflesson import PlainOffset

    fresh = PlainOffset()
    saved = torch.load(path)
    fresh.load_state_dict(saved["state"])
    fresh.offset = saved["offset"]
    return fresh


def load_pickled_model(model, path):
    return torch.load(path, weights_only=False)


def load_offset_only(model, path):
    model.offset = torch.load(path)["offset"]


def load_offset_as_parameter(model, path):
    saved = torch.load(path)
    model.load_state_dict(saved["state"])
    model.offset = nn.Parameter(saved["offset"])


def load_lesson_offset(model, path):  # hard-codes the lesson's changed offset
    model.load_state_dict(torch.load(path)["state"])
    model.offset = torch.tensor([3.0, 4.0])


def save_fixed_path(model, path):  # ignores `path`
    torch.save({"state": model.state_dict(), "offset": model.offset}, "checkpoint.pt")


def load_fixed_path(model, path):
    load_dict(model, "checkpoint.pt")


_LAST = {}


def save_offset_in_memory(model, path):  # the offset never reaches the file
    torch.save(model.state_dict(), path)
    _LAST["offset"] = model.offset.clone()


def load_offset_from_memory(model, path):
    model.load_state_dict(torch.load(path))
    model.offset = _LAST["offset"].clone()


def save_offset_beside(model, path):  # a second file next to the one asked for
    torch.save(model.state_dict(), path)
    torch.save(model.offset, path + ".offset")


def load_offset_beside(model, path):
    model.load_state_dict(torch.load(path))
    model.offset = torch.load(path + ".offset")


def save_offset_as_list(model, path):  # the offset as plain numbers, next to the state
    torch.save({"state": model.state_dict(), "offset": model.offset.tolist()}, path)


def load_offset_from_list(model, path):
    saved = torch.load(path)
    model.load_state_dict(saved["state"])
    model.offset = torch.tensor(saved["offset"])


def save_pickle(model, path):  # not torch.save
    with open(path, "wb") as file:
        pickle.dump({"offset": model.offset.tolist()}, file)


def save_and_reset(model, path):  # changes the model it saves
    save_dict(model, path)
    model.offset = torch.tensor([10.0, -10.0])


def save_in_eval_mode(model, path):  # switches the model it saves to eval mode
    model.eval()
    save_dict(model, path)


def save_a_double_copy(model, path):  # replaces the offset with a float64 copy before saving
    model.offset = model.offset.detach().clone().double()
    save_dict(model, path)


SHARED_OFFSET = torch.zeros(2)


def load_into_one_shared_offset(model, path):  # every model gets the same tensor
    saved = torch.load(path)
    model.load_state_dict(saved["state"])
    SHARED_OFFSET.copy_(saved["offset"])
    model.offset = SHARED_OFFSET


def load_building_a_model(model, path):  # builds a helper model outside a forked random state
    load_dict(model, path)
    nn.Linear(3, 2)


def load_broken(model, path):
    model.load_state_dict({"nope": 1})


def not_yet(model, path):
    raise NotImplementedError


RIGHT = {
    "1.1": [
        KEYS,
        ("out.weight", "hidden.bias", "hidden.weight"),
        {"hidden.weight", "hidden.bias", "out.weight"},
        frozenset(KEYS),
        [f"{layer}.{name}" for layer, name in (("hidden", "weight"), ("hidden", "bias"), ("out", "weight"))],
    ],
    "1.2": [
        (save_dict, load_dict),
        (save_tuple, load_tuple_in_place),
        (save_flat, load_flat),
        [save_whole_model, load_from_whole_model],
        (save_offset_as_list, load_offset_from_list),
    ],
}

WRONG = {
    "1.1": [
        Wrong(KEYS + ["hidden.bias"], "Listed more than once: 'hidden.bias' (2 times)", "write it once"),
        Wrong(
            KEYS + ["mean", "std"],
            "mean, std: plain tensor attributes are not in state_dict()",
            "never a plain attribute",
        ),
        Wrong(KEYS + ["out.bias"], "out.bias: that layer has no bias", "bias=False"),
        Wrong(["weight", "bias", "out.weight"], "weight, bias: a key names its submodule", "'hidden.weight'"),
        Wrong(["hidden.weight"], "2 key(s) missing", "bias=False"),
        Wrong(KEYS + ["hidden.scale"], "hidden.scale: an nn.Linear has no such parameter", "a `weight`"),
        Wrong(["hidden.weight ", "hidden.bias", "out.weight"], "the name is 'hidden.weight'", "no spaces"),
        Wrong(["Hidden.Weight", "hidden.bias", "out.weight"], "'Hidden.Weight' is not a key", "case"),
        Wrong(["linear.weight", "linear.bias"], "keys of the lesson's PlainOffset", "`hidden` and `out`"),
        Wrong(KEYS + ["layers"], "Not keys of state_dict(): layers", "a dot"),
        Wrong(["model.hidden.weight", "hidden.bias", "out.weight"], "the name is 'hidden.weight'", "prefix"),
        Wrong(standardize_model().state_dict().keys(), "read from a model", "without calling state_dict()"),
        Wrong(standardize_model().state_dict(), "read from a model", "without calling state_dict()"),
        Wrong(standardize_model(), "Got a model (Standardize)", "list of strings"),
        Wrong({"hidden.weight": 1, "hidden.bias": 2, "out.weight": 3}, "got a dict", "Write only the keys"),
        Wrong("hidden.weight", "got one string", "inside a list"),
        Wrong([1, 2, 3], "Every key is a string: 1, 2, 3 are not", "in quotes"),
        Wrong(iter(KEYS), "Expected a list of key names, got list_iterator", "list of strings"),
        Wrong(torch.ones(3), "got a tensor", "list of strings"),
    ],
    "1.2": [
        Wrong((save_dict, load_into_new_model), "returned a new model", "Put the state into `model` itself"),
        Wrong(
            (save_whole_model, load_pickled_model),
            "returned a new model",
            "Put the state into `model` itself",
        ),
        Wrong((save_state_only, load_state_only), "does not hold the offset", "side by side"),
        Wrong(
            (save_dict, load_forgets_offset), "The file holds the offset, but load_checkpoint", "set model"
        ),
        Wrong((save_dict, load_nothing), "weights were not restored", "load_state_dict"),
        Wrong((save_dict, load_offset_only), "weights were not restored", "load_state_dict"),
        Wrong((save_nothing, load_dict), "wrote no file at `path`", "torch.save(..., path)"),
        Wrong((save_fixed_path, load_fixed_path), "wrote no file at `path`", "the `path` you are given"),
        Wrong((save_dict, load_offset_as_parameter), "offset is now a parameter", "plain attribute"),
        Wrong((save_dict, load_lesson_offset), "does not put the offset back", "saved tensor"),
        Wrong((save_offset_in_memory, load_offset_from_memory), "does not hold it", "the one file"),
        Wrong((save_offset_beside, load_offset_beside), "does not hold it", "the one file"),
        Wrong((save_pickle, load_dict), "torch.load cannot read the file", "torch.save"),
        Wrong((save_and_reset, load_dict), "save_checkpoint changed the model", "change nothing"),
        Wrong((save_in_eval_mode, load_dict), "save_checkpoint changed the model", "no .eval()"),
        Wrong(
            (save_dict, load_into_one_shared_offset),
            "the two models hold one offset tensor",
            "its own tensor",
        ),
        Wrong((save_a_double_copy, load_dict), "save_checkpoint changed the model", "no new offset tensor"),
        Wrong((save_dict, load_building_a_model), "changed torch's random state", "as you found them"),
        Wrong((save_dict, load_broken), "load_checkpoint(model, path) raised RuntimeError", "yourself"),
        Wrong((save_dict,), "Expected the two functions as a pair", "check('1.2'"),
        Wrong((save_dict, "load"), "The second item of the pair is not a function", "check('1.2'"),
        Wrong(save_dict, "Expected the two functions as a pair", "without calling them"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


def test_1_1_placeholder_and_none():
    assert check("1.1", ...).status == NOT_ATTEMPTED
    assert check("1.1", None).status == FAILED


def test_1_1_state_dict_keys_read_from_a_model_are_not_a_prediction():
    ordered = OrderedDict((key, torch.zeros(1)) for key in KEYS)
    assert "read from a model" in check("1.1", ordered).message


def test_1_2_placeholder_not_yet_and_none():
    assert check("1.2", ...).status == NOT_ATTEMPTED
    assert check("1.2", (not_yet, not_yet)).status == NOT_ATTEMPTED
    assert check("1.2", (save_dict, not_yet)).status == NOT_ATTEMPTED
    assert check("1.2", None).status == FAILED


def test_1_2_leaves_the_students_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check("1.2", (save_dict, load_dict))
    assert torch.equal(torch.rand(1), expected)
