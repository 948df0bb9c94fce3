"""From what a run reported to a gradebook result: status, points per exercise, a short reason."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from buflesson.checks import exercises
from buflesson.grading.course import Lesson
from buflesson.grading.gradebook import (
    CRASHED,
    GRADED,
    TAMPERED,
    TIMEOUT,
    NotebookResult,
)
from buflesson.grading.hidden import HiddenCheck
from buflesson.grading.runner import Job, Limits, short
from buflesson.grading.submissions import Submission
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

    def title(self, column: str, exercise_id: str) -> str:
        """The title a check shows, for a check that did not report one (it never ran)."""
        for check in self.hidden.get(exercise_id, []):
            if check.id == column:
                return check.title
        known = exercises().get(exercise_id)
        return known.title if known is not None and column == exercise_id else ""

    def max_score(self, lesson: Lesson | None) -> float:
        return sum(c[2] for c in self.columns(lesson)) if lesson else 0.0


def unrun(sub: Submission, lesson: Lesson | None, scheme: Scheme) -> NotebookResult:
    """The result of a submission that was not run (invalid or an older duplicate)."""
    checks = [
        _check(
            column,
            exercise_id,
            scheme.title(column, exercise_id),
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
    )


def _check(column, exercise_id, title, status, message, hint, points, hidden) -> dict:
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
    }


def _death(job: Job) -> str:
    status = job.exit_status or 0
    if os_signal := (status & 0x7F):
        name = signal.Signals(os_signal).name if os_signal in signal.Signals._value2member_map_ else os_signal
        extra = {
            "SIGSEGV": " (segmentation fault)",
            "SIGKILL": " (out of memory?)",
            "SIGXCPU": " (CPU limit)",
        }
        return f"killed by {name}{extra.get(str(name), '')}"
    return f"exited with code {status >> 8} (os._exit or a crash in a C extension)"


def judge(job: Job, sub: Submission, lesson: Lesson, scheme: Scheme, limits: Limits) -> NotebookResult:
    """Turn a finished job into the notebook's gradebook result."""
    results: dict[str, dict] = {}
    cell_errors, cell_timeouts, check_errors = [], [], {}
    not_implemented = False
    not_attempted_at: dict[str, bool] = {}
    for message in job.messages:
        kind = message.get("t")
        if kind == "result" and message["trusted"]:
            results[str(message["result"].get("exercise"))] = message["result"]
        elif kind == "timeout":
            cell_timeouts.append(str(message.get("label")))
            for exercise_id in message.get("exercises", []):
                check_errors[exercise_id] = "the check ran past the time limit per cell"
        elif kind == "error":
            label, error = str(message.get("label")), short(message.get("error", ""), 200)
            not_implemented = not_implemented or bool(message.get("not_implemented"))
            if message.get("kind") == "check":
                for exercise_id in message.get("exercises", []):
                    check_errors[exercise_id] = error
                    not_attempted_at[exercise_id] = not_implemented
            elif message.get("kind") == "student" and not message.get("not_implemented"):
                cell_errors.append(f"{label}: {error}")  # given cells may fail on purpose

    stopped = ""
    if job.timed_out:
        stopped = f"ran past the {limits.timeout:g} s limit per notebook at {job.last_cell}"
    elif job.flooded:
        stopped = f"flooded the grader's result channel at {job.last_cell}"
    elif not job.done:
        stopped = f"the notebook's process died at {job.last_cell}: {_death(job)}"

    checks = []
    for column, exercise_id, points, hidden in scheme.columns(lesson):
        got = results.get(column)
        if got is not None:
            checks.append(_check(column, exercise_id, *(got[k] for k in TEXT_KEYS), points, hidden))
            continue
        if column in check_errors or exercise_id in check_errors:
            error = check_errors.get(column) or check_errors[exercise_id]
            status = NOT_ATTEMPTED if not_attempted_at.get(exercise_id) else FAILED
            message = f"The check could not run: {error}. Run your exercise cell without errors first."
        elif stopped:
            status, message = FAILED, f"Not graded: the notebook {stopped.split(':')[0]} before this check."
        else:
            status, message = FAILED, "Not graded: this check did not run."
        title = scheme.title(column, exercise_id)
        checks.append(_check(column, exercise_id, title, status, message, "", points, hidden))

    notes = list(job.plan.tampered) + cell_errors
    if cell_timeouts:
        notes.insert(0, f"{', '.join(cell_timeouts)} ran past the {limits.cell_timeout:g} s limit per cell")
    if job.forged:
        notes.append(f"{job.forged} unsigned or altered line(s) on the result channel were ignored")

    if stopped:
        status, error = (TIMEOUT if job.timed_out else CRASHED), stopped
    elif cell_timeouts:
        status, error = TIMEOUT, notes[0]
    elif job.plan.tampered:
        status, error = TAMPERED, "; ".join(job.plan.tampered)
    else:
        status, error = GRADED, cell_errors[0] if cell_errors else ""
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
        round(job.seconds, 3),
    )
