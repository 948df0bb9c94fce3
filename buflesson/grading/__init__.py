"""`buflesson grade`: run every submitted notebook and write the gradebook and feedback.

    grade([Path("submissions")], Path("grades"), answers=Path("notebooks/answers"))

finds the submissions (`submissions`), builds the grader's copy of each lesson from the answer
notebooks (`course`), runs each notebook in its own forked process (`runner`), scores what it
reported (`scoring`), and stores each result as it comes (`gradebook`, `feedback`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buflesson.grading.course import Lesson, load_course, plan
from buflesson.grading.feedback import write_feedback
from buflesson.grading.gradebook import CRASHED, NotebookResult, ResultStore, merge, write_gradebook
from buflesson.grading.hidden import load_hidden
from buflesson.grading.progress import Progress
from buflesson.grading.runner import Job, Limits, Warm, run_jobs
from buflesson.grading.scoring import KEEP, Scheme, judge, unrun
from buflesson.grading.submissions import find, read_notebook, shard_of

__all__ = ["GradeError", "Limits", "Shard", "grade", "merge_parts", "summary"]


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


def _settings(answers: Path, hidden: Path | None, limits: Limits, scheme: Scheme) -> str:
    digest = hashlib.sha256()
    for path in sorted(answers.glob("*.ipynb")) + ([hidden] if hidden else []):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(repr((limits, sorted(scheme.points.items()), scheme.tampered_policy)).encode())
    return digest.hexdigest()


def _stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM (a scheduler preempting the job) stop the run cleanly: children killed, CSV
    written, stored results kept for the next run. Returns what puts the old handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise GradeError(f"cannot write to {out}: {error.strerror or error}") from None


def grade(
    paths: list[Path],
    out: Path,
    *,
    answers: Path,
    jobs: int | None = None,
    limits: Limits | None = None,
    hidden: Path | None = None,
    points: dict[str, float] | None = None,
    tampered_policy: str = KEEP,
    shard: Shard | None = None,
    force: bool = False,
    progress: bool | None = None,
    on_result: Callable[[NotebookResult], None] | None = None,
) -> list[NotebookResult]:
    """Grade every submission under `paths` into `out`; returns one result per submitted notebook."""
    out, answers, limits = Path(out), Path(answers), limits or Limits()
    try:
        course: dict[str, Lesson] = load_course(answers)
    except FileNotFoundError as error:
        raise GradeError(str(error)) from None
    try:
        hidden_checks = load_hidden(hidden) if hidden else []
    except Exception as error:
        raise GradeError(f"--hidden {hidden}: {type(error).__name__}: {error}") from None
    known = {e for lesson in course.values() for e in lesson.exercises}
    unknown = sorted({h.exercise for h in hidden_checks} - known)
    if unknown:
        raise GradeError(f"hidden checks name exercises no lesson checks: {', '.join(unknown)}")
    by_exercise: dict[str, list] = {}
    for item in hidden_checks:
        by_exercise.setdefault(item.exercise, []).append(item)
    scheme = Scheme(dict(points or {}), by_exercise, tampered_policy)

    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise GradeError(f"no such file or folder: {', '.join(missing)}")
    subs = find(list(paths), list(course))
    if not subs:
        raise GradeError(f"no submissions (*.ipynb) found in {', '.join(map(str, paths))}")
    if shard:
        subs = [s for s in subs if shard_of(s, shard.count) == shard.index]
    _writable(out)
    columns = [c[0] for lesson in course.values() for c in scheme.columns(lesson)]
    store = ResultStore(out / "results", _settings(answers, hidden, limits, scheme))
    if force:
        store.clear()

    results: dict[str, NotebookResult] = {}
    todo: list[tuple[Job, object]] = []
    for sub in subs:
        lesson = course.get(sub.lesson)
        if not sub.ok:
            results[sub.file] = unrun(sub, lesson, scheme)
            continue
        cached = store.get(sub.file, sub.sha256)
        if cached is not None:
            results[sub.file] = cached
            continue
        if store.deaths(sub.file, sub.sha256) >= 2:
            sub.status, sub.problem = CRASHED, "the grader itself was killed twice while running it"
            results[sub.file] = unrun(sub, lesson, scheme)
            continue
        nb = read_notebook(sub.path.read_bytes())
        job = Job(sub.file, plan(lesson, nb), sub.folder, sub.path)
        todo.append((job, sub))

    bar = Progress(len(todo), progress)
    last_write = [0.0]

    def save(final: bool = False) -> None:
        if final or time.monotonic() - last_write[0] > 1.0:
            write_gradebook(out / "gradebook.csv", list(results.values()), columns)
            last_write[0] = time.monotonic()

    def feedback(student: str) -> None:
        mine = [r for r in results.values() if r.student == student]
        write_feedback(out / "feedback", student, mine)

    save(final=True)
    for student in sorted({r.student for r in results.values()}):
        feedback(student)
    if todo:
        subs_by_job = {job.name: sub for job, sub in todo}
        imports = [name for job, sub in todo for name in course[sub.lesson].imports]
        lessons = {sub.lesson: course[sub.lesson] for _, sub in todo}
        warm_up = [source for lesson in lessons.values() for source in lesson.answer_code]
        warm = Warm(list(dict.fromkeys(imports)), hidden_checks, warm_up)
        worker_count = jobs or len(os.sched_getaffinity(0))

        def start(job: Job) -> None:
            store.note("start", job.name, subs_by_job[job.name].sha256)

        def done(job: Job) -> None:
            sub = subs_by_job[job.name]
            result = judge(job, sub, course[sub.lesson], scheme, limits)
            store.put(result)
            store.note("end", job.name, sub.sha256)
            results[sub.file] = result
            feedback(sub.student)
            save()
            bar.step(result)
            if on_result:
                on_result(result)

        stop = _stop_on_sigterm()
        try:
            run_jobs(warm, [job for job, _ in todo], limits, worker_count, done, start)
        except BaseException:  # stopped cleanly: what was running is not to blame
            for job, sub in todo:
                if job.pid and sub.file not in results:
                    store.note("end", job.name, sub.sha256)
            raise
        finally:
            stop()
            save(final=True)
    return sorted(results.values(), key=lambda r: r.sort_key)


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
    """Join shard outputs into `out`: one gradebook.csv, and every shard's feedback files."""
    _writable(out)
    try:
        rows = merge(parts, out / "gradebook.csv")
    except (OSError, ValueError) as error:
        raise GradeError(f"cannot merge: {error}") from None
    copied = 0
    for part in parts:
        feedback = Path(part) / "feedback"
        if Path(part).is_dir() and feedback.is_dir():
            (out / "feedback").mkdir(exist_ok=True)
            for path in feedback.iterdir():
                shutil.copyfile(path, out / "feedback" / path.name)
                copied += 1
    return (
        f"merged {rows} rows from {len(parts)} parts into {out / 'gradebook.csv'} ({copied} feedback files)"
    )
