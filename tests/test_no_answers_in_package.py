"""The package holds no exercise answers: no class or function buflesson ships passes any check."""

import importlib
import inspect
import pkgutil

import pytest
from torch import nn

import buflesson
from buflesson.checks import check, exercises
from buflesson.results import PASSED

# Commands that act on files, processes or the terminal are not candidate answers (and must not run).
TOOLS = (
    "buflesson.cli",
    "buflesson.lab",
    "buflesson.kernel",
    "buflesson.grading",
    "buflesson.release",
    "buflesson.authoring",
    "buflesson.translation",
    "buflesson.exercises",
    "buflesson.guidance",
    "buflesson.warmup",
    "buflesson.tracebacks",
)


def shipped_objects() -> dict[str, object]:
    """Every model class anywhere in buflesson, and every function and plain-data constant of the
    modules a lesson imports from: what a student could pass to `check` instead of an answer."""
    found: dict[str, object] = {}
    for info in pkgutil.walk_packages(buflesson.__path__, "buflesson."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # a module needing an optional package
            continue
        tool = info.name.startswith(TOOLS)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, nn.Module) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
            elif tool or name.startswith("__"):
                continue
            elif inspect.isfunction(value) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
            elif isinstance(value, (list, tuple, dict, set, frozenset)):
                found[f"{info.name}.{name}"] = value
    return found


OBJECTS = shipped_objects()


@pytest.mark.parametrize("exercise_id", list(exercises()))
def test_nothing_buflesson_ships_passes_a_check(exercise_id, monkeypatch):
    monkeypatch.setenv("BUFLESSON_CHECK_SEED", "1")
    passing = [name for name, obj in OBJECTS.items() if check(exercise_id, obj).status == PASSED]
    assert not passing, f"{exercise_id} is answered by {passing}"
