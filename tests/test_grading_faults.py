"""Faults around the grader's own files: a full disk, a quota or a read-only folder at any write,
Ctrl-C at any point, and the mode of what it writes (the user's umask). In process first (the
write functions made to fail), then the whole command: on a tiny tmpfs that fills up mid-run (when
this machine may mount one), and stopped by SIGINT mid-run, as a terminal's Ctrl-C does."""

from __future__ import annotations

import csv
import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import buflesson.grading
from buflesson.cli import main
from buflesson.grading import gradebook
from buflesson.grading.feedback import write_feedback
from buflesson.grading.gradebook import NotebookResult, ResultStore, write_atomic, write_gradebook

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
        store.note("start", "f", "ab")
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
    store = ResultStore(tmp_path, "s")
    k1, k2 = store.key("one", "a"), store.key("two", "b")
    store.journal.write_text(f"start {k1}\nstart {k2}\nend {k2}\nstart {k1[:7]}")  # the disk filled up
    store.note("start", "two", "b")
    assert store.deaths("one", "a") == 1 and store.deaths("two", "b") == 1
    store.journal.write_text(f"sta\nstart {k1}\nend {k1}\n")
    assert store.deaths("one", "a") == 0


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


@pytest.mark.parametrize("where", ["find", "write_gradebook"])
def test_ctrl_c_before_any_notebook_ran(tmp_path, monkeypatch, capsys, where):
    """Ctrl-C reaches the real grade() while it finds submissions or writes the first gradebook."""
    course = tmp_path / "c" / "ann"
    course.mkdir(parents=True)
    nbformat.write(nbformat.read(ANSWERS / f"{LESSON}.ipynb", as_version=4), course / f"{LESSON}.ipynb")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(buflesson.grading, where, interrupt)
    argv = ["grade", str(tmp_path / "c"), "--out", str(tmp_path / "o"), "--answers", str(ANSWERS)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted. 0 graded notebooks kept" in err


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


HOLD = "import os, time\nwhile os.path.exists({hold!r}):\n    time.sleep(0.05)\nanswer = 42"


@pytest.mark.slow
def test_ctrl_c_mid_run_prints_one_line_exits_130_and_the_same_command_resumes(tmp_path):
    hold = tmp_path / "hold"
    hold.write_text("while this file exists, b's notebook waits")
    put(tmp_path / "course" / "a" / f"{LESSON}.ipynb", answer_nb())
    waiting = answer_nb()
    waiting.cells[5].source = HOLD.format(hold=str(hold))
    put(tmp_path / "course" / "b" / f"{LESSON}.ipynb", waiting)
    args = grader_command(
        "grade", "course", "--out", "out", "--answers", str(ANSWERS), "--jobs", "2", *LIMITS
    )
    run = subprocess.Popen(
        args,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while not list((tmp_path / "out" / "results").glob("*.json")) and time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        time.sleep(0.1)
    time.sleep(0.5)  # b is waiting on the hold file
    for pause in (0.0, 0.001, 0.01, 0.05, 0.2):  # Ctrl-C, hit again and again
        os.killpg(run.pid, signal.SIGINT)  # as a terminal does: its foreground process group
        time.sleep(pause)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    out = tmp_path / "out"
    assert stderr == (
        f"buflesson grade: interrupted. 1 graded notebook kept in {Path('out', 'results')}; "
        "run the same command again to grade the rest.\n"
    )
    assert [(r["student"], r["status"]) for r in rows_of(out / "gradebook.csv")] == [("a", "graded")]

    hold.unlink()
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


@pytest.mark.slow
def test_an_output_folder_made_read_only_mid_run_stops_cleanly_and_a_rerun_completes(tmp_path, tiny_disk):
    hold = tmp_path / "hold"
    hold.write_text("while this file exists, b's notebook waits")
    put(tmp_path / "course" / "a" / f"{LESSON}.ipynb", answer_nb())
    waiting = answer_nb()
    waiting.cells[5].source = HOLD.format(hold=str(hold))
    put(tmp_path / "course" / "b" / f"{LESSON}.ipynb", waiting)
    args = grader_command(
        "grade", "course", "--out", "out", "--answers", str(ANSWERS), "--jobs", "2", *LIMITS
    )
    run = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    deadline = time.monotonic() + 180
    while not list((tiny_disk / "results").glob("*.json")) and time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        time.sleep(0.1)
    time.sleep(0.5)  # a's feedback and gradebook written too
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    hold.unlink()  # b finishes now, and its result cannot be stored
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert "Read-only file system" in stderr and "1 graded notebook kept in" in stderr
    assert "make it writable, then run the same command again" in stderr
    subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=240, env=ENV)
    assert again.returncode == 0, again.stderr
    assert "2 graded (1 kept from an earlier run" in again.stdout
    assert {r["student"]: r["score"] for r in rows_of(tiny_disk / "gradebook.csv")} == {"a": "2", "b": "2"}
