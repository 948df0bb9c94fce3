"""The progress bar of `buflesson grade`: one line on a terminal, nothing elsewhere.

It names the student of each notebook as it finishes. Ids come from folder names, file names and
metadata, so they are shown through `text.printable`: an escape sequence in an id cannot set the
terminal's title, clear the screen or change its colours.
"""

from __future__ import annotations

import sys
import time

from buflesson.grading.gradebook import NotebookResult
from buflesson.grading.text import printable

WIDTH, NAME = 30, 20  # characters of the bar and of the student's id


class Progress:
    """A one-line bar on a terminal; nothing at all when stderr is not one."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def step(self, result: NotebookResult) -> None:
        """Count one finished notebook and redraw the bar."""
        self.done += 1
        if not self.enabled:
            return
        filled = WIDTH * self.done // max(1, self.total)
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        name = printable(result.student, NAME)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total} "
            f"{elapsed:4.0f}s, ~{eta:.0f}s left  {name:{NAME}}"
        )
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
