"""The child's cooperative time limit per cell: a SIGALRM that raises `CellTimeout` in the code
that runs when it rings. `CellTimeout` is a BaseException, so a student's `except Exception` lets it
through. A cell that catches it anyway, or turns the alarm off, runs on until the judge kills the
child (the judge's limit does not depend on anything in this process)."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator


class CellTimeout(BaseException):
    """The cell ran past its time limit."""


class CellTimer:
    """One cell's time, which can be paused (while the child waits for the judge) and resumed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.left = seconds
        self.armed = False
        self.since = 0.0
        signal.signal(signal.SIGALRM, self._ring)

    def _ring(self, signum, frame) -> None:
        if self.armed:
            self.armed = False
            self.left = 0.0
            raise CellTimeout

    def start(self) -> None:
        """A new cell: the whole limit again, running."""
        self.left = self.seconds
        self.resume()

    def resume(self) -> None:
        if self.left <= 0:
            raise CellTimeout
        signal.signal(signal.SIGALRM, self._ring)
        self.since = time.monotonic()
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.left)

    def pause(self) -> None:
        was, self.armed = self.armed, False  # first: a ring from here on changes nothing
        signal.setitimer(signal.ITIMER_REAL, 0)
        if was:
            self.left -= time.monotonic() - self.since

    stop = pause

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Not counting (the child waits for the judge); counting again afterwards if it was."""
        was = self.armed
        self.pause()
        try:
            yield
        finally:
            if was:
                self.resume()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Counting, for the code inside (a request of the judge runs the student's code)."""
        self.resume()
        try:
            yield
        finally:
            self.pause()
