"""The output folder: one stored result per notebook at once, each student's feedback, and
gradebook.csv, a view of all results."""

from __future__ import annotations

import time
from pathlib import Path

from buflesson.grading.feedback import write_feedback
from buflesson.grading.gradebook import NotebookResult, ResultStore, write_gradebook

GRADEBOOK_EVERY = 1.0  # seconds: gradebook.csv is rewritten at most this often, and at the end


class Outputs:
    """The output folder: one stored result per notebook at once, each student's feedback, and
    gradebook.csv rewritten from all results at most every `GRADEBOOK_EVERY` seconds and at the end."""

    def __init__(self, out: Path, store: ResultStore, columns: list[str]) -> None:
        self.out, self.store, self.columns = out, store, columns
        self.results: dict[str, NotebookResult] = {}
        self.by_student: dict[str, dict[str, NotebookResult]] = {}
        self.written = 0.0

    def keep(self, result: NotebookResult) -> None:
        """A result that is known already (stored earlier, or not runnable)."""
        self.results[result.file] = result
        self.by_student.setdefault(result.student, {})[result.file] = result

    def add(self, result: NotebookResult) -> None:
        """A result graded now: stored, then its student's feedback, then (perhaps) the CSV."""
        self.store.put(result)
        self.keep(result)
        self.feedback(result.student)
        if time.monotonic() - self.written >= GRADEBOOK_EVERY:
            self.gradebook()

    def feedback(self, student: str) -> None:
        mine = list(self.by_student.get(student, {}).values())
        write_feedback(self.out / "feedback", student, mine)

    def gradebook(self) -> None:
        write_gradebook(self.out / "gradebook.csv", list(self.results.values()), self.columns)
        self.written = time.monotonic()

    def everything(self) -> None:
        self.gradebook()
        for student in sorted(self.by_student):
            self.feedback(student)
