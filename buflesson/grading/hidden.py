"""Hidden checks: tests an instructor keeps out of the student release, counted in the gradebook.

A hidden-checks file is plain Python, passed to `buflesson grade --hidden FILE`:

    from buflesson.checks import Fail
    from buflesson.grading.hidden import hidden
    from buflesson.probes import build, move, tensor

    @hidden("3.1", "The offset survives .double()", points=2)
    def offset_follows_dtype(answer):
        model = move(build(answer), torch.float64)
        if tensor(model, "offset").dtype != torch.float64:
            raise Fail("offset stayed float32 after .double().")

Like an exercise's check, it receives the answer as a `Remote` (`buflesson.handles`) and asks the
student's side to build, run and convert it (`buflesson.probes`). It runs after the visible check.
Its gradebook column is `EXERCISE+FUNCTION` (here `3.1+offset_follows_dtype`). Students see its
title, whether it passed, and the `Fail` message: never its code, and never a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buflesson.checks import run_test
from buflesson.handles import LocalLink, Remote, Session
from buflesson.results import NOT_ATTEMPTED, CheckResult
from buflesson.wire import Ref


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
    """Run one hidden check on `answer`; never raises for a wrong answer, never shows a traceback.

    `answer` is a `Remote`, or the answer object itself (then it runs in this process)."""
    if visible.status == NOT_ATTEMPTED:
        return CheckResult(check.id, check.title, NOT_ATTEMPTED, "Not attempted.")
    bench = None
    if not isinstance(answer, Remote):
        from buflesson.workbench import Workbench

        bench = Workbench(answer)
        answer = Remote(Session(LocalLink(bench)), Ref(1))
    try:
        result = run_test(check.id, check.title, "Passed.", check.test, answer)
    finally:
        if bench is not None:
            bench.close()
    if result.status == "failed" and result.message.startswith("The check could not finish"):
        # A hidden check's own error text could show its code: say only that it failed.
        return CheckResult(
            check.id, check.title, result.status, "This hidden check could not finish on your answer."
        )
    return result
