"""Lesson 1: a plain tensor attribute is not in state_dict(), so a save/load round trip loses it."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from buflesson.checks import Fail, exercise
from buflesson.handles import Refused, Remote, StudentError
from buflesson.i18n import N_, Listed, Msg
from buflesson.inventory import PLAIN, inventory
from buflesson.models import plain_offset_model, standardize_model
from buflesson.probes import (
    Draw,
    a_kind,
    close,
    code,
    described,
    forward,
    leaves_global_state,
    names_in,
    near_miss,
    rounded,
    rows,
    same,
    state_dict,
    student,
    tensor,
)

# --- 1.1: predict the keys -------------------------------------------------------------------------

KEYS_EXAMPLE = 'keys = ["hidden.weight", ...]'
READ_NOT_PREDICTED = (
    N_("This is what state_dict() answers, read from a model: the exercise asks for your prediction."),
    N_(
        "Predict the keys without calling state_dict(): write them yourself as a list of strings, e.g. "
        "{example}."
    ),
)


def _truth() -> tuple[list[str], list[str], list[str]]:
    """Standardize's keys, its plain tensor attributes, and the lesson's demo model's keys, all
    from models built here (the check's own torch), in a forked random state."""
    with torch.random.fork_rng(devices=[]):
        model, demo = standardize_model(), plain_offset_model()
    plain = [row.name for row in inventory(model) if row.kind == PLAIN]
    return list(model.state_dict()), plain, list(demo.state_dict())


def _keys(answer: Remote) -> list[str]:
    """The student's keys: a list, tuple or set of strings, each once."""
    kind, type_name = answer.kind, str(answer.info.get("type"))
    if kind == "module":
        raise Fail(
            "Got a model ({type}), not a list of its keys.",
            "Write the keys yourself as a list of strings, e.g. {example}.",
            type=type_name,
            example=KEYS_EXAMPLE,
        )
    if kind != "data":
        raise Fail(
            "Expected a list of key names, got {what}.",
            "Write the keys as a list of strings, e.g. {example}.",
            what=described(kind, answer.name, type_name),
            example=KEYS_EXAMPLE,
        )
    if type_name in ("odict_keys", "dict_keys"):
        raise Fail(*READ_NOT_PREDICTED, example=KEYS_EXAMPLE)
    try:
        value = answer.value()
    except Refused:
        raise Fail(
            "Expected a list of key names, got {type}.",
            "Write the keys as a list of strings, e.g. {example}.",
            type=type_name,
            example=KEYS_EXAMPLE,
        ) from None
    if isinstance(value, dict):
        if any(isinstance(item, torch.Tensor) for item in value.values()):
            raise Fail(*READ_NOT_PREDICTED, example=KEYS_EXAMPLE)
        raise Fail(
            "Expected a list of key names, got a dict.",
            "Write only the keys, as a list of strings, e.g. {example}.",
            example=KEYS_EXAMPLE,
        )
    if isinstance(value, str):
        raise Fail(
            "Expected a list of key names, got one string.",
            "Put each key in quotes inside a list, e.g. {example}.",
            example=KEYS_EXAMPLE,
        )
    return names_in(value, expected=N_("a list of key names"), example=KEYS_EXAMPLE, noun=N_("key"))


@exercise(
    "1.1",
    "Predict the keys of `state_dict()`",
    passed="Right: state_dict() holds the parameters of the two layers; the plain tensors mean and std "
    "are not in it.",
)
def predict_keys(answer: Remote) -> None:
    keys = _keys(answer)
    truth, plain, demo = _truth()
    unknown = [key for key in keys if key not in truth]
    for key in unknown:
        real = near_miss(key, truth + plain)
        if real is not None:
            raise Fail(
                "{key!r} is not a key: the name is {real!r}.",
                "Keys are exact strings: no spaces, and upper and lower case differ.",
                key=key,
                real=real,
            )
    for key in unknown:
        real = next((name for name in truth if key.endswith("." + name)), None)
        if real is not None:
            raise Fail(
                "{key!r} is not a key: a key starts at the model, so the name is {real!r}.",
                "Drop the prefix: keys name submodules and tensors inside the model, not the model.",
                key=key,
                real=real,
            )
    attributes = [key for key in unknown if key in plain or near_miss(key, plain)]
    if attributes:
        raise Fail(
            "{names}: plain tensor attributes are not in state_dict().",
            "state_dict() holds parameters, persistent buffers and what get_extra_state() returns, never a "
            "plain attribute: `self.mean = torch.tensor(...)` is none of them.",
            names=", ".join(attributes),
        )
    layers = {key.rpartition(".")[0] for key in truth}
    no_bias = [key for key in unknown if key.endswith(".bias") and key.rpartition(".")[0] in layers]
    if no_bias:
        raise Fail(
            "{names}: that layer has no bias.",
            "Look at how each layer is built: nn.Linear(..., bias=False) makes a layer without a bias.",
            names=", ".join(no_bias),
        )
    no_such_parameter = [key for key in unknown if key.rpartition(".")[0] in layers]
    if no_such_parameter:
        raise Fail(
            "{names}: an nn.Linear has no such parameter.",
            "An nn.Linear holds a `weight`, and a `bias` unless it is built with bias=False.",
            names=", ".join(no_such_parameter),
        )
    short = [key for key in unknown if any(real.endswith("." + key) for real in truth)]
    if short:
        raise Fail(
            "{names}: a key names its submodule too.",
            "A parameter of the submodule `self.hidden` is saved as 'hidden.weight', not 'weight'.",
            names=", ".join(short),
        )
    other_model = [key for key in unknown if key in demo]
    if other_model:
        raise Fail(
            "{names}: keys of the lesson's PlainOffset, not of Standardize.",
            "Read Standardize's __init__: its layers are called `hidden` and `out`.",
            names=", ".join(other_model),
        )
    if unknown:
        raise Fail(
            "Not keys of state_dict(): {names}.",
            "A key is a layer's attribute name, a dot, and the parameter's name, as in 'hidden.weight'.",
            names=", ".join(unknown),
        )
    missing = [key for key in truth if key not in keys]
    if missing:
        raise Fail(
            "{count} key(s) missing.",
            "Every nn.Linear has a weight, and a bias unless it is built with bias=False.",
            count=len(missing),
        )


# --- 1.2: save and restore the offset by hand ------------------------------------------------------

PAIR_HINT = N_("Pass them both, without calling them: check('1.2', (save_checkpoint, load_checkpoint)).")


def _pair(answer: Remote) -> tuple[Remote, Remote]:
    info = answer.info
    if answer.kind != "data" or info.get("type") not in ("tuple", "list") or info.get("length") != 2:
        raise Fail("Expected the two functions as a pair.", PAIR_HINT)
    with student("Reading the pair"):
        save, load = answer.item(0), answer.item(1)
    for message, function in (
        (N_("The first item of the pair is not a function."), save),
        (N_("The second item of the pair is not a function."), load),
    ):
        if not isinstance(function, Remote) or function.kind != "function":
            raise Fail(message, PAIR_HINT)
    return save, load


def _plain_offset(session, seed: int) -> Remote:
    """A `PlainOffset` on the student's side, built in a forked random state seeded with `seed`."""
    with student("Creating a PlainOffset"):
        return session.lib("buflesson.models:PlainOffset").call(seed=seed, keep=True)


def _set_offset(model: Remote, value: torch.Tensor) -> None:
    with student("Changing model.offset in place"):
        model.attr("offset", keep=True).method("copy_", value)


def _snapshot(model: Remote) -> dict[str, torch.Tensor]:
    """The model's weights and its offset, as copies."""
    state = dict(state_dict(model))
    state["offset"] = tensor(
        model, "offset", hint=N_("Put back the saved tensor itself: model.offset = saved_offset.")
    )
    return state


def _untouched(model: Remote) -> dict[str, object]:
    """What saving must leave as it is besides the values: the mode, and each tensor's object and dtype."""
    found: dict[str, object] = {"training": model.attr("training")}
    for name in ("linear.weight", "linear.bias", "offset"):
        with student(Msg("Reading {path}", path=name)):
            held = model.attr(name, keep=True)
            found[name] = (held.method("data_ptr"), str(held.attr("dtype")))
    return found


def _expected_output(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, state["linear.weight"], state["linear.bias"]) + state["offset"]


def _same_state(state: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> bool:
    return all(same(state[name], other.get(name)) for name in state)


def _tensors(value: object):
    """Every tensor inside plain data (dicts, lists, tuples opened)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        numbers = [item for item in value if isinstance(item, (int, float)) and not isinstance(item, bool)]
        if value and len(numbers) == len(value):  # an offset saved as a list of numbers
            yield torch.tensor(numbers, dtype=torch.float64)
        for item in value:
            yield from _tensors(item)


def _file_holds(session, path: str, saved: dict[str, torch.Tensor]) -> tuple[bool | None, bool | None]:
    """Whether the file at `path` holds the saved weights and the saved offset, read on the student's
    side with torch.load (a pickled whole model too); None where its content cannot be read as data.
    Fail when there is no file or torch cannot read it."""
    try:
        content = session.lib("torch:load").call(path, weights_only=False)
    except StudentError as error:
        if error.type_name == "FileNotFoundError":
            raise Fail(
                "save_checkpoint(model, path) wrote no file at `path`.",
                "Write to the `path` you are given: torch.save(..., path).",
            ) from None
        raise Fail(
            "torch.load cannot read the file that save_checkpoint wrote: {error}",
            "Write it with torch.save(..., path).",
            error=str(error),
        ) from None
    if isinstance(content, Remote):
        if content.kind != "module":
            return None, None
        with student("Reading the model in the file"):
            content = {"state": state_dict(content), "offset": content.attr_or_none("offset")}
    found = list(_tensors(content))
    weights = all(any(same(t, saved[name]) for t in found) for name in ("linear.weight", "linear.bias"))
    return weights, any(same(t, saved["offset"]) for t in found)


@exercise(
    "1.2",
    "Save and restore the offset by hand",
    passed="The weights and the offset survived the round trip through a real file, into the model "
    "load_checkpoint was given.",
)
def checkpoint_by_hand(answer: Remote) -> None:
    save, load = _pair(answer)
    session = answer.session
    draw = Draw()
    before = session.state()
    folder = session.folder()
    seeds = draw.random.sample(range(1, 2**31), 4)
    saved_models = [_plain_offset(session, seed) for seed in seeds[:2]]
    fresh_models = [_plain_offset(session, seed) for seed in seeds[2:]]
    offsets = [draw.uniform(2, low=-5.0, high=5.0) for _ in saved_models]
    paths = [os.path.join(folder, f"checkpoint-{n}-{draw.integer(100, 999)}.pt") for n in (1, 2)]
    saved = []
    for model, offset, path in zip(saved_models, offsets, paths, strict=True):
        _set_offset(model, offset)
        state = _snapshot(model)
        kept = _untouched(model)
        with student(code("save_checkpoint(model, path)")):
            save(model, path)
        if not _same_state(state, _snapshot(model)) or kept != _untouched(model):
            raise Fail(
                "save_checkpoint changed the model it saved (its values, its mode, or which tensor it holds "
                "and its dtype).",
                "Only write the file: read model.state_dict() and model.offset, change nothing (no .eval(), "
                "no new offset tensor).",
            )
        saved.append(state)
    holds = [_file_holds(session, path, state) for path, state in zip(paths, saved, strict=True)]
    for model in saved_models:  # what load_checkpoint restores must come from the file, not the model
        _set_offset(model, torch.zeros(2))
        with student("Changing the saved model's weights"):
            model.attr("linear.weight", keep=True).call(method="detach", keep=True).method("zero_")

    x = draw.randn(draw.integer(2, 9, avoid=(4,)), 3)
    for index in (1, 0):  # the second file first: an answer that remembers the last save fails
        model, state, (weights_in_file, offset_in_file) = fresh_models[index], saved[index], holds[index]
        kinds = {name: row["kind"] for name, row in rows(model).items()}
        with student(code("load_checkpoint(model, path)")):
            returned = load(model, paths[index])
        got = _snapshot(model)
        weights_back = all(same(got[name], state[name]) for name in ("linear.weight", "linear.bias"))
        offset_back = same(got["offset"], state["offset"])
        if not (weights_back or offset_back) and _returned_the_state(returned, state):
            raise Fail(
                "load_checkpoint returned a new model holding the saved state, but left the model it "
                "was given as it was.",
                "Put the state into `model` itself: model.load_state_dict(...) and model.offset = ...; "
                "the code that calls load_checkpoint keeps using the model it passed in.",
            )
        if not weights_back:
            if weights_in_file is False:
                raise Fail(
                    "The file does not hold the linear layer's weights.",
                    "Save model.state_dict() in the file, next to the offset.",
                )
            raise Fail(
                "The linear layer's weights were not restored.",
                "Put them back with model.load_state_dict(...).",
            )
        if not offset_back:
            if offset_in_file is False:
                raise Fail(
                    "The file does not hold the offset: state_dict() leaves plain attributes out.",
                    "Save a dict that holds the state_dict and model.offset side by side.",
                )
            raise Fail(
                "The file holds the offset, but load_checkpoint does not put the offset back: model.offset "
                "is {got}, the saved offset is {expected}."
                if offset_in_file
                else "load_checkpoint does not put the offset back: model.offset is {got}, the saved offset "
                "is {expected}.",
                "After load_state_dict, set model.offset to the saved tensor.",
                got=rounded(got["offset"]),
                expected=rounded(state["offset"]),
            )
        if offset_in_file is False:
            raise Fail(
                "load_checkpoint restored the offset, but the file at `path` does not hold it.",
                "Keep everything in the one file that save_checkpoint writes at `path`.",
            )
        after = {name: row["kind"] for name, row in rows(model).items()}
        if after != kinds:
            changed = sorted(name for name in set(after) | set(kinds) if after.get(name) != kinds.get(name))
            raise Fail(
                "load_checkpoint changed what the model holds: {names} is now {found}."
                if len(changed) == 1
                else "load_checkpoint changed what the model holds: {names} are now {found}.",
                "Only put the values back: model.offset = saved_offset keeps it a plain attribute, as it "
                "was (an nn.Parameter or a buffer would change the model).",
                names=", ".join(changed),
                found=Listed(a_kind(after.get(name)) for name in changed),
            )
        if got["offset"].dtype != state["offset"].dtype:
            raise Fail(
                "After load_checkpoint, model.offset is {dtype}, not {expected}.",
                "Put back the saved tensor itself.",
                dtype=str(got["offset"].dtype),
                expected=str(state["offset"].dtype),
            )
        if not close(forward(model, x, what=N_("The loaded model's forward")), _expected_output(state, x)):
            raise Fail("The restored model computes something else than the saved one.")
    # Loading the first file into the second model must leave the model loaded before alone.
    if not same(tensor(fresh_models[1], "offset"), saved[1]["offset"]):
        raise Fail(
            "Loading a second checkpoint into another model changed the offset of the model loaded "
            "before: the two models hold one offset tensor.",
            "Give each model its own tensor: model.offset = the tensor torch.load gave (or a clone of "
            "it), not a tensor made once and shared by every call.",
        )
    leaves_global_state(before, session.state(), N_("save_checkpoint and load_checkpoint"))


def _returned_the_state(returned: object, state: dict[str, torch.Tensor]) -> bool:
    """Whether load_checkpoint returned a model (or a state) that holds the saved values."""
    if not isinstance(returned, Remote) or returned.kind != "module":
        return False
    try:
        other = dict(state_dict(returned))
        other["offset"] = returned.attr_or_none("offset")
    except (Fail, StudentError, Refused):
        return False
    return _same_state(state, other)
