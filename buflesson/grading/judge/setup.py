"""What a grading run grades against, and misuse: the course (the reference of each lesson), the
hidden checks and the points, checked before anything runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from buflesson.grading.course import Lesson, load_course, translated_answers
from buflesson.grading.hidden import HiddenCheck, load_hidden
from buflesson.grading.judge.verdict import Scheme
from buflesson.grading.limits import Limits


class GradeError(Exception):
    """Misuse: nothing to grade, an unwritable output folder, a bad hidden-checks file."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise GradeError(f"--shard takes I/N (0 <= I < N), got {text!r}") from None
        if not 0 <= index < count:
            raise GradeError(f"--shard {text}: I must be 0..{count - 1}")
        return cls(index, count)


@dataclass(frozen=True)
class Course:
    """What the judge grades against: the lessons' references, the hidden checks, the points."""

    lessons: dict[str, Lesson]
    hidden: dict[str, list[HiddenCheck]]
    scheme: Scheme

    @property
    def columns(self) -> list[str]:
        return [c[0] for lesson in self.lessons.values() for c in self.scheme.columns(lesson)]


def load(answers: Path, hidden: Path | None, points: dict[str, float], tampered_policy: str) -> Course:
    """The course, or `GradeError` saying what is wrong with it."""
    try:
        lessons = load_course(answers)
    except FileNotFoundError as error:
        raise GradeError(str(error)) from None
    try:
        hidden_checks = load_hidden(hidden) if hidden else []
    except Exception as error:
        raise GradeError(f"--hidden {hidden}: {type(error).__name__}: {error}") from None
    known = {e for lesson in lessons.values() for e in lesson.exercises}
    unknown = sorted({h.exercise for h in hidden_checks} - known)
    if unknown:
        raise GradeError(f"hidden checks name exercises no lesson checks: {', '.join(unknown)}")
    by_exercise: dict[str, list[HiddenCheck]] = {}
    for item in hidden_checks:
        by_exercise.setdefault(item.exercise, []).append(item)
    return Course(lessons, by_exercise, Scheme(dict(points), by_exercise, tampered_policy))


def settings_digest(answers: Path, hidden: Path | None, limits: Limits, scheme: Scheme) -> str:
    """What a stored result depends on besides the submission: the course, limits and points."""
    digest = hashlib.sha256()
    for path in sorted(answers.glob("*.ipynb")) + ([hidden] if hidden else []):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for code, folder in translated_answers(answers).items():  # a translated lesson is a reference too
        for path in sorted(folder.glob("*.ipynb")):
            digest.update(f"{code}/{path.name}".encode() + b"\0" + path.read_bytes())
    digest.update(repr((limits, sorted(scheme.points.items()), scheme.tampered_policy)).encode())
    return digest.hexdigest()


def writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise GradeError(f"cannot write to {out}: {error.strerror or error}") from None
