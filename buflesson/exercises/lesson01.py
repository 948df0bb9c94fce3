"""Lesson 1: a plain tensor attribute is not in state_dict(), so a save/load round trip loses it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import torch
from torch import nn

from buflesson.checks import Fail
from buflesson.legacy_probes import call_student, legacy_exercise, same
from buflesson.models import plain_offset_model, sample_input, standardize_model


@legacy_exercise(
    "1.1", "Predict the keys of `state_dict()`", passed="Right: only the layers' parameters are saved."
)
def predict_keys(answer: object) -> None:
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (list, tuple, set, frozenset, dict)):
        raise Fail(
            f"Expected a list of key names, got {type(answer).__name__}.",
            'Write the keys as a list of strings, e.g. keys = ["layer.weight", ...].',
        )
    names = list(answer)
    if not all(isinstance(name, str) for name in names):
        raise Fail("Every key of state_dict() is a string.", "Write each key in quotes.")
    model = standardize_model()
    truth = set(model.state_dict())
    plain = {name for name, value in vars(model).items() if isinstance(value, torch.Tensor)}
    guessed = set(names)
    if guessed & plain:
        listed = ", ".join(sorted(guessed & plain))
        raise Fail(
            f"{listed}: plain tensor attributes are not in state_dict().",
            "state_dict() holds parameters and buffers only; `self.mean = torch.tensor(...)` is neither.",
        )
    if "out.bias" in guessed:
        raise Fail(
            "out.bias is not a key: the layer `out` has no bias.",
            "Look at how `out` is built: nn.Linear(4, 1, bias=False).",
        )
    short = {name for name in guessed - truth if name in ("weight", "bias")}
    if short:
        raise Fail(
            f"{', '.join(sorted(short))}: a key names its submodule too.",
            "A parameter of the submodule `self.hidden` is saved as 'hidden.weight', not 'weight'.",
        )
    if guessed - truth:
        raise Fail(f"Not keys of state_dict(): {', '.join(sorted(guessed - truth))}.")
    if truth - guessed:
        raise Fail(
            f"{len(truth - guessed)} key(s) missing.",
            "Every nn.Linear has a weight, and a bias unless it is built with bias=False.",
        )


def _tensors(value: object) -> Iterator[torch.Tensor]:
    """Every tensor inside what torch.load returned (dicts, lists and tuples opened)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


@legacy_exercise(
    "1.2",
    "Save and restore the offset by hand",
    passed="The offset survived the round trip through a real file.",
)
def checkpoint_by_hand(answer: object) -> None:
    if not (isinstance(answer, tuple) and len(answer) == 2 and all(callable(f) for f in answer)):
        raise Fail(
            "Expected the two functions as a pair.",
            "Pass them both, without calling them: check('1.2', (save_checkpoint, load_checkpoint)).",
        )
    save, load = answer
    model = plain_offset_model(seed=1)
    model.offset = torch.tensor([3.0, 4.0])
    fresh = plain_offset_model(seed=2)
    with tempfile.TemporaryDirectory(prefix="buflesson-") as folder:
        path = os.path.join(folder, "checkpoint.pt")
        call_student(save, model, path, what="save_checkpoint(model, path)")
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            raise Fail(
                "save_checkpoint wrote nothing to `path`.", "Write the file with torch.save(..., path)."
            )
        returned = call_student(load, fresh, path, what="load_checkpoint(model, path)")
        try:
            saved = torch.load(path, weights_only=True)
        except Exception:  # a pickled whole model is a valid answer too; then only behaviour counts
            saved = None
    restored = returned if isinstance(returned, nn.Module) else fresh
    if not same(restored.linear.weight, model.linear.weight):
        raise Fail(
            "The linear layer's weights were not restored.",
            "Save model.state_dict() and put it back with model.load_state_dict(...).",
        )
    if not isinstance(restored.offset, torch.Tensor) or not same(restored.offset, model.offset):
        if not any(same(tensor, model.offset) for tensor in _tensors(saved)):
            raise Fail(
                "The file does not hold the offset: state_dict() leaves plain attributes out.",
                "Save a dict that holds the state_dict and model.offset side by side.",
            )
        raise Fail(
            "The file holds the offset, but load_checkpoint does not put it back.",
            "After load_state_dict, set model.offset to the saved tensor.",
        )
    x = sample_input()
    if not same(call_student(restored, x, what="forward"), model(x)):
        raise Fail("The restored model computes something else than the saved one.")
