"""`buflesson grade`, from the judge's side: what to grade, what is already graded, and where the
results go.

    grade([Path("submissions")], Path("grades"), answers=Path("notebooks/answers"))

loads the course (the reference of each lesson, from the answer notebooks) and the hidden checks,
finds the submissions, keeps what an earlier run already stored, starts the zygote (the child
side: `buflesson.grading.child`) when anything is left to run, runs the rest (`scheduler`,
`conversation`), and stores each result as it comes (`Outputs`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buflesson.checks import exercises
from buflesson.grading.course import Lesson, plan, translated_answers
from buflesson.grading.gradebook import INVALID, NotebookResult, ResultStore
from buflesson.grading.jobs import CRASHED, Job, Outcome
from buflesson.grading.judge.children import Grader, ZygoteError
from buflesson.grading.judge.conversation import grade_notebook
from buflesson.grading.judge.journal import DEATHS_TO_BLAME, Journal
from buflesson.grading.judge.outputs import GRADEBOOK_EVERY, Outputs
from buflesson.grading.judge.scheduler import Task, run_all
from buflesson.grading.judge.setup import Course, GradeError, Shard, load, settings_digest, writable
from buflesson.grading.judge.verdict import KEEP, crashed_before, unrun, verdict
from buflesson.grading.limits import Limits
from buflesson.grading.submissions import (
    InvalidNotebook,
    Submission,
    find,
    read_notebook,
    read_submitted,
    shard_of,
)
from buflesson.translation import notebook_language

__all__ = ["GRADEBOOK_EVERY", "GradeError", "Shard", "grade", "writable"]

KILLED_TWICE = "the grader itself was killed twice while this notebook ran alone"


def _stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM (a scheduler preempting the job) stop the run cleanly: children killed, CSV
    written, stored results kept for the next run. Returns what puts the old handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def read_job(sub: Submission, lesson: Lesson) -> Job:
    """The submission as it is now, read once; `InvalidNotebook` when it vanished or changed."""
    if not os.path.lexists(sub.path):
        raise InvalidNotebook("the file vanished during grading")
    data, _ = read_submitted(sub.path)  # a link swapped in since it was found is refused too
    if hashlib.sha256(data).hexdigest() != sub.sha256:
        raise InvalidNotebook("the file changed during grading; grade it again")
    notebook = read_notebook(data)
    return Job(
        sub.file, sub.sha256, sub.lesson, plan(lesson, notebook), sub.path.name, data, sub.folder,
        notebook_language(notebook),
    )  # fmt: skip


@dataclass(frozen=True)
class Request:
    """What `buflesson grade` was asked to do."""

    paths: list[Path]
    out: Path
    answers: Path
    jobs: int | None
    limits: Limits
    hidden: Path | None
    points: dict[str, float]
    tampered_policy: str
    shard: Shard | None
    force: bool
    progress: bool | None
    sandbox: str

    @property
    def secrets(self) -> list[Path]:
        """What a notebook must never see: the course (its translations too), the output, the
        submissions, hidden checks."""
        translated = list(translated_answers(self.answers).values())
        return [
            self.answers,
            *translated,
            self.out,
            *map(Path, self.paths),
            *([self.hidden] if self.hidden else []),
        ]


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
    sandbox: str = "auto",
    on_sandbox: Callable[[str], None] | None = None,
) -> list[NotebookResult]:
    """Grade every submission under `paths` into `out`; returns one result per submitted notebook.
    `on_result` is called with each result graded now, `on_sandbox` with the sandbox's description."""
    request = Request(
        list(paths), Path(out), Path(answers), jobs, limits or Limits(), Path(hidden) if hidden else None,
        dict(points or {}), tampered_policy, shard, force, progress, sandbox,
    )  # fmt: skip
    missing = [str(p) for p in request.paths if not Path(p).exists()]
    if missing:
        raise GradeError(f"no such file or folder: {', '.join(missing)}")
    if not any(request.answers.glob("*.ipynb")):
        raise GradeError(f"no answer notebooks (*.ipynb) in {request.answers}")
    grader = Grader()  # the zygote imports torch while the judge reads the course
    try:
        return GradingRun(request, grader, on_result, on_sandbox).run()
    except ZygoteError as error:
        raise GradeError(str(error)) from None
    finally:
        grader.close()


class GradingRun:
    """One `grade` call: the course, the output folder, the notebooks left to run."""

    def __init__(self, request: Request, grader: Grader, on_result, on_sandbox) -> None:
        self.request, self.grader = request, grader
        self.on_result = on_result or (lambda result: None)
        self.on_sandbox = on_sandbox or (lambda text: None)

    def run(self) -> list[NotebookResult]:
        request = self.request
        self.course = load(request.answers, request.hidden, request.points, request.tampered_policy)
        subs = self.submissions()
        writable(request.out)
        settings = settings_digest(request.answers, request.hidden, request.limits, self.course.scheme)
        store = ResultStore(request.out / "results", settings)
        self.journal = Journal(store.folder / "journal.log")
        if request.force:
            store.clear()
            self.journal.clear()
        self.journal.recover()  # what a run stopped by a disk error could not write
        self.outputs = Outputs(request.out, store, self.course.columns)
        tasks = _sort_out(subs, self.course, store, self.journal, self.outputs)
        self.outputs.everything()
        if tasks:
            self.run_tasks(tasks)
        return sorted(self.outputs.results.values(), key=lambda r: r.sort_key)

    def submissions(self) -> list[Submission]:
        paths = self.request.paths
        subs = find(list(paths), list(self.course.lessons))
        if not subs:
            raise GradeError(f"no submissions (*.ipynb) found in {', '.join(map(str, paths))}")
        shard = self.request.shard
        return [s for s in subs if shard_of(s, shard.count) == shard.index] if shard else subs

    def run_tasks(self, tasks: list[Task]) -> None:
        from buflesson.grading import Progress

        request = self.request
        self.bar = Progress(len(tasks), request.progress)
        lessons = sorted({task.sub.lesson for task in tasks})
        imports = [name for lesson in lessons for name in self.course.lessons[lesson].imports]
        self.journal.begin_run()
        self.grader.configure(list(dict.fromkeys(imports)), request.sandbox, request.limits, request.secrets)
        zygote = self.grader.zygote
        fell_back = zygote.level == "basic" and zygote.why != "asked for"
        self.on_sandbox(f"{zygote.describe}; {zygote.why}" if fell_back else zygote.describe)
        exercises()  # every lesson's checks registered before the workers' threads use them
        workers = request.jobs or len(os.sched_getaffinity(0))
        stop = _stop_on_sigterm()
        try:
            grader = self.grader
            run_all(
                tasks,
                workers,
                self.run_one,
                self.done,
                self.blamed,
                grader.restart,
                grader.abort,
                self.journal,
            )
        except BaseException:
            self.finish(stop)
            try:
                self.outputs.gradebook()  # every result stored so far, if the disk takes it
            except OSError:
                pass  # what stopped the run is what is reported; the last gradebook stays whole
            raise
        self.finish(stop)
        self.outputs.gradebook()

    def finish(self, restore_sigterm: Callable[[], None]) -> None:
        restore_sigterm()
        self.grader.zygote.close()

    def run_one(self, task: Task, slot: int) -> Outcome:
        """One notebook, in a worker thread. A bug of the judge's is the row's error; an OSError
        (the judge's own disk: its scratch folder full, say) is raised, and stops the run: it is
        never the notebook's fault."""
        try:
            job = read_job(task.sub, self.course.lessons[task.sub.lesson])
        except InvalidNotebook as error:
            return Outcome(unreadable=str(error))
        grader = self.grader
        try:
            return grade_notebook(
                job, grader.zygote, grader.scratch, slot, self.request.limits, self.course.hidden
            )
        except OSError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug here must not stop the other notebooks
            outcome = Outcome(tampered=list(job.plan.tampered))
            detail = traceback.format_exception_only(type(error), error)[-1].strip()
            outcome.stop(CRASHED, f"the grader failed on this notebook: {detail}")
            return outcome

    def done(self, task: Task, outcome: Outcome) -> None:
        lesson = self.course.lessons[task.sub.lesson]
        if outcome.unreadable:
            task.sub.status, task.sub.problem = INVALID, outcome.unreadable
            result = unrun(task.sub, lesson, self.course.scheme)
            self.outputs.keep(result)
            self.outputs.feedback(result.student)
        else:
            result = verdict(outcome, task.sub, lesson, self.course.scheme, self.request.limits)
            self.outputs.add(result)
        self.bar.step(result)
        self.on_result(result)

    def blamed(self, task: Task) -> None:
        result = crashed_before(
            task.sub, self.course.lessons[task.sub.lesson], self.course.scheme, KILLED_TWICE
        )
        self.outputs.keep(result)
        self.outputs.feedback(result.student)


def _sort_out(
    subs: list[Submission], course: Course, store: ResultStore, journal: Journal, outputs: Outputs
) -> list[Task]:
    """Results known without running (invalid, stored, blamed) go to `outputs`; the rest are tasks."""
    deaths, suspects = journal.history()
    tasks = []
    for sub in subs:
        lesson = course.lessons.get(sub.lesson)
        if not sub.ok:
            outputs.keep(unrun(sub, lesson, course.scheme))
            continue
        cached = store.get(sub.file, sub.sha256)
        if cached is not None:
            outputs.keep(cached)
            continue
        key = store.key(sub.file, sub.sha256)
        if deaths[key] >= DEATHS_TO_BLAME:
            outputs.keep(crashed_before(sub, lesson, course.scheme, KILLED_TWICE))
            continue
        tasks.append(Task(sub, key, alone=key in suspects, deaths=deaths[key]))
    return tasks
