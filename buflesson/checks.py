"""`check(exercise_id, answer)` and the registry of exercises it draws on.

Each exercise is a test function registered with `@exercise`. It receives the student's answer as a
`Remote` (`buflesson.handles`): it asks the student's side to build, run, save, load, move and step
the answer, receives plain data back, compares it with what it computes itself, and raises `Fail` at
the first problem. The same function serves `check()` in a notebook (everything in one process) and
the grader's judge (the student's code in another process). `check` turns the outcome into a
`CheckResult` and never lets an exception from inside buflesson reach the student.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from buflesson.handles import LocalLink, Refused, Remote, Session, StudentError
from buflesson.i18n import N_, render, tr
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED, CheckResult
from buflesson.wire import Ref


class Fail(Exception):
    """Raised by an exercise test: what went wrong, and how to fix it.

    `message` and `hint` are templates filled with `values` (`str.format`), so the same sentence can
    be translated once and reused with other names and numbers: `message` and `hint` give them in
    the current language (`buflesson.i18n`); a value that is a `Msg` is translated with them.
    """

    def __init__(self, message: str, hint: str = "", **values: object) -> None:
        self.template, self.hint_template, self.values = message, hint, values
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return render(self.template, **self.values)

    @property
    def hint(self) -> str:
        return render(self.hint_template, **self.values) if self.hint_template else ""


class NotAttempted(Exception):
    """Raised when the answer is still the placeholder the student notebook ships with."""


Test = Callable[[Remote], None]


@dataclass(frozen=True)
class Exercise:
    """A registered exercise: its id, title, success message and test function.

    The title is the one source of the exercise's heading: `buflesson notebooks` writes it into the
    lesson's `### Exercise N.K · Title` line.
    """

    id: str
    title: str
    passed_message: str
    test: Test


_REGISTRY: dict[str, Exercise] = {}
_loaded = False


def exercise(exercise_id: str, title: str, passed: str) -> Callable[[Test], Test]:
    """Register `test(answer)` as the check of exercise `exercise_id`."""

    def register(test: Test) -> Test:
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


NOT_ATTEMPTED_MESSAGE = N_(
    "Not attempted yet: replace the placeholder in the exercise cell, run it, then run this cell."
)
ANSWER_KIND_HINT = N_("Make sure the answer is the kind of object the exercise asks for.")


def run_test(exercise_id: str, title: str, passed: str, test: Test, answer: Remote) -> CheckResult:
    """Run one test on `answer` and turn what happened into a `CheckResult` (never raises for a
    wrong or hostile answer)."""

    def result(status: str, message: str, hint: str = "") -> CheckResult:
        return CheckResult(exercise_id, tr(title), status, message, hint)

    try:
        kind = answer.kind
        if kind == "placeholder":
            raise NotAttempted
        defined_in = str(answer.info.get("defined_in") or "")
        if kind == "function" and (defined_in == "buflesson" or defined_in.startswith("buflesson.")):
            raise Fail(
                "{name} is buflesson's own, not your answer.",
                "Write the answer yourself in the exercise cell and pass what you wrote.",
                name=answer.name,
            )
        if kind == "none":
            raise Fail(
                "The answer is None.",
                "Pass the thing the exercise asks for (a class, a function or a value). "
                "A function that forgets `return` gives None.",
            )
        before = _global_state(answer)
        try:
            test(answer)
        except NotAttempted:
            raise
        except Exception:
            _expect_left_alone(answer, before)  # a leak is named before what it may have caused
            raise
        _expect_left_alone(answer, before)
    except NotAttempted:
        return result(NOT_ATTEMPTED, tr(NOT_ATTEMPTED_MESSAGE))
    except Fail as failure:
        return result(FAILED, failure.message, failure.hint)
    except StudentError as error:
        if error.not_implemented and 'missing the required "forward" function' not in error.message:
            return result(NOT_ATTEMPTED, tr(NOT_ATTEMPTED_MESSAGE))
        return result(
            FAILED,
            render("Your code raised {error}", error=str(error)),
            tr(
                "Run your code on its own in a new cell (build the class, call the function) to see "
                "where the error comes from."
            ),
        )
    except Refused as refused:
        return result(
            FAILED,
            render("The check could not read your answer: {reason}", reason=str(refused)),
            tr(ANSWER_KIND_HINT),
        )
    except Exception as error:  # a bug in a test must still not show the student a traceback
        return result(
            FAILED,
            render("The check could not finish: {error}", error=f"{type(error).__name__}: {error}"),
            tr(ANSWER_KIND_HINT),
        )
    return result(PASSED, tr(passed))


def _global_state(answer: Remote) -> dict | None:
    try:
        return answer.session.state()
    except Exception:  # a session that cannot say (a test's stub): nothing to compare
        return None


def _expect_left_alone(answer: Remote, before: dict | None) -> None:
    """Every exercise: Fail when the answer's code changed global settings (grad mode, default dtype or
    device, torch's seed) or a tensor the check passed it (`probes.leaves_global_state`)."""
    if before is None:
        return
    from buflesson.probes import leaves_global_state

    after = _global_state(answer)
    if after is not None:
        # Random numbers drawn (torch_rng) are judged where an exercise asks for it; a reseed never.
        leaves_global_state(before, after, N_("Your answer"), ignore=("torch_rng",))


def run_check(exercise_id: str, session: Session) -> CheckResult:
    """The check of `exercise_id` on the answer that `session`'s student side holds."""
    ex = exercises()[exercise_id]
    return run_test(ex.id, ex.title, ex.passed_message, ex.test, Remote(session, Ref(1)))


def check(exercise_id: str, answer: object) -> CheckResult:
    """Test `answer` for exercise `exercise_id` and return a `CheckResult`.

    A wrong answer never raises: it gives a failed result with a hint. An unknown
    exercise id raises `KeyError` listing the valid ids.
    """
    from buflesson.workbench import Workbench

    known = exercises()
    if exercise_id not in known:
        raise KeyError(
            render("unknown exercise {id!r}; valid ids: {ids}", id=exercise_id, ids=", ".join(known))
        )
    bench = Workbench(answer)
    try:
        return run_check(exercise_id, Session(LocalLink(bench)))
    finally:
        bench.close()
