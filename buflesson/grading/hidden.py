"""Hidden checks: tests an instructor keeps out of the student release, counted in the gradebook.

A hidden-checks file is plain Python, passed to `buflesson grade --hidden FILE`:

    from buflesson.checks import Fail
    from buflesson.grading.hidden import hidden
    from buflesson.probes import build_module

    @hidden("3.1", "The offset survives .double()", points=2)
    def offset_follows_dtype(answer):
        model = build_module(answer).double()
        if model.offset.dtype != torch.float64:
            raise Fail("offset stayed float32 after .double().")

Each runs on the same answer object as the visible check of its exercise, after it. Its gradebook
column is `EXERCISE+FUNCTION` (here `3.1+offset_follows_dtype`). Students see its title, whether it
passed, and the `Fail` message: never its code, and never a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buflesson.checks import Fail, NotAttempted, is_placeholder
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED, CheckResult


@dataclass(frozen=True)
class HiddenCheck:
    exercise: str
    id: str
    title: str
    points: float
    test: Callable[[object], None]


_HIDDEN: dict[str, HiddenCheck] = {}
_LOADED: dict[Path, list[HiddenCheck]] = {}


def hidden(exercise_id: str, title: str, points: float = 1) -> Callable:
    """Register `test(answer)` as a hidden check of exercise `exercise_id`."""

    def register(test: Callable[[object], None]) -> Callable[[object], None]:
        check_id = f"{exercise_id}+{test.__name__}"
        if check_id in _HIDDEN:
            raise ValueError(f"hidden check {check_id!r} is defined twice")
        _HIDDEN[check_id] = HiddenCheck(exercise_id, check_id, title, float(points), test)
        return test

    return register


def load_hidden(path: Path) -> list[HiddenCheck]:
    """Run a hidden-checks file (once per process) and return the checks it defined."""
    path = Path(path).resolve()
    if path in _LOADED:
        return _LOADED[path]
    before = set(_HIDDEN)
    name = f"buflesson_hidden_{len(_LOADED)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    found = [check for key, check in _HIDDEN.items() if key not in before]
    if not found:
        raise ValueError(f"{path} defines no @hidden check")
    _LOADED[path] = found
    return found


def run_hidden(check: HiddenCheck, answer: object, visible: CheckResult) -> CheckResult:
    """Run one hidden check on `answer`; never raises for a wrong answer, never shows a traceback."""

    def result(status: str, message: str, hint: str = "") -> CheckResult:
        return CheckResult(check.id, check.title, status, message, hint)

    if visible.status == NOT_ATTEMPTED or is_placeholder(answer):
        return result(NOT_ATTEMPTED, "Not attempted.")
    try:
        check.test(answer)
    except NotAttempted:
        return result(NOT_ATTEMPTED, "Not attempted.")
    except Fail as failure:
        return result(FAILED, failure.message, failure.hint)
    except Exception:
        return result(FAILED, "This hidden check could not finish on your answer.")
    return result(PASSED, "Passed.")
