"""A notebook to grade (`Job`: decided before it runs, never changed) and what happened while it
ran (`Outcome`: filled in by the judge as the conversation with the child goes on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buflesson.grading.course import Plan
from buflesson.grading.gradebook import CRASHED, TIMEOUT

__all__ = ["CRASHED", "TIMEOUT", "Job", "Outcome"]


@dataclass(frozen=True)
class Job:
    """One submitted notebook, read once, with the plan of cells to run for it."""

    file: str  # the path as the gradebook shows it
    sha256: str  # of `notebook`
    lesson: str
    plan: Plan
    notebook_name: str
    notebook: bytes  # the submitted file as it was read
    folder: Path | None  # the student's own folder (its other files are copied for the run)
    language: str = "en"  # the notebook's language: its checks answer in it


@dataclass
class Outcome:
    """What the judge saw while a job ran. Every entry was decided in the judge: nothing here is
    what a child claimed about a score."""

    tampered: list[str] = field(default_factory=list)  # protected cells changed (from the plan)
    checks: dict[str, dict] = field(default_factory=dict)  # column -> CheckResult.to_dict() + flags
    cell_errors: list[str] = field(default_factory=list)  # "cell 3: NameError: ..."
    cell_timeouts: list[str] = field(default_factory=list)  # labels of cells stopped by the alarm
    check_errors: dict[str, tuple[str, bool]] = field(default_factory=dict)  # exercise -> (error, NIE)
    notes: list[str] = field(default_factory=list)  # refused requests and other protocol notes
    stopped: str = ""  # why the notebook was stopped before its end (empty: it ran to the end)
    stop_status: str = ""  # TIMEOUT or CRASHED when stopped
    last_step: str = "the start"
    seconds: float = 0.0
    grader_died: bool = False  # the zygote died while this ran: no verdict on the notebook
    unreadable: str = ""  # the submitted file could not be read when its turn came (why)

    def stop(self, status: str, reason: str) -> None:
        """Record the first reason the notebook was stopped (later ones are consequences)."""
        if not self.stopped:
            self.stop_status, self.stopped = status, reason
