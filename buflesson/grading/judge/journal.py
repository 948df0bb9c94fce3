"""The journal of runs: which notebooks were running when a grader died, so that a notebook that
kills its grader is blamed, and only that one.

`results/journal.log` holds one line per event: `run` when a grading run starts, `start KEY` and
`end KEY` around each notebook, `died KEY` when the grader's child process died while that notebook
ran alone. A run that ended without writing `end` for a notebook was killed while it ran. A notebook
that was running *alone* when a grader died has a death on its record; the others that were running
beside it are only suspects, and the next run runs each suspect alone. Two deaths alone and the
notebook is not run again (it is marked `crashed`).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

from buflesson.grading.gradebook import _named

DEATHS_TO_BLAME = 2


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()

    def _write(self, line: str) -> None:
        """Append one line in one write (lines of parallel workers never interleave); a line an
        earlier kill or a full disk cut short is ended first, so it spoils no later line."""
        data = (line + "\n").encode()
        with self.lock:
            handle = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                size = os.fstat(handle).st_size
                if size and os.pread(handle, 1, size - 1) != b"\n":
                    data = b"\n" + data
                os.write(handle, data)
            except OSError as error:
                raise _named(error, self.path) from None
            finally:
                os.close(handle)

    def begin_run(self) -> None:
        self._write("run")

    def start(self, key: str) -> None:
        self._write(f"start {key}")

    def end(self, key: str) -> None:
        self._write(f"end {key}")

    def died_alone(self, key: str) -> None:
        self._write(f"died {key}")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def history(self) -> tuple[Counter, set[str]]:
        """(deaths alone per key, suspects): what earlier runs' deaths say about each notebook."""
        deaths: Counter = Counter()
        suspects: set[str] = set()
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return deaths, suspects
        running: dict[str, int] = {}

        def close_segment() -> None:
            left = [key for key, count in running.items() if count > 0]
            if len(left) == 1:
                deaths[left[0]] += 1
            suspects.update(left)
            running.clear()

        for line in lines:
            event, _, key = line.partition(" ")
            if event not in ("run", "start", "end", "died") or (event != "run" and not key):
                continue  # a line cut short
            if event == "run":
                close_segment()
            elif event == "start":
                running[key] = running.get(key, 0) + 1
            elif event == "end":
                running[key] = running.get(key, 0) - 1
            elif event == "died":
                deaths[key] += 1
                suspects.add(key)
        close_segment()
        return deaths, suspects
