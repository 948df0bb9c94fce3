"""Lesson 9: predictions about a model that mixes everything, checked against what PyTorch does.

Nothing here holds an answer: each check builds `Everything` here (the check's own torch), asks
PyTorch (which keys `state_dict()` has, which tensors `.to('meta')` moves, which tensors
`optimizer.step()` changes in `training_step`) and compares the student's names with that. The
student's prediction comes back as plain data: a set, list or tuple of names (each once), or a dict
from names to True/False (for 9.2 also to devices), or a function that returns one of these. The
hints come from each wrong name's kind, read from `inventory`. The three questions are answered by
`saved_names`, `moved_names` and `trained_names` in `buflesson.recap`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from buflesson.checks import Fail, exercise
from buflesson.handles import Remote
from buflesson.i18n import N_, Listed, Msg
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PARAMETER, PLAIN, inventory
from buflesson.probes import as_device, names_in, near_miss, prediction
from buflesson.recap import everything_model, moved_names, saved_names, trained_names

FROZEN = "frozen parameter"
EXAMPLE = '{"gain", "linear.weight"}'
EXPECTED = N_("a set of tensor names")


def _model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        return everything_model()


def _kinds() -> dict[str, str]:
    """Each tensor's kind, with frozen parameters told apart, in the model's order."""
    return {
        row.name: FROZEN if row.kind == PARAMETER and not row.requires_grad else row.kind
        for row in inventory(_model())
    }


def _chosen(question: str, key: object, value: object) -> bool:
    """Whether a dict answer puts `key` in the set: True/False, or (for .to()) the device it is on."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    if question == "moved":
        if value is None or value == "-":  # no tensor, no device (as the lesson's table shows it)
            return False
        device = as_device(value)
        if device is not None:
            return device.type == "meta"
    raise Fail(
        "Your dict gives {key!r} the value {value!r}: expected True or False, or a device such as 'meta' or "
        "'cpu'."
        if question == "moved"
        else "Your dict gives {key!r} the value {value!r}: expected True or False.",
        "Answer with a set of names, e.g. {example}; or a dict from each name to True or False.",
        key=key,
        value=value,
        example=EXAMPLE,
    )


def _names(question: str, answer: Remote) -> set[str]:
    """The student's names: the answer's own data, or what the student's function returns."""
    value = prediction(answer, expected=EXPECTED, example=EXAMPLE, call=True)
    if isinstance(value, dict):
        keys = names_in(list(value), expected=EXPECTED, example=EXAMPLE)
        return {key for key in keys if _chosen(question, key, value[key])}
    return set(names_in(value, expected=EXPECTED, example=EXAMPLE))


# For each question, why a tensor of each kind is or is not in the true set.
_WHY = {
    "saved": {
        PARAMETER: N_("{name} is a parameter: state_dict() saves every parameter."),
        FROZEN: N_(
            "{name} is a frozen parameter (requires_grad=False): frozen or not, a parameter is saved."
        ),
        BUFFER: N_(
            "{name} is a buffer: state_dict() saves buffers, BatchNorm's running statistics and "
            "num_batches_tracked included."
        ),
        NON_PERSISTENT_BUFFER: N_(
            "{name} is a non-persistent buffer: named_buffers() lists it, but state_dict() leaves it out."
        ),
        NONE_BUFFER: N_(
            "{name} is a buffer slot that holds None: state_dict() skips it until it holds a tensor."
        ),
        PLAIN: N_(
            "{name} is a plain tensor attribute: PyTorch does not track it, so state_dict() cannot hold it."
        ),
    },
    "moved": {
        PARAMETER: N_("{name} is a parameter: .to() moves every parameter."),
        FROZEN: N_("{name} is a frozen parameter: frozen or not, a parameter moves with .to()."),
        BUFFER: N_("{name} is a buffer: .to() moves every buffer."),
        NON_PERSISTENT_BUFFER: N_(
            "{name} is a non-persistent buffer: not saved, but it moves with .to() like every buffer."
        ),
        NONE_BUFFER: N_("{name} holds None: there is no tensor to move."),
        PLAIN: N_(
            "{name} is a plain tensor attribute: .to() converts parameters and buffers only, so it "
            "stays where it was made."
        ),
    },
    "trained": {
        PARAMETER: N_(
            "{name} is a parameter that requires grad: backward() gives it a gradient, so "
            "optimizer.step() changes it (BatchNorm's weight and bias too)."
        ),
        FROZEN: N_(
            "{name} is a frozen parameter: requires_grad=False, so backward() leaves its .grad None, "
            "and no built-in optimizer's step changes a parameter whose .grad is None (LBFGS reads it as "
            "zeros and adds nothing; the others skip it)."
        ),
        BUFFER: N_(
            "{name} is a buffer: the optimizer only gets model.parameters(). BatchNorm's running "
            "statistics change in the forward pass in training mode, not in optimizer.step()."
        ),
        NON_PERSISTENT_BUFFER: N_("{name} is a buffer: the optimizer only gets model.parameters()."),
        NONE_BUFFER: N_("{name} holds None: the optimizer never sees it."),
        PLAIN: N_(
            "{name} is a plain tensor attribute: it is not in model.parameters(), so the optimizer "
            "never sees it."
        ),
    },
}
_INCLUDED = {
    "saved": N_("state_dict() does not hold it"),
    "moved": N_(".to('meta') leaves it where it was"),
    "trained": N_("optimizer.step() does not change it"),
}
_LEFT_OUT = {
    "saved": N_("state_dict() holds it"),
    "moved": N_(".to('meta') moves it"),
    "trained": N_("optimizer.step() changes it"),
}


def _compare(question: str, answer: Remote, truth: Callable[[], set[str]]) -> None:
    guessed = _names(question, answer)
    expected = truth()
    kinds = _kinds()
    unknown = sorted(guessed - set(kinds))
    if unknown:
        name = unknown[0]
        real = near_miss(name, list(kinds))
        full = [candidate for candidate in kinds if candidate.endswith("." + name)]
        inside = next((candidate for candidate in kinds if name.endswith("." + candidate)), None)
        if inside is not None:
            hint = N_("Names start inside the model: {inside!r}, not {name!r}.")
        elif real is not None:
            hint = N_("The name is {real!r}: names are exact strings, with no spaces, and case matters.")
        elif full:
            hint = N_("A tensor of a submodule is named with the submodule: {full}, not {name!r}.")
        else:
            hint = N_("Use the names listed in the lesson, e.g. 'norm.running_mean' or 'gain'.")
        raise Fail(
            "The model holds no tensor named {names}.",
            hint,
            names=", ".join(repr(name) for name in unknown),
            name=name,
            inside=inside,
            real=real,
            full=Listed((repr(candidate) for candidate in full), N_(" or ")),
        )
    extra = [name for name in kinds if name in guessed - expected]
    missing = [name for name in kinds if name in expected - guessed]
    wrong = len(extra) + len(missing)
    if wrong > 2:
        more = Msg(" ({count} more names are wrong.)", count=wrong - 1)
    else:
        more = Msg(" ({count} more name is wrong.)", count=wrong - 1) if wrong > 1 else ""
    if extra:
        name = extra[0]
        raise Fail(
            "Your set includes {name!r}, but {why}.{more}",
            _WHY[question][kinds[name]],
            name=name,
            why=Msg(_INCLUDED[question]),
            more=more,
        )
    if missing:
        name = missing[0]
        raise Fail(
            "Your set leaves out {name!r}, but {why}.{more}",
            _WHY[question][kinds[name]],
            name=name,
            why=Msg(_LEFT_OUT[question]),
            more=more,
        )


@exercise(
    "9.1",
    "Predict what `state_dict()` saves",
    passed="Right: state_dict() holds every parameter (frozen ones too) and every persistent buffer; not "
    "the non-persistent buffer, the None buffer or the plain attribute.",
)
def predict_saved(answer: Remote) -> None:
    _compare("saved", answer, saved_names)


@exercise(
    "9.2",
    "Predict what `.to()` moves",
    passed="Right: .to() moves every parameter and every buffer, saved or not; the plain attribute stays "
    "where it was made, and the None buffer holds no tensor to move.",
)
def predict_moved(answer: Remote) -> None:
    _compare("moved", answer, moved_names)


@exercise(
    "9.3",
    "Predict what `optimizer.step()` changes",
    passed="Right: in training_step, zero_grad() and backward() run before the step, so the parameters "
    "that require grad are the ones holding a gradient, and optimizer.step() changes exactly those (no "
    "built-in optimizer's step changes a parameter whose .grad is None; the step does not look at the "
    "parameter's requires_grad). "
    "Buffers are not in parameters(): BatchNorm's running statistics change in the forward pass, not in "
    "the step.",
)
def predict_trained(answer: Remote) -> None:
    _compare("trained", answer, trained_names)
