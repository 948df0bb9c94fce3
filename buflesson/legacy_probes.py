"""TRANSITIONAL: the probes of checks not yet ported to `buflesson.probes` (handles on the student's side).

Behaviour probes the exercise tests share: build, run, save and reload, move, step.

Every probe runs the student's code and turns a failure into `Fail` (with a
hint) or `NotAttempted`, so no traceback from inside the library reaches a
student.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable

import torch
from torch import nn

from buflesson.checks import Fail, NotAttempted, exercise
from buflesson.inventory import (
    BUFFER,
    NON_PERSISTENT_BUFFER,
    NONE_BUFFER,
    PARAMETER,
    PLAIN,
    inventory,
)


def call_student(fn: Callable, *args: object, what: str = "your code") -> object:
    """Call student code; its exceptions become `Fail`, `NotImplementedError` becomes `NotAttempted`."""
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise NotAttempted from error
    except Fail:
        raise
    except Exception as error:
        raise Fail(
            f"{what} raised {type(error).__name__}: {error}",
            "Run the exercise cell on its own and read the error; the message above is PyTorch's.",
        ) from None


def build_module(answer: object, *args: object) -> nn.Module:
    """Instantiate the student's `nn.Module` subclass (or call their factory) with `args`."""
    if isinstance(answer, nn.Module):
        raise Fail(
            f"Got a model instance ({type(answer).__name__}), not the class.",
            "Pass the class itself, without calling it: check(..., MyModel), not check(..., MyModel()).",
        )
    if not callable(answer):
        raise Fail(
            f"Expected an nn.Module subclass, got {type(answer).__name__}.",
            "Pass the class you defined in the exercise cell.",
        )
    if inspect.isclass(answer) and not issubclass(answer, nn.Module):
        raise Fail(
            f"{answer.__name__} is not a subclass of torch.nn.Module.",
            "Define it as `class Name(nn.Module):` and call super().__init__() first.",
        )
    name = getattr(answer, "__name__", "your class")
    module = call_student(answer, *args, what=f"Creating {name}")
    if not isinstance(module, nn.Module):
        raise Fail(f"{name}(...) gave {type(module).__name__}, not an nn.Module.")
    return module


def build_isolated(answer: object, *args: object, seed: int | None = None) -> nn.Module:
    """`build_module` in a forked random state, seeded with `seed` when given.

    The student's own random state is left as it was, whatever their `__init__` draws.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return build_module(answer, *args)


def kind_of(module: nn.Module, name: str) -> str | None:
    """The inventory kind of tensor `name` in `module`, or None when it holds no such tensor."""
    table = inventory(module)
    return table[name].kind if name in table else None


_HINTS = {
    PLAIN: (
        "{name!r} is a plain tensor attribute: PyTorch does not track it, so it is not saved "
        "and does not move with the model.",
        "Register it: self.register_buffer({name!r}, tensor) (or self.{name} = nn.Buffer(tensor)).",
    ),
    NON_PERSISTENT_BUFFER: (
        "{name!r} is a buffer with persistent=False: it moves with the model but is left out "
        "of state_dict(), so it is not saved.",
        "Drop persistent=False so the buffer is saved with the model.",
    ),
    PARAMETER: (
        "{name!r} is an nn.Parameter: it is saved and moved, but it is listed in parameters() "
        "and handed to the optimizer.",
        "Fixed state belongs in a buffer: self.register_buffer({name!r}, tensor). A frozen "
        "Parameter is still switched back on by any 'unfreeze all parameters' loop.",
    ),
    BUFFER: (
        "{name!r} is a persistent buffer, so it is saved in state_dict().",
        "This exercise wants it left out of state_dict(): register it with persistent=False.",
    ),
    NONE_BUFFER: (
        "{name!r} is registered as a buffer but holds None, so it is neither saved nor moved.",
        "Register the tensor itself: self.register_buffer({name!r}, tensor).",
    ),
}


def expect_kind(module: nn.Module, name: str, expected: str, *, sample: object = None) -> None:
    """Fail with a hint for the typical mistake unless tensor `name` is of kind `expected`.

    When `name` is missing after `__init__` but appears after running the model on
    `sample`, the hint says the buffer is made inside `forward`.
    """
    actual = kind_of(module, name)
    if actual == expected:
        return
    if actual is None:
        if sample is not None:
            try:
                module(sample)
            except Exception:
                pass
            if kind_of(module, name) is not None:
                raise Fail(
                    f"{name!r} only appears after forward() runs: it is created inside forward.",
                    "Create it once in __init__ so it exists, is saved and moves before the "
                    "first forward pass.",
                )
        raise Fail(
            f"The model has no tensor named {name!r}.",
            f"Keep the name {name!r}: the lesson's code and the check look it up by that name.",
        )
    message, hint = _HINTS[actual]
    raise Fail(message.format(name=name), hint.format(name=name))


def save_and_reload(
    module: nn.Module, make_fresh: Callable[[], nn.Module], **load_kwargs: object
) -> nn.Module:
    """Save `module.state_dict()` to a real file, load it into `make_fresh()`, return that."""
    fd, path = tempfile.mkstemp(suffix=".pt", prefix="buflesson-")
    os.close(fd)
    try:
        torch.save(module.state_dict(), path)
        fresh = make_fresh()
        state = torch.load(path, weights_only=True)
        call_student(lambda: fresh.load_state_dict(state, **load_kwargs), what="load_state_dict")
        return fresh
    finally:
        os.remove(path)


def load_strict(model: nn.Module, state: dict, what: str, hint: str) -> None:
    """`model.load_state_dict(state)` (strict); a failure becomes `Fail` that names `what`, with `hint`."""
    try:
        model.load_state_dict(state)
    except NotImplementedError as error:
        raise NotAttempted from error
    except Exception as error:
        raise Fail(f"Loading {what} raised {type(error).__name__}: {error}".strip(), hint) from None


def move(module: nn.Module, target: torch.device | str | torch.dtype) -> nn.Module:
    """`module.to(target)`, with the student's overrides turned into `Fail`."""
    return call_student(lambda: module.to(target), what=f".to({target})")


def sgd_step(module: nn.Module, sample: torch.Tensor, lr: float = 0.1) -> None:
    """One SGD step on `module.parameters()` for the loss `module(sample).sum()`."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise Fail(
            "The model has no trainable parameters, so an optimizer step changes nothing.",
            "Keep the layers the exercise gives you (for example the nn.Linear).",
        )
    optimizer = torch.optim.SGD(params, lr=lr)
    optimizer.zero_grad()
    out = call_student(module, sample, what="forward")
    call_student(lambda: out.sum().backward(), what="backward")
    optimizer.step()


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when two tensors hold the same values (devices and dtypes aside)."""
    return a.shape == b.shape and torch.equal(a.detach().cpu().double(), b.detach().cpu().double())


def legacy_exercise(exercise_id: str, title: str, passed: str) -> Callable:
    """Register a check written against the student's object itself (in-process only)."""

    def register(test: Callable[[object], None]) -> Callable[[object], None]:
        def on_remote(answer) -> None:
            raw = answer.session.link.bench.objects[1]
            test(raw)

        on_remote.in_process_only = True  # the grader runs it beside the answer, and says so
        exercise(exercise_id, title, passed)(on_remote)
        return test

    return register
