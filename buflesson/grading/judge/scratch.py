"""Scratch folders: one per run (locked while the run lives), one per notebook inside it.

    TMP/buflesson-grade-run-XXXX/       the run's folder; `lock` is held (flock) by its grader
        zygote.log                      what the zygote printed (its own errors, never a notebook's)
        job-0007/files/                 the notebook and a copy of its student's folder
        job-0007/home/, tmp/            (basic sandbox) the notebook's HOME and TMPDIR
        job-0007/root/                  (namespaces) where the child mounts its new root

A run that was killed leaves its folder behind; the next run removes every run folder whose lock is
free (its grader is gone). The copy of a student's folder skips notebooks, checkpoints and links
(it never follows one, not even one swapped in while it copies), and stops at the disk limit (each
file counting at least `BYTES_PER_FILE`, as the sandbox does). An error writing a copy is the
judge's own (its disk): it is raised, and stops the run, rather than leave a notebook without its
files.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
import time
from pathlib import Path

from buflesson.grading.jobs import Job
from buflesson.grading.limits import BYTES_PER_FILE

PREFIX = "buflesson-grade-run-"


class ScratchRoot:
    """The run's scratch folder, locked for as long as this object lives."""

    def __init__(self, parent: str | None = None) -> None:
        parent = parent or tempfile.gettempdir()
        self.removed = remove_abandoned(Path(parent))
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
        self.lock = os.open(self.path / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.count = 0

    def prepare(self, job: Job, disk_mb: int) -> Path:
        """A fresh folder for `job`: the submitted file as it was read, and the student's files."""
        self.count += 1
        folder = self.path / f"job-{self.count:04d}"
        for name in ("files", "home", "tmp", "root"):
            (folder / name).mkdir(parents=True)
        budget = [disk_mb * 2**20 - max(len(job.notebook), BYTES_PER_FILE) - 4 * BYTES_PER_FILE]
        if job.folder is not None:
            _copy_folder(Path(job.folder), folder / "files", budget)
        (folder / "files" / job.notebook_name).write_bytes(job.notebook)
        return folder

    def remove(self, folder: Path) -> None:
        remove_tree(folder)

    def close(self) -> None:
        remove_tree(self.path)
        os.close(self.lock)


MAX_DEPTH = 64  # folders below a student's folder: deeper ones are not copied (each level recurses)
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _copy_folder(source: Path, target: Path, budget: list[int]) -> None:
    try:
        handle = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        _copy_entries(handle, target, budget)
    finally:
        os.close(handle)


def _copy_entries(folder: int, target: Path, budget: list[int], depth: int = 0) -> None:
    """Copy what the open folder `folder` holds into `target`. Every entry is opened relative to
    its folder and without following a link, so a link swapped in since the listing is not read.
    What cannot be read is left out, and so are folders nested deeper than `MAX_DEPTH`; an error
    writing the copy (the judge's own disk) is raised."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        name = entry.name
        try:
            if name.startswith(".ipynb_checkpoints") or name.endswith(".ipynb") or entry.is_symlink():
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if not is_dir and not entry.is_file(follow_symlinks=False):
                continue  # a pipe, socket or device is not opened
            handle = os.open(name, _OPEN | (os.O_DIRECTORY if is_dir else 0), dir_fd=folder)
        except OSError:
            continue
        if is_dir:
            try:
                if budget[0] >= BYTES_PER_FILE and depth < MAX_DEPTH:
                    (target / name).mkdir()
                    budget[0] -= BYTES_PER_FILE
                    _copy_entries(handle, target / name, budget, depth + 1)
            finally:
                os.close(handle)
        else:
            _copy_file(handle, target / name, budget)


def _copy_file(handle: int, target: Path, budget: list[int]) -> None:
    """Copy the open file `handle` (closed here) if it is a regular file the budget has room for;
    what cannot be read is left out, an error writing the copy is raised."""
    with open(handle, "rb") as source:
        try:
            info = os.fstat(source.fileno())
        except OSError:
            return
        cost = max(info.st_size, BYTES_PER_FILE)
        if not stat.S_ISREG(info.st_mode) or cost > budget[0]:
            return
        with open(target, "xb") as out:
            left = info.st_size  # no more than was counted, if it grows meanwhile
            while left > 0:
                try:
                    chunk = source.read(min(left, 1 << 20))
                except OSError:
                    break
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
        budget[0] -= cost


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: Path) -> None:
    """Remove `path` and what it holds, following no link, however deep it goes: a notebook (at
    the basic level) writes in its folder, and 1500 nested folders made shutil.rmtree, which
    recurses, raise RecursionError (past ignore_errors) in the judge, at the end of every later run
    too. One open folder per level, on a list; what cannot be removed is left, and never revisited."""
    try:
        top = os.open(path, _DIR)
    except FileNotFoundError:
        return
    except OSError:
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    stack: list[tuple[int, str]] = [(top, "")]
    tried: set[tuple[int, int]] = set()
    while stack:
        handle = stack[-1][0]
        deeper = None
        try:
            entries = list(os.scandir(handle))
        except OSError:
            entries = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    if (info.st_dev, info.st_ino) in tried:
                        continue
                    tried.add((info.st_dev, info.st_ino))
                    deeper = (os.open(entry.name, _DIR, dir_fd=handle), entry.name)
                    break
                os.unlink(entry.name, dir_fd=handle)
            except OSError:
                continue
        if deeper is not None:
            stack.append(deeper)
            continue
        handle, name = stack.pop()
        os.close(handle)
        if stack:
            try:
                os.rmdir(name, dir_fd=stack[-1][0])
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def remove_abandoned(parent: Path) -> list[Path]:
    """Remove the run folders under `parent` whose grader is gone (their lock is free)."""
    removed = []
    try:
        candidates = [p for p in parent.glob(f"{PREFIX}*") if p.is_dir() and p.stat().st_uid == os.getuid()]
    except OSError:
        return removed
    for folder in candidates:
        try:
            handle = os.open(folder / "lock", os.O_RDWR)
        except FileNotFoundError:  # half removed, killed before it took its lock, or just starting
            handle = None
            if time.time() - folder.stat().st_mtime < 60:
                continue
        except OSError:
            continue
        try:
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        remove_tree(folder)
        if handle is not None:
            os.close(handle)
        removed.append(folder)
    return removed
