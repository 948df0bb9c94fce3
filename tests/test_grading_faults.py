"""Faults around the grader's own files: a full disk, a quota or a read-only folder at any write,
Ctrl-C at any point, and the mode of what it writes (the user's umask). In process first (the
write functions made to fail), then the whole command: on a tiny tmpfs that fills up mid-run (when
this machine may mount one), and stopped by SIGINT mid-run, as a terminal's Ctrl-C does."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest

import buflesson.grading
from buflesson.cli import main
from buflesson.grading import gradebook
from buflesson.grading.child.sandbox import children_of
from buflesson.grading.feedback import write_feedback
from buflesson.grading.gradebook import NotebookResult, ResultStore, write_atomic, write_gradebook
from buflesson.grading.judge import outputs, run
from buflesson.grading.judge.journal import Journal
from buflesson.grading.judge.scratch import ScratchRoot

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
ANSWERS = FIXTURES / "answers"
LESSON = "90-fixture"
LIMITS = ["--cell-timeout", "20", "--timeout", "60", "--memory", "1024"]
FULL = [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO]


def result(student="ann"):
    return NotebookResult(
        student, LESSON, f"c/{student}/{LESSON}.ipynb", "graded", "", [], [], 1.0, 1.0, "ab"
    )


@pytest.fixture(autouse=True)
def _sigint_put_back():
    """`main` leaves SIGINT ignored once a command stopped (the process is about to exit)."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the mode of what the grader writes ---------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
def test_every_file_the_grader_writes_takes_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "new.txt", "x")
        (tmp_path / "old.txt").write_text("x")
        os.chmod(tmp_path / "old.txt", 0o600)
        write_atomic(tmp_path / "old.txt", "y")  # replaced: a new file, with the umask's mode
        write_gradebook(tmp_path / "gradebook.csv", [result()], [])
        store = ResultStore(tmp_path / "results", "s")
        store.put(result())
        Journal(store.folder / "journal.log").start(store.key("f", "ab"))
        write_feedback(tmp_path / "feedback", "ann", [result()])
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 7
    assert {p.name: mode(p) for p in files} == {p.name: 0o666 & ~umask for p in files}
    assert {mode(p) for p in tmp_path.rglob("*") if p.is_dir()} == {0o777 & ~umask}


# --- a write that fails -------------------------------------------------------------------------------


class FailingFile:
    def __init__(self, code: int) -> None:
        self.code = code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data):
        raise OSError(self.code, os.strerror(self.code))


@pytest.mark.parametrize("code", FULL)
@pytest.mark.parametrize("step", ["create", "write", "replace"])
def test_a_failed_write_keeps_the_old_file_leaves_nothing_and_names_it(tmp_path, monkeypatch, code, step):
    target = tmp_path / "gradebook.csv"
    write_atomic(target, "old\n")
    real_open = os.open
    if step == "create":
        monkeypatch.setattr(os, "open", lambda path, *a, **k: (_ for _ in ()).throw(OSError(code, "x", path)))
    elif step == "write":
        monkeypatch.setattr(
            gradebook, "open", lambda handle, *a: (os.close(handle), FailingFile(code))[1], raising=False
        )
    else:
        monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(code, "x", a, None, b)))
    with pytest.raises(OSError) as caught:
        write_atomic(target, "new\n")
    monkeypatch.setattr(os, "open", real_open)
    assert (caught.value.errno, caught.value.filename) == (code, str(target))
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["gradebook.csv"]


def test_a_full_disk_while_storing_a_result_or_feedback_is_the_same_clean_error(tmp_path, monkeypatch):
    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(gradebook, "write_atomic", full)
    monkeypatch.setattr(buflesson.grading.feedback, "write_atomic", full)
    with pytest.raises(OSError, match="No space left"):
        ResultStore(tmp_path / "r", "s").put(result())
    with pytest.raises(OSError, match="No space left"):
        write_feedback(tmp_path / "f", "ann", [result()])
    assert not list((tmp_path / "r").iterdir()) and not list((tmp_path / "f").iterdir())


def test_a_journal_line_cut_short_blames_no_one(tmp_path):
    journal = Journal(tmp_path / "journal.log", aside=tmp_path)
    k1, k2 = (hashlib.sha256(name).hexdigest()[:32] for name in (b"one", b"two"))
    # one was running alone when the grader died; then the disk filled up in the middle of a line
    journal.path.write_text(f"run .\nstart {k1} .\nstart {k2} .\nend {k2} .\nrun .\nstart {k1[:7]}")
    journal.begin_run()
    journal.start(k2)  # the grader is killed while two runs alone
    assert journal.path.read_text().splitlines()[-3:] == [f"start {k1[:7]}", "run .", f"start {k2} ."]
    deaths, suspects = journal.history()
    assert (deaths[k1], deaths[k2], suspects) == (1, 1, {k1, k2})  # nothing of the cut line counts
    journal.path.write_text(f"sta\nrun .\nstart {k1} .\nend {k1} .\nrun .\nstart {k2} .\nend {k2}")
    deaths, suspects = journal.history()
    assert (deaths[k1], deaths[k2], suspects) == (0, 1, {k2})  # an `end` cut short ends nothing


@pytest.mark.parametrize("code", FULL)
def test_end_lines_the_journal_cannot_write_are_kept_aside_for_the_next_run(tmp_path, monkeypatch, code):
    """A run stopped by the disk blames no notebook: the `end` lines it owes wait in the temporary
    folder, and the next run of the same output folder writes them first."""
    results, aside = tmp_path / "results", tmp_path / "tmp"
    results.mkdir()
    aside.mkdir()
    journal = Journal(results / "journal.log", aside=aside)
    journal.begin_run()
    journal.start("a")
    journal.start("b")
    real_write = os.write

    def full(handle, data):
        if os.fstat(handle).st_ino == (results / "journal.log").stat().st_ino:
            raise OSError(code, os.strerror(code))
        return real_write(handle, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as caught:
        journal.end("a")
    assert (caught.value.errno, caught.value.filename) == (code, str(results / "journal.log"))
    journal.end("b")  # the run's clean-up: no second error, and b's line is kept too
    journal.died_alone("b")  # only `end` lines are kept aside: an aside file never blames
    monkeypatch.setattr(os, "write", real_write)
    assert journal.history() == (Counter(), {"a", "b"})  # as after a kill, until the next run
    (kept,) = aside.iterdir()
    assert kept.read_text() == "end a .\nend b .\n"
    again = Journal(results / "journal.log", aside=aside)
    again.recover()
    again.begin_run()
    assert again.history() == (Counter(), set()) and list(aside.iterdir()) == []
    assert Journal(tmp_path / "other" / "journal.log", aside=aside).aside != again.aside


def test_an_aside_file_of_someone_else_or_a_link_is_not_taken(tmp_path):
    journal = Journal(tmp_path / "journal.log", aside=tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "lines").write_text("end a .\n")
    journal.aside.symlink_to(tmp_path / "lines")
    journal.recover()
    journal.end("b")  # the link is not written through either
    assert (tmp_path / "lines").read_text() == "end a .\n"
    assert journal.path.read_text() == "end b .\n"


# --- the command: one line, an exit status, what is kept, how to go on ---------------------------------


def stored(out: Path, count: int) -> None:
    (out / "results").mkdir(parents=True)
    for index in range(count):
        (out / "results" / f"{index}.json").write_text("{}")


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "o/gradebook.csv"), 2, "No space left on device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded", "o/results/x.json"), 2, "free some space, then run"),
        (OSError(errno.EROFS, "Read-only file system", "o/feedback/a.md"), 2, "make it writable, then run"),
        (KeyboardInterrupt(), 130, "interrupted. 3 graded notebooks kept in"),
    ],
)
def test_grade_stopped_by_the_disk_or_ctrl_c_says_so_in_one_line(
    tmp_path, monkeypatch, capsys, error, status, words
):
    out = tmp_path / "o"

    def stopped(*args, **kwargs):
        stored(out, 3)
        raise error

    monkeypatch.setattr(buflesson.grading, "grade", stopped)
    assert main(["grade", str(tmp_path), "--out", str(out)]) == status
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a second Ctrl-C prints nothing more
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err and captured.out == ""
    assert lines[0].startswith("buflesson grade: ") and words in lines[0]
    assert f"kept in {out / 'results'}" in lines[0] and "run the same command again" in lines[0]
    if isinstance(error, OSError):
        assert f"({error.filename})" in lines[0]


@pytest.mark.parametrize("where", [(run, "find"), (outputs, "write_gradebook")], ids=["find", "gradebook"])
def test_ctrl_c_before_any_notebook_ran(tmp_path, monkeypatch, capsys, where):
    """Ctrl-C reaches the real grade() while it finds submissions or writes the first gradebook
    (the zygote is starting meanwhile): it ends, and so does the run's scratch folder."""
    course = tmp_path / "c" / "ann"
    course.mkdir(parents=True)
    nbformat.write(nbformat.read(ANSWERS / f"{LESSON}.ipynb", as_version=4), course / f"{LESSON}.ipynb")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(*where, interrupt)
    argv = ["grade", str(tmp_path / "c"), "--out", str(tmp_path / "o"), "--answers", str(ANSWERS)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted. 0 graded notebooks kept" in err
    assert list((tmp_path / "tmp").iterdir()) == [] and children_of(os.getpid()) == []


@pytest.mark.slow
def test_a_disk_error_of_the_judges_own_stops_the_run_and_blames_no_notebook(tmp_path, monkeypatch, capsys):
    """The judge's scratch folder is full when a notebook's turn comes: the run stops in one line
    (exit 2), nothing is stored for that notebook (no `crashed` row), the journal blames no one, and
    the same command completes once there is room."""
    course = tmp_path / "c"
    for student in ("ann", "bob"):
        put(course / student / f"{LESSON}.ipynb", answer_nb())
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    def full(self, job, disk_mb):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / "job-0001"))

    with monkeypatch.context() as patch:
        patch.setattr(ScratchRoot, "prepare", full)
        argv = ["grade", str(course), "--out", str(tmp_path / "o"), "--answers", str(ANSWERS), "--jobs", "2"]
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device (" in err and "/job-0001)" in err
    assert "0 graded notebooks kept in" in err and "free some space, then run the same command again" in err
    results = tmp_path / "o" / "results"
    assert list(results.glob("*.json")) == [] and nobody_blamed(results)
    assert list((tmp_path / "tmp").iterdir()) == [] and children_of(os.getpid()) == []
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a new process would have it
    assert main(argv) == 0
    assert [r["status"] for r in rows_of(tmp_path / "o" / "gradebook.csv")] == ["graded", "graded"]


def test_merge_stopped_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(buflesson.grading, "merge_parts", stopped)
    assert main(["gradebook", "merge", "a", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "buflesson gradebook merge: interrupted. Run the same command again.\n"


# --- the whole command ---------------------------------------------------------------------------------


def answer_nb():
    return nbformat.read(ANSWERS / f"{LESSON}.ipynb", as_version=4)


def put(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def grader_command(*args: str) -> list[str]:
    return [sys.executable, str(FIXTURES / "run_grader.py"), *args]


ENV = {**os.environ, "PYTHONHASHSEED": "0"}


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs at tmp_path/out, or a skip where this machine cannot mount one."""
    out = tmp_path / "out"
    out.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(out)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        yield out
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_stops_cleanly_and_a_rerun_completes(tmp_path, tiny_disk):
    students = [f"s{index}" for index in range(6)]
    for student in students:
        put(tmp_path / "course" / student / f"{LESSON}.ipynb", answer_nb())
    filler = tiny_disk / "filler"
    with open(filler, "wb") as handle:  # leave about 10 pages of the tmpfs: room for 2 or 3 notebooks
        handle.write(b"\0" * (1024 - 40) * 1024)
    args = grader_command(
        "grade", "course", "--out", "out", "--answers", str(ANSWERS), "--jobs", "1", *LIMITS
    )
    full = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=240, env=ENV)
    assert full.returncode == 2, full.stderr
    assert full.stderr.count("\n") == 1 and "Traceback" not in full.stderr, full.stderr
    assert "No space left on device" in full.stderr and "free some space, then run the same" in full.stderr
    kept = len(list((tiny_disk / "results").glob("*.json")))
    assert 0 < kept < len(students), full.stderr  # it filled up mid-run
    assert f"{kept} graded notebook" in full.stderr
    assert not [p.name for p in tiny_disk.rglob(".*")]  # no temporary file left behind
    rows = rows_of(tiny_disk / "gradebook.csv")  # the last one written whole
    assert all(row["status"] == "graded" and row["file"] for row in rows) and len(rows) <= kept

    filler.unlink()
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=240, env=ENV)
    assert again.returncode == 0, again.stderr
    assert f"({kept} kept from an earlier run" in again.stdout
    rows = rows_of(tiny_disk / "gradebook.csv")
    assert sorted(r["student"] for r in rows) == students and {r["score"] for r in rows} == {"2"}
    assert len(list((tiny_disk / "feedback").glob("*.md"))) == len(students)


# A notebook still running when the test acts. It sleeps: the sandbox shows a notebook none of the
# test's files, so it cannot wait on one. The cell limit (LIMITS: 20 s) leaves it time to finish.
SLEEPS = "import time\ntime.sleep({seconds})\nanswer = 42"


def two_students(tmp_path: Path, seconds: float) -> None:
    """a: the answer notebook; b: the same, but its cell 5 takes `seconds`."""
    put(tmp_path / "course" / "a" / f"{LESSON}.ipynb", answer_nb())
    waiting = answer_nb()
    waiting.cells[5].source = SLEEPS.format(seconds=seconds)
    put(tmp_path / "course" / "b" / f"{LESSON}.ipynb", waiting)


def start_grader(tmp_path: Path, args: list[str]) -> subprocess.Popen:
    """The grader in a process group of its own (as a terminal's foreground job), its scratch
    folders in tmp_path/tmp."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen(
        args,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "TMPDIR": str(tmp_path / "tmp")},
        start_new_session=True,
    )


def finish(run: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    try:
        return run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        raise


def wait_until(ready, run: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert run.poll() is None, finish(run)
        assert time.monotonic() < deadline, "the grader never got there"
        time.sleep(0.05)


def journal_lines(results: Path) -> list[str]:
    try:
        return (results / "journal.log").read_text().splitlines()
    except OSError:
        return []


def started_in_run(results: Path, runs: int) -> bool:
    """The journal holds `runs` runs, and a notebook has started in the last one."""
    lines = journal_lines(results)
    at = [i for i, line in enumerate(lines) if line == "run ."]
    return len(at) == runs and any(line.startswith("start ") for line in lines[at[-1] :])


def left_behind(tmp: Path) -> tuple[list[str], list[int]]:
    """What a finished grader left: files in its temporary folder, and processes of its run (the
    zygote and its children, forks of it, have the run's scratch folder as TMPDIR)."""
    mark = f"TMPDIR={tmp}/buflesson-grade-run-".encode()
    processes = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if mark in handle.read():
                    processes.append(int(pid))
        except OSError:
            pass  # gone, or not ours to read
    return sorted(p.name for p in tmp.iterdir()), processes


def nobody_blamed(results: Path) -> bool:
    deaths, suspects = Journal(results / "journal.log").history()
    return not deaths and not suspects


@pytest.mark.slow
def test_ctrl_c_mid_run_prints_one_line_exits_130_and_the_same_command_resumes(tmp_path):
    two_students(tmp_path, seconds=12)
    args = grader_command(
        "grade", "course", "--out", "out", "--answers", str(ANSWERS), "--jobs", "2", *LIMITS
    )
    out, tmp = tmp_path / "out", tmp_path / "tmp"

    early = start_grader(tmp_path, args)  # Ctrl-C while the zygote starts, before any notebook ran
    wait_until(lambda: any(tmp.glob("buflesson-grade-run-*")), early)
    os.killpg(early.pid, signal.SIGINT)
    _, stderr = finish(early)
    assert early.returncode == 130, stderr
    assert stderr == (
        f"buflesson grade: interrupted. 0 graded notebooks kept in {Path('out', 'results')}; "
        "run the same command again to grade the rest.\n"
    )
    wait_until(lambda: left_behind(tmp) == ([], []), early, seconds=10)

    run = start_grader(tmp_path, args)
    wait_until(lambda: any((out / "results").glob("*.json")), run)
    time.sleep(0.5)  # b is still running
    for pause in (0.0, 0.001, 0.01, 0.05, 0.2):  # Ctrl-C, hit again and again
        os.killpg(run.pid, signal.SIGINT)  # as a terminal does: its foreground process group
        time.sleep(pause)
    stdout, stderr = finish(run)
    assert run.returncode == 130, stderr
    assert stderr == (
        f"buflesson grade: interrupted. 1 graded notebook kept in {Path('out', 'results')}; "
        "run the same command again to grade the rest.\n"
    )
    assert [(r["student"], r["status"]) for r in rows_of(out / "gradebook.csv")] == [("a", "graded")]
    assert nobody_blamed(out / "results")  # b was stopped from outside: not its doing
    wait_until(lambda: left_behind(tmp) == ([], []), run, seconds=10)  # its children died with it

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=240, env=ENV)
    assert again.returncode == 0, again.stderr
    assert "2 notebooks of 2 students: 2 graded (1 kept from an earlier run" in again.stdout
    assert {r["student"]: r["score"] for r in rows_of(out / "gradebook.csv")} == {"a": "2", "b": "2"}


@pytest.mark.slow
def test_the_command_writes_with_the_users_umask(tmp_path):
    put(tmp_path / "course" / "a" / f"{LESSON}.ipynb", answer_nb())
    args = grader_command("grade", "course", "--out", "out", "--answers", str(ANSWERS), *LIMITS)
    run = subprocess.run(
        args,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.relative_to(out).parts[0] for p in files} == {"gradebook.csv", "feedback", "results"}
    assert {p.relative_to(out).as_posix(): mode(p) for p in files} == {
        p.relative_to(out).as_posix(): 0o640 for p in files
    }
    assert {mode(p) for p in [out, *out.rglob("*")] if p.is_dir()} == {0o750}


def remount(disk: Path, mode: str) -> None:
    """Remount the tmpfs read-only or read-write (retried: a file open for writing makes it busy)."""
    for _ in range(100):
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], capture_output=True).returncode == 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"cannot remount {disk} {mode}")


@pytest.mark.slow
def test_an_output_folder_made_read_only_mid_run_stops_cleanly_and_a_rerun_completes(tmp_path, tiny_disk):
    """Twice the output folder turns read-only while b runs (the second time b runs alone), and
    each run stops in one line; b is not blamed for it (a notebook running alone when its grader
    died twice would be marked crashed), and the third run grades it."""
    two_students(tmp_path, seconds=10)
    args = grader_command(
        "grade", "course", "--out", "out", "--answers", str(ANSWERS), "--jobs", "2", *LIMITS
    )
    results, tmp = tiny_disk / "results", tmp_path / "tmp"
    for turn in range(2):
        run = start_grader(tmp_path, args)
        ready = (lambda: any(results.glob("*.json"))) if turn == 0 else (lambda: started_in_run(results, 2))
        wait_until(ready, run)
        time.sleep(0.5)  # a's feedback and gradebook written too, b still running
        remount(tiny_disk, "ro")  # b finishes now, and its result cannot be stored
        stdout, stderr = finish(run)
        assert run.returncode == 2, stderr
        assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
        assert "Read-only file system" in stderr and "1 graded notebook kept in" in stderr
        assert "make it writable, then run the same command again" in stderr
        assert [(r["student"], r["status"]) for r in rows_of(tiny_disk / "gradebook.csv")] == [
            ("a", "graded")
        ]
        wait_until(lambda: left_behind(tmp)[1] == [], run, seconds=10)
        (aside,) = left_behind(tmp)[0]  # no scratch folder; the `end` line b is owed, kept aside
        assert aside.startswith("buflesson-journal-") and (tmp / aside).read_text().startswith("end "), turn
        assert not [p.name for p in tiny_disk.rglob(".*")]  # no temporary file left behind
        remount(tiny_disk, "rw")
    again = subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, timeout=240, env={**ENV, "TMPDIR": str(tmp)}
    )
    assert again.returncode == 0, again.stderr
    assert "2 graded (1 kept from an earlier run" in again.stdout
    assert {r["student"]: r["score"] for r in rows_of(tiny_disk / "gradebook.csv")} == {"a": "2", "b": "2"}
    assert nobody_blamed(results) and list(tmp.iterdir()) == []
