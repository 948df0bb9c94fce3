"""The journal of runs: which notebooks were running when a grader died, so that a notebook that
kills its grader is blamed, and only that one.

`results/journal.log` holds one line per event: `run` when a grading run starts, `start KEY` and
`end KEY` around each notebook, `died KEY` when the grader's child process died while that notebook
ran alone. A run that ended without writing `end` for a notebook was killed while it ran. A notebook
that was running *alone* when a grader died has a death on its record; the others that were running
beside it are only suspects, and the next run runs each suspect alone. Two deaths alone and the
notebook is not run again (it is marked `crashed`).

Every line ends with ` .` and is written whole, in one write. A line that a kill or a full disk cut
short lacks the ending and is ignored (it blames no one), and the next line starts on a line of its
own. When the journal cannot be written (a full disk, a quota, a folder turned read-only), the run
stops with that error, and the `end` lines it still owes, which say that the notebooks running then
are not to blame, are kept aside in the temporary folder (`aside`); the next run of the same output
folder appends them first. So a disk error of the grader's is never counted as a notebook's death.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import threading
from collections import Counter
from pathlib import Path

from buflesson.grading.gradebook import _named

DEATHS_TO_BLAME = 2
END = " ."  # how every whole line ends
EVENTS = ("run", "start", "end", "died")
ASIDE_PREFIX = "buflesson-journal-"


def _append(path: Path, data: bytes) -> None:
    """Append `data` to `path` in one write, first ending a line cut short; a write that the disk
    takes only in part is an OSError (ENOSPC), as a full disk is."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    handle = os.open(path, flags, 0o666)  # 0666 less the umask, as any file the user writes
    try:
        size = os.fstat(handle).st_size
        if size and os.pread(handle, 1, size - 1) != b"\n":
            data = b"\n" + data
        if os.write(handle, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # the disk took part of the line
    finally:
        os.close(handle)


def _whole(line: str) -> tuple[str, str] | None:
    """(event, key) of a whole line; None for a line cut short or one that is no event."""
    if not line.endswith(END):
        return None
    event, _, key = line[: -len(END)].partition(" ")
    if event not in EVENTS or (event == "run") != (key == "") or " " in key:
        return None
    return event, key


class Journal:
    def __init__(self, path: Path, aside: Path | None = None) -> None:
        """The journal at `path`; `aside`: the folder where `end` lines that could not be written
        wait for the next run (default: the temporary folder)."""
        self.path = Path(path)
        where = Path(aside) if aside is not None else Path(tempfile.gettempdir())
        real = os.path.realpath(self.path).encode("utf-8", "surrogateescape")
        self.aside = where / f"{ASIDE_PREFIX}{os.getuid()}-{hashlib.sha256(real).hexdigest()[:20]}.log"
        self.lock = threading.Lock()
        self.failed = False  # a write failed: this run is stopping; owed `end` lines go aside

    def _write(self, event: str, key: str = "") -> None:
        """Append one whole line. The first write that fails raises (the run stops); from then
        on nothing is written here, and `end` lines go aside."""
        data = (f"{event} {key}".strip() + END + "\n").encode("utf-8", "surrogateescape")
        with self.lock:
            if not self.failed:
                try:
                    _append(self.path, data)
                    return
                except OSError as error:
                    self.failed = True
                    if event == "end":
                        self._put_aside(data)
                    raise _named(error, self.path) from None
            if event == "end":
                self._put_aside(data)

    def _put_aside(self, data: bytes) -> None:
        try:
            _append(self.aside, data)
        except OSError:
            pass  # nowhere to keep it: the next run sees what it sees after a kill

    def begin_run(self) -> None:
        self._write("run")

    def start(self, key: str) -> None:
        self._write("start", key)

    def end(self, key: str) -> None:
        self._write("end", key)

    def died_alone(self, key: str) -> None:
        self._write("died", key)

    def recover(self) -> None:
        """Append the `end` lines an earlier run of this output folder had to keep aside (only
        those: a file in the temporary folder never blames anyone), then remove them."""
        try:
            handle = os.open(self.aside, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        with open(handle, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                return  # not one this user's grader wrote
            text = file.read(1 << 20).decode("utf-8", "replace")
        owed = [line for line in text.split("\n") if (_whole(line) or ("",))[0] == "end"]
        if owed:
            try:
                _append(self.path, "".join(line + "\n" for line in owed).encode())
            except OSError as error:
                raise _named(error, self.path) from None
        self.aside.unlink(missing_ok=True)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.aside.unlink(missing_ok=True)

    def history(self) -> tuple[Counter, set[str]]:
        """(deaths alone per key, suspects): what earlier runs' deaths say about each notebook."""
        deaths: Counter = Counter()
        suspects: set[str] = set()
        try:
            text = self.path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return deaths, suspects
        running: dict[str, int] = {}

        def close_segment() -> None:
            left = [key for key, count in running.items() if count > 0]
            if len(left) == 1:
                deaths[left[0]] += 1
            suspects.update(left)
            running.clear()

        for line in text.split("\n"):
            whole = _whole(line)
            if whole is None:
                continue  # a line cut short, or not an event
            event, key = whole
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
