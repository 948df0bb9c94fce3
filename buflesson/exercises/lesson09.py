"""Lesson 9: predictions about a model that mixes everything, checked against what PyTorch does.

Nothing here holds an answer: each check builds `Everything`, asks PyTorch (which
keys `state_dict()` has, which tensors `.to('meta')` moves, which tensors
`optimizer.step()` changes) and compares the student's set of names with that.
The hints come from each wrong name's kind, read from `inventory`. The three
questions are answered by `saved_names`, `moved_names` and `trained_names` in
`buflesson.recap`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from buflesson.checks import Fail
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PARAMETER, PLAIN, inventory
from buflesson.legacy_probes import call_student, legacy_exercise
from buflesson.recap import everything_model, moved_names, saved_names, trained_names

FROZEN = "frozen parameter"


def _model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        return everything_model()


def _kinds() -> dict[str, str]:
    """Each tensor's kind, with frozen parameters told apart, in the model's order."""
    return {
        row.name: FROZEN if row.kind == PARAMETER and not row.requires_grad else row.kind
        for row in inventory(_model())
    }


def _names(answer: object) -> set[str]:
    """The student's set of names; a function is called first, so it may return them."""
    if callable(answer) and not inspect.isclass(answer) and not isinstance(answer, nn.Module):
        answer = call_student(answer, what="Your function")
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (set, frozenset, list, tuple)):
        raise Fail(
            f"Expected a set of tensor names, got {type(answer).__name__}.",
            'Return a set of strings, e.g. {"gain", "linear.weight"}.',
        )
    if not all(isinstance(name, str) for name in answer):
        raise Fail("Every name must be a string.", 'Write each name in quotes, e.g. "norm.weight".')
    return set(answer)


# For each question, why a tensor of each kind is or is not in the true set.
_WHY = {
    "saved": {
        PARAMETER: "{name} is a parameter: state_dict() saves every parameter.",
        FROZEN: "{name} is a frozen parameter (requires_grad=False): frozen or not, a parameter is saved.",
        BUFFER: "{name} is a buffer: state_dict() saves buffers, BatchNorm's running statistics and "
        "num_batches_tracked included.",
        NON_PERSISTENT_BUFFER: "{name} is a non-persistent buffer: named_buffers() lists it, but "
        "state_dict() leaves it out.",
        NONE_BUFFER: "{name} is a buffer slot that holds None: state_dict() skips it until it holds "
        "a tensor.",
        PLAIN: "{name} is a plain tensor attribute: PyTorch does not track it, so state_dict() cannot "
        "hold it.",
    },
    "moved": {
        PARAMETER: "{name} is a parameter: .to() moves every parameter.",
        FROZEN: "{name} is a frozen parameter: frozen or not, a parameter moves with .to().",
        BUFFER: "{name} is a buffer: .to() moves every buffer.",
        NON_PERSISTENT_BUFFER: "{name} is a non-persistent buffer: not saved, but it moves with .to() "
        "like every buffer.",
        NONE_BUFFER: "{name} holds None: there is no tensor to move.",
        PLAIN: "{name} is a plain tensor attribute: .to() converts parameters and buffers only, so it "
        "stays where it was made.",
    },
    "trained": {
        PARAMETER: "{name} is a trainable parameter: backward gives it a gradient and optimizer.step() "
        "changes it (BatchNorm's weight and bias too).",
        FROZEN: "{name} is a frozen parameter: requires_grad=False, so backward gives it no gradient "
        "and the optimizer skips it.",
        BUFFER: "{name} is a buffer: the optimizer only gets model.parameters(). BatchNorm's running "
        "statistics change in the forward pass in training mode, not in optimizer.step().",
        NON_PERSISTENT_BUFFER: "{name} is a buffer: the optimizer only gets model.parameters().",
        NONE_BUFFER: "{name} holds None: the optimizer never sees it.",
        PLAIN: "{name} is a plain tensor attribute: it is not in model.parameters(), so the optimizer "
        "never sees it.",
    },
}
_INCLUDED = {
    "saved": "state_dict() does not hold it",
    "moved": ".to('meta') leaves it where it was",
    "trained": "optimizer.step() does not change it",
}
_LEFT_OUT = {
    "saved": "state_dict() holds it",
    "moved": ".to('meta') moves it",
    "trained": "optimizer.step() changes it",
}


def _compare(question: str, answer: object, truth: Callable[[], set[str]]) -> None:
    guessed = _names(answer)
    expected = truth()
    kinds = _kinds()
    unknown = sorted(guessed - set(kinds))
    if unknown:
        name = unknown[0]
        full = [real for real in kinds if real.endswith("." + name)]
        hint = (
            f"A tensor of a submodule is named with the submodule: "
            f"{' or '.join(repr(real) for real in full)}, not {name!r}."
            if full
            else "Use the names listed in the lesson, e.g. 'norm.running_mean' or 'gain'."
        )
        raise Fail(f"The model holds no tensor named {name!r}.", hint)
    extra = [name for name in kinds if name in guessed - expected]
    missing = [name for name in kinds if name in expected - guessed]
    wrong = len(extra) + len(missing)
    more = f" ({wrong - 1} more name{'s are' if wrong > 2 else ' is'} wrong.)" if wrong > 1 else ""
    if extra:
        name = extra[0]
        raise Fail(
            f"Your set includes {name!r}, but {_INCLUDED[question]}.{more}",
            _WHY[question][kinds[name]].format(name=name),
        )
    if missing:
        name = missing[0]
        raise Fail(
            f"Your set leaves out {name!r}, but {_LEFT_OUT[question]}.{more}",
            _WHY[question][kinds[name]].format(name=name),
        )


@legacy_exercise(
    "9.1",
    "Predict what `state_dict()` saves",
    passed="Right: parameters (frozen too) and persistent buffers are saved; nothing else.",
)
def predict_saved(answer: object) -> None:
    _compare("saved", answer, saved_names)


@legacy_exercise(
    "9.2",
    "Predict what `.to()` moves",
    passed="Right: every parameter and every buffer moves, saved or not; plain attributes and None stay.",
)
def predict_moved(answer: object) -> None:
    _compare("moved", answer, moved_names)


@legacy_exercise(
    "9.3",
    "Predict what `optimizer.step()` changes",
    passed="Right: only parameters that require grad; buffers change in forward, if at all.",
)
def predict_trained(answer: object) -> None:
    _compare("trained", answer, trained_names)
