"""From what the judge saw to a gradebook row: status, points per check, a short reason.

Points come only from `Outcome.checks`, which the judge decided itself. What the child reported
about its cells (errors, time-outs) only explains a row.
"""

from __future__ import annotations

from dataclasses import dataclass

from buflesson.checks import exercises
from buflesson.grading.course import Lesson
from buflesson.grading.gradebook import CRASHED, GRADED, TAMPERED, TIMEOUT, NotebookResult
from buflesson.grading.hidden import HiddenCheck
from buflesson.grading.jobs import Outcome
from buflesson.grading.judge.conversation import short
from buflesson.grading.limits import Limits
from buflesson.grading.submissions import Submission
from buflesson.i18n import tr
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED

KEEP, ZERO = "keep", "zero"
TEXT_KEYS = ("title", "status", "message", "hint")


@dataclass(frozen=True)
class Scheme:
    """What each check is worth and what altered cells cost."""

    points: dict[str, float]  # exercise id -> points; default 1
    hidden: dict[str, list[HiddenCheck]]  # exercise id -> its hidden checks
    tampered_policy: str = KEEP

    def worth(self, exercise_id: str) -> float:
        return self.points.get(exercise_id, 1.0)

    def columns(self, lesson: Lesson) -> list[tuple[str, str, float, bool]]:
        """(column id, exercise id, points, hidden) for every check of a lesson, in order."""
        out = []
        for exercise_id in lesson.exercises:
            out.append((exercise_id, exercise_id, self.worth(exercise_id), False))
            out += [(h.id, exercise_id, h.points, True) for h in self.hidden.get(exercise_id, [])]
        return out

    def title(self, column: str, exercise_id: str, code: str = "en") -> str:
        """The title a check shows, for a check that did not report one (it never ran); an
        exercise's title in the language `code` (a hidden check's as its author wrote it)."""
        for check in self.hidden.get(exercise_id, []):
            if check.id == column:
                return check.title
        known = exercises().get(exercise_id)
        return tr(known.title, code) if known is not None and column == exercise_id else ""

    def max_score(self, lesson: Lesson | None) -> float:
        return sum(c[2] for c in self.columns(lesson)) if lesson else 0.0


def _check(column, exercise_id, title, status, message, hint, points, hidden, **extra) -> dict:
    return {
        "exercise": column,
        "of": exercise_id,
        "title": title,
        "status": status,
        "message": message,
        "hint": hint,
        "points": points if status == PASSED else 0.0,
        "max_points": points,
        "hidden": hidden,
        **extra,
    }


def unrun(sub: Submission, lesson: Lesson | None, scheme: Scheme) -> NotebookResult:
    """The result of a submission that was not run (invalid, an older duplicate, or crashed before)."""
    checks = [
        _check(
            column,
            exercise_id,
            scheme.title(column, exercise_id, sub.language),
            NOT_ATTEMPTED,
            "Not graded: " + sub.problem,
            "",
            0,
            hidden,
        )
        for column, exercise_id, _points, hidden in (scheme.columns(lesson) if lesson else [])
    ]
    return NotebookResult(
        sub.student or "?",
        sub.lesson or sub.path.stem,
        sub.file,
        sub.status,
        short(sub.problem),
        checks,
        max_score=scheme.max_score(lesson),
        sha256=sub.sha256,
        language=sub.language,
    )


def verdict(
    outcome: Outcome, sub: Submission, lesson: Lesson, scheme: Scheme, limits: Limits
) -> NotebookResult:
    """The gradebook result of a notebook the judge has run."""
    checks = []
    for column, exercise_id, points, hidden in scheme.columns(lesson):
        got = outcome.checks.get(column)
        if got is not None:
            checks.append(_check(column, exercise_id, *(got[k] for k in TEXT_KEYS), points, hidden))
            continue
        if exercise_id in outcome.check_errors:
            error, not_implemented = outcome.check_errors[exercise_id]
            status = NOT_ATTEMPTED if not_implemented else FAILED
            message = f"The check could not run: {error}. Run your exercise cell without errors first."
        elif outcome.stopped:
            status, message = (
                FAILED,
                f"Not graded: the notebook was stopped ({outcome.stop_status}) before this check.",
            )
        else:
            status, message = FAILED, "Not graded: this check did not run."
        checks.append(
            _check(
                column,
                exercise_id,
                scheme.title(column, exercise_id, sub.language),
                status,
                message,
                "",
                points,
                hidden,
            )
        )

    notes = list(outcome.tampered) + outcome.cell_errors + outcome.notes
    if outcome.cell_timeouts:
        notes.insert(0, f"{', '.join(outcome.cell_timeouts)} ran past {limits.say('cell_timeout')}")

    if outcome.stopped:
        status, error = outcome.stop_status, outcome.stopped
    elif outcome.cell_timeouts:
        status, error = TIMEOUT, notes[0]
    elif outcome.tampered:
        status, error = TAMPERED, "; ".join(outcome.tampered)
    else:
        status, error = GRADED, outcome.cell_errors[0] if outcome.cell_errors else ""
    score = sum(c["points"] for c in checks)
    if status == TAMPERED and scheme.tampered_policy == ZERO:
        for c in checks:
            c["points"] = 0.0
        score = 0.0
        error += " (scored 0: course policy on altered cells)"
    return NotebookResult(
        sub.student,
        sub.lesson,
        sub.file,
        status,
        short(error),
        checks,
        notes,
        score,
        scheme.max_score(lesson),
        sub.sha256,
        round(outcome.seconds, 3),
        sub.language,
    )


def crashed_before(sub: Submission, lesson: Lesson | None, scheme: Scheme, why: str) -> NotebookResult:
    """A notebook not run again: it killed the grader (alone) twice before."""
    sub.status, sub.problem = CRASHED, why
    return unrun(sub, lesson, scheme)
