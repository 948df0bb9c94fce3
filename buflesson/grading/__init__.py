"""`buflesson grade`: run every submitted notebook and write the gradebook and feedback.

    grade([Path("submissions")], Path("grades"), answers=Path("notebooks/answers"))

The grader has two sides, in separate processes. The judge (`buflesson.grading.judge`, this
process) holds the course, the hidden checks and the output folder, decides every verdict and never
runs a line a student wrote. The child side (`buflesson.grading.child`) runs each notebook in a
sandboxed process of its own, forked from a zygote that knows nothing of the course, and answers the
judge's checks with plain data. `course` builds the grader's copy of each lesson, `submissions`
finds what to grade, `limits` defines what a notebook may use, `gradebook` and `feedback` write the
results.
"""

from __future__ import annotations

from pathlib import Path

from buflesson.grading.feedback import parts_feedback
from buflesson.grading.gradebook import NotebookResult, merge, write_atomic
from buflesson.grading.limits import Limits
from buflesson.grading.progress import Progress

__all__ = ["GradeError", "Limits", "Progress", "Shard", "grade", "merge_parts", "summary"]
_JUDGE = ("GradeError", "Shard", "grade")


def __getattr__(name: str):
    # The judge's modules load on first use, so that the child side (which imports this package)
    # never loads them.
    if name in _JUDGE:
        from buflesson.grading.judge import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def summary(results: list[NotebookResult], out: Path, graded_now: int) -> str:
    """One line for the terminal: how many notebooks in each status, and where the gradebook is."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    students = len({r.student for r in results})
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    earlier = len(results) - graded_now
    reused = f" ({earlier} kept from an earlier run or not runnable)" if earlier else ""
    notebooks = f"{len(results)} notebook{'s' * (len(results) != 1)}"
    of = f"{students} student{'s' * (students != 1)}"
    return f"{notebooks} of {of}: {parts}{reused}; wrote {out / 'gradebook.csv'}"


def merge_parts(parts: list[Path], out: Path) -> str:
    """Join shard outputs into `out`: one gradebook.csv, and every shard's feedback files. Parts
    that grade one row differently, or hold one feedback file with different texts, are refused
    before anything is written."""
    from buflesson.grading.judge.run import GradeError, writable

    writable(out)
    try:
        feedback = parts_feedback(parts)
        rows = merge(parts, out / "gradebook.csv")
        if feedback:
            (out / "feedback").mkdir(exist_ok=True)
        for name, text in sorted(feedback.items()):
            write_atomic(out / "feedback" / name, text)
    except (OSError, ValueError) as error:
        raise GradeError(f"cannot merge: {error}") from None
    return (
        f"merged {rows} rows from {len(parts)} parts into {out / 'gradebook.csv'} "
        f"({len(feedback)} feedback files)"
    )
