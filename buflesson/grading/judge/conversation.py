"""One notebook, graded: the judge sends the plan's cells to the child one at a time and, when a
check cell asks for its check, runs that check (and the exercise's hidden checks) itself.

The judge accepts a check request only while a check cell naming that exercise runs, and only once
per exercise. A check talks to the answer through `Session(ChildLink)`: each request is one frame
to the child, each reply one frame back, read with a deadline and a size cap. The verdict is the
judge's own `run_check`: what the child replies is data it compares with what it computes. A child
that does not answer in time, dies, closes its channel or sends what the protocol does not allow is
stopped (`Stop`); what was decided before that keeps its points.
"""

from __future__ import annotations

import json
import os
import signal
import time

import torch

from buflesson.checks import exercises, run_check
from buflesson.grading import channel as frames
from buflesson.grading.course import CHECK, STUDENT, Step
from buflesson.grading.hidden import HiddenCheck, run_hidden
from buflesson.grading.jobs import CRASHED, TIMEOUT, Job, Outcome
from buflesson.grading.judge.children import Child, Zygote, ZygoteError
from buflesson.grading.judge.scratch import ScratchRoot
from buflesson.grading.limits import Limits
from buflesson.handles import Remote, Session
from buflesson.i18n import using
from buflesson.results import FAILED, CheckResult
from buflesson.standin import STANDIN
from buflesson.wire import Ref

ACCELERATORS = ("cuda", "mps", "xpu")  # devices a child may say it checks on, besides the stand-in
MAX_REFUSED = 20  # check requests a notebook may make that are refused before it is stopped
EXIT_WAIT = 5.0  # seconds a child has to end once its channel closed, before "it closed its channel"
MAX_TEXT = 300  # a reason in the gradebook
MAX_MESSAGE = 1000  # a check's message or hint


class Stop(BaseException):
    """The child has to be stopped. A BaseException, so that it passes through a check's handling
    of errors (a check never turns it into a verdict on the answer)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class GraderDied(BaseException):
    """The zygote died while this notebook ran: no verdict on the notebook."""


def short(text: object, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def death(status: int) -> str:
    """How a process ended, from its wait status, in words."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        extra = {
            "SIGSEGV": " (segmentation fault)",
            "SIGKILL": " (the system's out-of-memory killer, or a kill from its own code)",
            "SIGXCPU": " (CPU time limit)",
            "SIGABRT": " (aborted)",
        }
        return f"killed by {name}{extra.get(name, '')}"
    code = os.WEXITSTATUS(status)
    if code in frames.EXIT_WORDS:
        return f"{frames.EXIT_WORDS[code]} (exit code {code})"
    return f"exited with code {code} (os._exit, or a crash in a C extension)"


class ChildLink:
    """A check's link to the answer in the child: one request frame, one reply frame, within the
    check cell's time."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation

    def ask(self, request: bytes) -> bytes:
        self.conversation.send(frames.REQUEST, request)
        kind, payload = self.conversation.receive()
        if kind != frames.REPLY:
            raise self.conversation.broke(f"a {_name(kind)} message while a check waited for a reply")
        return payload


class Conversation:
    """The judge's side of one notebook's run."""

    def __init__(
        self,
        job: Job,
        child: Child,
        limits: Limits,
        hidden: dict[str, list[HiddenCheck]],
        outcome: Outcome,
        started: float,
        watch_disk: list[str] = (),
    ) -> None:
        self.job, self.child, self.limits, self.hidden, self.outcome = job, child, limits, hidden, outcome
        self.notebook_deadline = started + limits.timeout
        self.watch_disk = list(watch_disk)  # folders the judge measures (basic sandbox)
        self.checked: set[str] = set()
        self.refused = 0
        self.deadline = started + max(30.0, limits.hard_cell_timeout)  # of the current step
        self.next_disk_check = 0.0
        self.device = STANDIN  # the child's checking device, from its hello (before any student code)

    def until(self) -> float:
        return min(self.deadline, self.notebook_deadline)

    # --- frames --------------------------------------------------------------------------------

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        try:
            self.child.channel.send(kind, payload, self.until())
        except frames.TimedOut:
            raise self.out_of_time() from None
        except frames.Closed:
            raise self.closed() from None

    def send_json(self, kind: bytes, message: dict) -> None:
        self.send(kind, json.dumps(message, ensure_ascii=True).encode())

    def receive(self) -> tuple[bytes, bytes]:
        """The child's next frame, before the step's deadline (and the notebook's), or `Stop`."""
        deadline = self.until()
        while True:
            if self.watch_disk and time.monotonic() >= self.next_disk_check:
                self.check_disk()
            wait_until = min(deadline, self.next_disk_check) if self.watch_disk else deadline
            try:
                return self.child.channel.receive(wait_until)
            except frames.TimedOut:
                if time.monotonic() < deadline:
                    continue
                raise self.out_of_time() from None
            except frames.Closed:
                raise self.closed() from None
            except frames.Broken as error:
                raise self.broke(str(error)) from None

    def json(self, payload: bytes) -> dict:
        try:
            return frames.parse_json(payload)
        except frames.Broken as error:
            raise self.broke(str(error)) from None

    # --- how a notebook is stopped ---------------------------------------------------------------

    def where(self) -> str:
        return self.outcome.last_step

    def out_of_time(self) -> Stop:
        if self.outcome.last_step == Outcome.last_step:  # still waiting for its hello
            return Stop(TIMEOUT, "the notebook's process did not start in time")
        if self.deadline >= self.notebook_deadline:
            return Stop(TIMEOUT, f"ran past {self.limits.say('timeout')} at {self.where()}")
        return Stop(
            TIMEOUT,
            f"{self.where()} ran past {self.limits.say('cell_timeout')} and did not stop, so the notebook "
            "was stopped",
        )

    def closed(self) -> BaseException:
        """Why the channel closed: the child died (how), or it closed the channel itself."""
        if self.child.wait(EXIT_WAIT):
            if self.child.lost:
                return GraderDied()
            status = self.child.status
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == frames.EXIT_CHANNEL:
                return Stop(CRASHED, f"{frames.EXIT_WORDS[frames.EXIT_CHANNEL]} at {self.where()}")
            return Stop(CRASHED, f"the notebook's process died at {self.where()}: {death(status)}")
        return Stop(CRASHED, f"{frames.EXIT_WORDS[frames.EXIT_CHANNEL]} at {self.where()}")

    def broke(self, what: str) -> Stop:
        return Stop(CRASHED, f"the notebook broke the grading protocol at {self.where()}: {short(what, 120)}")

    def check_disk(self) -> None:
        """Stop a notebook whose folders hold more than the disk limit (basic sandbox; looked at
        once a second)."""
        self.next_disk_check = time.monotonic() + 1.0
        used = sum(_size(folder) for folder in self.watch_disk)
        if used > self.limits.disk * 2**20:
            raise Stop(CRASHED, f"the notebook wrote more than {self.limits.say('disk')} by {self.where()}")

    # --- the notebook ----------------------------------------------------------------------------

    def run(self) -> None:
        """Every cell of the plan, in order; `Stop` or `GraderDied` when it cannot go on."""
        kind, payload = self.receive()
        hello = self.json(payload) if kind == frames.HELLO else None
        if hello is None:
            raise self.broke(f"a {_name(kind)} message before the first cell")
        if hello.get("error"):
            raise Stop(CRASHED, f"the sandbox could not be set up: {short(hello['error'], 200)}")
        self.device = checking_device(hello.get("device"))
        for number, step in enumerate(self.job.plan.steps):
            self.outcome.last_step = step.label
            self.run_step(number, step)

    def run_step(self, number: int, step: Step) -> None:
        message = {"n": number, "kind": step.kind, "label": step.label, "source": step.source}
        self.deadline = time.monotonic() + self.limits.hard_cell_timeout
        self.send_json(frames.STEP, message)
        while True:
            kind, payload = self.receive()
            if kind == frames.DONE:
                self.record(number, step, self.json(payload))
                return
            if kind == frames.CHECK:
                self.on_check_request(step, self.json(payload))
                continue
            raise self.broke(f"a {_name(kind)} message while a cell ran")

    def record(self, number: int, step: Step, report: dict) -> None:
        """How a cell ended, as the child says: it explains the row, it never scores it."""
        if report.get("n") != number:
            raise self.broke("a report for another cell")
        if report.get("timeout"):
            self.outcome.cell_timeouts.append(step.label)
            for exercise_id in step.exercises:
                if exercise_id not in self.checked:
                    self.outcome.check_errors[exercise_id] = (
                        f"the check cell ran past {self.limits.say('cell_timeout')}",
                        False,
                    )
        elif report.get("error"):
            error = short(report["error"], 200)
            not_implemented = bool(report.get("not_implemented"))
            if step.kind == CHECK:
                for exercise_id in step.exercises:
                    if exercise_id not in self.checked:
                        self.outcome.check_errors[exercise_id] = (error, not_implemented)
            elif step.kind == STUDENT and not not_implemented:  # given cells may fail on purpose
                self.outcome.cell_errors.append(f"{step.label}: {error}")

    # --- checks ------------------------------------------------------------------------------------

    def on_check_request(self, step: Step, message: dict) -> None:
        exercise_id = message.get("exercise")
        if step.kind != CHECK or not isinstance(exercise_id, str) or exercise_id not in step.exercises:
            return self.refuse(f"a check of {short(repr(exercise_id), 40)} was asked for at {step.label}")
        if exercise_id in self.checked:
            return self.refuse(f"the check of {exercise_id} was asked for twice")
        self.checked.add(exercise_id)
        visible = self.visible_check(exercise_id)
        for item in self.hidden.get(exercise_id, []):
            self.hidden_check(item, visible)
        self.send_json(frames.RESULT, visible.to_dict())
        return None

    def refuse(self, reason: str) -> None:
        self.refused += 1
        if self.refused > MAX_REFUSED:
            raise Stop(CRASHED, f"the notebook kept asking for checks it may not ask for ({reason})")
        self.outcome.notes.append(f"Ignored: {reason}.")
        self.send_json(frames.REFUSED, {"reason": reason})

    def visible_check(self, exercise_id: str) -> CheckResult:
        known = exercises().get(exercise_id)
        if known is None:
            result = CheckResult(exercise_id, "", FAILED, "This course has no check for this exercise.")
        else:
            try:
                result = run_check(exercise_id, Session(ChildLink(self), self.device))
            except Stop as stop:
                self.unfinished(exercise_id, known.title, stop)
                raise
        self.outcome.checks[exercise_id] = _bounded(result)
        return result

    def hidden_check(self, item: HiddenCheck, visible: CheckResult) -> None:
        try:
            result = run_hidden(item, Remote(Session(ChildLink(self), self.device), Ref(1)), visible)
        except Stop as stop:
            self.unfinished(item.id, item.title, stop)
            raise
        self.outcome.checks[item.id] = _bounded(result)

    def unfinished(self, column: str, title: str, stop: Stop) -> None:
        why = "ran out of time" if stop.status == TIMEOUT else "was stopped"
        message = f"The check could not finish: the notebook {why} during it."
        self.outcome.checks[column] = CheckResult(column, title, FAILED, message).to_dict()


def checking_device(said: object) -> torch.device:
    """The device a child said in its hello, where it is one a check may move models to (an
    accelerator, or the stand-in); else the stand-in."""
    if isinstance(said, str) and said.split(":")[0] in ACCELERATORS:
        try:
            return torch.device(said)
        except (RuntimeError, ValueError):
            pass
    return STANDIN


def _bounded(result: CheckResult) -> dict:
    """A result as stored: its texts bounded (a message can quote what the notebook sent)."""
    shown = result.to_dict()
    for key in ("message", "hint"):
        shown[key] = short(shown[key], MAX_MESSAGE)
    return shown


def _name(kind: bytes) -> str:
    names = {
        frames.HELLO: "hello",
        frames.DONE: "cell-done",
        frames.CHECK: "check-request",
        frames.REPLY: "reply",
    }
    return names.get(kind, f"{kind!r}")


def _size(folder: str) -> int:
    total, stack = 0, [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


def grade_notebook(
    job: Job,
    zygote: Zygote,
    scratch: ScratchRoot,
    slot: int,
    limits: Limits,
    hidden: dict[str, list[HiddenCheck]],
) -> Outcome:
    """Run `job` in a fresh child and return what the judge saw."""
    outcome = Outcome(tampered=list(job.plan.tampered))
    started = time.monotonic()
    folder = scratch.prepare(job, limits.disk)
    try:
        try:
            child = zygote.fork(folder, slot)
        except ZygoteError:
            outcome.grader_died = True
            return outcome
        watch = [str(folder / name) for name in ("files", "home", "tmp")] if zygote.level == "basic" else []
        conversation = Conversation(job, child, limits, hidden, outcome, started, watch)
        try:
            with using(job.language):  # the checks' messages in the student's language
                conversation.run()
        except Stop as stop:
            outcome.stop(stop.status, stop.reason)
        except GraderDied:
            outcome.grader_died = True
        finally:
            child.kill()
            if not child.wait(10.0):
                outcome.grader_died = outcome.grader_died or not zygote.alive
            child.close()
    finally:
        scratch.remove(folder)
        outcome.seconds = time.monotonic() - started
    return outcome
