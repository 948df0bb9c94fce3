"""`check(exercise_id, answer)` and the registry of exercises it draws on.

Each exercise is a function that tests what the student's answer *does* and
raises `Fail` at the first problem it finds. `check` turns that into a
`CheckResult` and never lets an exception escape to the student.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED, CheckResult


class Fail(Exception):
    """Raised by an exercise test: what went wrong, and how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotAttempted(Exception):
    """Raised when the answer is still the placeholder the student notebook ships with."""


@dataclass(frozen=True)
class Exercise:
    """A registered exercise: its id, title, success message and test function."""

    id: str
    title: str
    passed_message: str
    test: Callable[[object], None]


_REGISTRY: dict[str, Exercise] = {}
_loaded = False


def exercise(exercise_id: str, title: str, passed: str) -> Callable:
    """Register `test(answer)` as the check of exercise `exercise_id`."""

    def register(test: Callable[[object], None]) -> Callable[[object], None]:
        if exercise_id in _REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        _REGISTRY[exercise_id] = Exercise(exercise_id, title, passed, test)
        return test

    return register


def _load_exercises() -> None:
    import buflesson.exercises as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def exercises() -> dict[str, Exercise]:
    """Every registered exercise, by id, in lesson order."""
    global _loaded
    if not _loaded:
        _load_exercises()
        _loaded = True
    return dict(sorted(_REGISTRY.items(), key=lambda item: _sort_key(item[0])))


def _sort_key(exercise_id: str) -> tuple:
    # Numbers sort as numbers ("2.10" after "2.9") and before any name, so mixed ids still compare.
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in exercise_id.split("."))


def is_placeholder(answer: object) -> bool:
    """True for the untouched placeholder of a student notebook (`...`)."""
    return answer is Ellipsis


def check(exercise_id: str, answer: object) -> CheckResult:
    """Test `answer` for exercise `exercise_id` and return a `CheckResult`.

    A wrong answer never raises: it gives a failed result with a hint. An unknown
    exercise id raises `KeyError` listing the valid ids.
    """
    known = exercises()
    if exercise_id not in known:
        raise KeyError(f"unknown exercise {exercise_id!r}; valid ids: {', '.join(known)}")
    ex = known[exercise_id]
    try:
        if is_placeholder(answer):
            raise NotAttempted
        if answer is None:
            raise Fail(
                "The answer is None.",
                "Pass the thing the exercise asks for (a class, a function or a value). "
                "A function that forgets `return` gives None.",
            )
        ex.test(answer)
    except NotAttempted:
        return CheckResult(
            ex.id,
            ex.title,
            NOT_ATTEMPTED,
            "Not attempted yet: replace the placeholder in the exercise cell, run it, then run this cell.",
        )
    except Fail as failure:
        return CheckResult(ex.id, ex.title, FAILED, failure.message, failure.hint)
    except Exception as error:  # a bug in a test must still not show the student a traceback
        return CheckResult(
            ex.id,
            ex.title,
            FAILED,
            f"The check could not finish: {type(error).__name__}: {error}",
            "Make sure the answer is the kind of object the exercise asks for.",
        )
    return CheckResult(ex.id, ex.title, PASSED, ex.passed_message)
