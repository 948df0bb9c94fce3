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
student's side to build, run and convert it (`buflesson.probes`). It runs in the judge (the file is
loaded there and nowhere else), after the visible check, on the same answer. Its gradebook column is
`EXERCISE+FUNCTION` (here `3.1+offset_follows_dtype`). Students see its title, whether it passed,
and the `Fail` message: never its code, never a traceback, never the text of an error inside it.
What the notebook can observe is what the check asks of its answer (build it, call `.double()`...).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buflesson.checks import Fail, run_test
from buflesson.handles import Remote
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


def run_hidden(check: HiddenCheck, answer: Remote, visible: CheckResult) -> CheckResult:
    """Run one hidden check on `answer`; never raises for a wrong answer. Only a `Fail`'s own
    message (and hint) reaches the student: any other ending says that the check did not pass."""
    if visible.status == NOT_ATTEMPTED:
        return CheckResult(check.id, check.title, NOT_ATTEMPTED, "Not attempted.")
    failure: list[Fail] = []

    def test(remote: Remote) -> None:
        try:
            check.test(remote)
        except Fail as caught:
            failure.append(caught)
            raise

    result = run_test(check.id, check.title, "Passed.", test, answer)
    if result.status == PASSED or failure or result.status == NOT_ATTEMPTED:
        return result
    # An error inside the hidden check (its own, or the student's code it ran): its text could
    # quote the check's code or values, so only say that it did not pass.
    return CheckResult(check.id, check.title, FAILED, "This hidden check did not pass on your answer.")
