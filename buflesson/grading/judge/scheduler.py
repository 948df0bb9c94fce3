"""Running many notebooks at once: worker threads in the judge, one child process per notebook.

Each worker thread holds one notebook's conversation (`conversation.grade_notebook`); the main
thread starts them, at most `workers` at a time, each in a worker slot of its own (a slot is also
the uid its child runs as). A suspect (a notebook that was running when a grader died) runs alone.
When the grader's child process (the zygote) dies, every notebook that was running is re-run alone
after a fresh zygote is started; one that was alone when it died twice is marked crashed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from buflesson.grading.jobs import Outcome
from buflesson.grading.judge.journal import DEATHS_TO_BLAME, Journal
from buflesson.grading.submissions import Submission


@dataclass(frozen=True)
class Task:
    """One notebook to run: its submission, its key in the journal, whether it must run alone."""

    sub: Submission
    key: str
    alone: bool = False
    deaths: int = 0  # deaths alone on its record


def run_all(
    tasks: list[Task],
    workers: int,
    run_one: Callable[[Task, int], Outcome],
    on_done: Callable[[Task, Outcome], None],
    on_blamed: Callable[[Task], None],
    restart: Callable[[], None],
    abort: Callable[[], None],
    journal: Journal,
) -> None:
    """Run every task; `on_done` as each ends, `on_blamed` for one that killed the grader twice.
    On any exception (SIGTERM made SystemExit, Ctrl-C, a disk error of the judge's own, from
    `run_one`, `on_done` or the journal) `abort` ends every child at once and the exception goes
    on; no notebook that was running is blamed (each gets its `end` line, kept aside by the
    journal if it cannot be written)."""
    queue = deque(sorted(tasks, key=lambda t: not t.alone))  # suspects first, one at a time
    slots = list(range(max(1, workers)))
    running: dict[Future, tuple[Task, int]] = {}
    owed: list[str] = []  # keys started in the journal and not ended yet

    def end(key: str) -> None:
        try:
            journal.end(key)
        except OSError:
            owed.remove(key)  # the journal kept its line aside
            raise
        owed.remove(key)

    with ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="notebook") as pool:
        try:
            while queue or running:
                while queue and slots and _may_start(queue[0], running):
                    task = queue.popleft()
                    owed.append(task.key)  # before the line: a stop in between ends it anyway
                    journal.start(task.key)
                    slot = slots.pop(0)
                    running[pool.submit(run_one, task, slot)] = (task, slot)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                died = []
                for future in finished:
                    task, slot = running.pop(future)
                    slots.append(slot)
                    outcome = future.result()  # an error of the judge's own stops the run here
                    if outcome.grader_died:
                        died.append(task)
                    else:
                        end(task.key)  # first: whatever happens next, it is not to blame
                        on_done(task, outcome)
                if died:
                    died += _drain(running, slots, on_done, end)
                    restart()
                    queue.extendleft(reversed(_after_death(died, on_blamed, end, journal)))
        except BaseException:
            abort()  # the workers' children die, so the pool's threads end quickly
            for key in list(owed):  # stopped from outside the notebooks: not their doing
                try:
                    end(key)
                except OSError:
                    pass  # kept aside; the error that stopped the run is the one reported
            raise


def _may_start(task: Task, running: dict) -> bool:
    if any(other.alone for other, _ in running.values()):
        return False
    return not task.alone or not running


def _drain(running: dict, slots: list[int], on_done, end: Callable[[str], None]) -> list[Task]:
    """Wait for every running notebook (the zygote's death ends them all); those it ended."""
    died = []
    for future in list(running):
        task, slot = running.pop(future)
        slots.append(slot)
        outcome = future.result()
        if outcome.grader_died:
            died.append(task)
        else:
            end(task.key)
            on_done(task, outcome)
    return died


def _after_death(died: list[Task], on_blamed, end: Callable[[str], None], journal: Journal) -> list[Task]:
    """Re-run each of them alone; blame one that was alone (twice)."""
    again = []
    for task in died:
        end(task.key)
        if len(died) == 1:
            journal.died_alone(task.key)
            task = replace(task, deaths=task.deaths + 1)
            if task.deaths >= DEATHS_TO_BLAME:
                on_blamed(task)
                continue
        again.append(replace(task, alone=True))
    return again
