"""The grader's machinery in pieces: frames, the journal's blame, the scheduler, what the zygote
may know, and the sandbox's levels (run for real where this machine allows)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from buflesson.grading import channel as frames
from buflesson.grading.jobs import Outcome
from buflesson.grading.judge import scratch
from buflesson.grading.judge.children import hidden_inside, zygote_environment
from buflesson.grading.judge.journal import Journal
from buflesson.grading.judge.scheduler import Task, run_all
from buflesson.grading.judge.scratch import PREFIX, remove_abandoned
from buflesson.grading.submissions import Submission

ROOT = Path(__file__).resolve().parent.parent


# --- frames ------------------------------------------------------------------------------------


def pair(max_frame: int = 1024) -> tuple[frames.Channel, socket.socket]:
    ours, theirs = socket.socketpair()
    return frames.Channel(ours, max_frame), theirs


def test_a_frame_round_trip_and_what_is_refused():
    channel, other = pair()
    other_end = frames.Channel(other, 1024)
    other_end.send_json(frames.DONE, {"n": 3})
    kind, payload = channel.receive(time.monotonic() + 5)
    assert (kind, frames.parse_json(payload)) == (frames.DONE, {"n": 3})
    other.sendall(frames.HEADER.pack(frames.REPLY, 10**9))
    with pytest.raises(frames.Broken, match="at most 1024"):
        channel.receive(time.monotonic() + 5)
    channel, other = pair()
    other.sendall(b"garbage!")
    with pytest.raises(frames.Broken, match="unknown kind"):
        channel.receive(time.monotonic() + 5)
    channel, other = pair()
    with pytest.raises(frames.TimedOut):
        channel.receive(time.monotonic() + 0.2)
    other.close()
    with pytest.raises(frames.Closed):
        channel.receive(time.monotonic() + 5)
    for bad in (b"[1, 2]", b"{", b"[" * 100_000):
        with pytest.raises(frames.Broken):
            frames.parse_json(bad)
    channel, other = pair()  # a side that never reads cannot hold the sender past its deadline
    started = time.monotonic()
    with pytest.raises(frames.TimedOut):
        channel.send(frames.STEP, b"x" * 2**24, time.monotonic() + 0.3)
    assert time.monotonic() - started < 5


# --- the journal and the scheduler --------------------------------------------------------------


def test_the_journal_blames_only_a_notebook_that_was_alone(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    journal.begin_run()
    for key in ("a", "b"):
        journal.start(key)  # killed with both running: both suspects, neither blamed
    journal.begin_run()
    journal.start("a")  # killed while a ran alone: one death for a
    journal.begin_run()
    journal.start("b")
    journal.end("b")  # b finished
    journal.start("c")
    journal.died_alone("c")  # the zygote died with c alone (the judge survived)
    journal.end("c")
    deaths, suspects = journal.history()
    assert (deaths["a"], deaths["b"], deaths["c"]) == (1, 0, 1)
    assert suspects == {"a", "b", "c"}


def sub(name: str) -> Submission:
    return Submission(Path(name), name, name, "90-fixture", "sha", 0.0)


def test_the_scheduler_reruns_alone_what_was_running_when_the_grader_died(tmp_path):
    """The zygote dies whenever `killer` runs: the first time beside another notebook (no blame;
    both run again alone), then twice alone (blamed). The innocent one is graded."""
    journal = Journal(tmp_path / "journal.log")
    runs: list[tuple[str, bool, int]] = []
    lock = threading.Lock()
    active: set[str] = set()
    deaths = [0]  # how often the (pretend) zygote died

    def run_one(task: Task, slot: int) -> Outcome:
        with lock:
            active.add(task.key)
            runs.append((task.key, task.alone, len(active)))
            seen = deaths[0]
        time.sleep(0.05 if task.key == "killer" else 0.2)
        with lock:
            active.discard(task.key)
            if task.key == "killer":
                deaths[0] += 1  # it kills the zygote: every notebook running then dies too
            return Outcome(grader_died=deaths[0] != seen)

    done, blamed, restarts = [], [], []
    tasks = [Task(sub("innocent"), "innocent"), Task(sub("killer"), "killer")]
    run_all(
        tasks,
        2,
        run_one,
        lambda task, outcome: done.append(task.key),
        lambda task: blamed.append(task.key),
        lambda: restarts.append(1),
        lambda: None,
        journal,
    )
    assert done == ["innocent"] and blamed == ["killer"] and len(restarts) == 3
    assert runs[:2] == [("innocent", False, 1), ("killer", False, 2)]  # together: neither blamed
    assert sorted(runs[2:]) == [("innocent", True, 1), ("killer", True, 1), ("killer", True, 1)]
    deaths, _ = journal.history()
    assert deaths["killer"] == 2 and deaths["innocent"] == 0


def test_a_stopped_run_ends_its_children_and_blames_nobody(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    aborted = threading.Event()

    def run_one(task: Task, slot: int) -> Outcome:
        aborted.wait(10)
        return Outcome(grader_died=True)

    def done(task, outcome):
        raise KeyboardInterrupt

    def slow(task: Task, slot: int) -> Outcome:
        if task.key == "quick":
            return Outcome()
        return run_one(task, slot)

    tasks = [Task(sub("quick"), "quick"), Task(sub("long"), "long")]
    with pytest.raises(KeyboardInterrupt):
        run_all(tasks, 2, slow, done, lambda t: None, lambda: None, aborted.set, journal)
    assert aborted.is_set()
    deaths, suspects = journal.history()
    assert not deaths and not suspects


# --- what the child side may know ----------------------------------------------------------------


def test_the_zygote_learns_nothing_of_the_course_or_the_output(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADES_OUT", "/secret/out")
    monkeypatch.setenv("MPLCONFIGDIR", "/secret/course/mpl")
    env = zygote_environment(tmp_path)
    assert "/secret" not in repr(env) and env["HOME"] == str(tmp_path)
    assert set(env) <= {
        "LANG",
        "LC_ALL",
        "TZ",
        "PYTHONHASHSEED",
        "LD_LIBRARY_PATH",
        "PATH",
        "HOME",
        "TMPDIR",
    } | {
        "MPLBACKEND",
        "MPLCONFIGDIR",
        "PYTORCH_NVML_BASED_CUDA_CHECK",
    }


def test_the_sandbox_shows_only_software_folders():
    """The folders a child sees, as the zygote computes them (`python -I`, after its imports)."""
    code = (
        "import buflesson, torch, IPython, matplotlib.pyplot\n"
        "from buflesson.grading.child.sandbox import software_folders\n"
        "print('\\n'.join(software_folders()))"
    )
    shown = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.split()
    assert str(ROOT / "buflesson") in shown or any(str(ROOT / "buflesson").startswith(p) for p in shown)
    for secret in (ROOT / "notebooks" / "answers", ROOT / "tests", Path.home()):
        assert not any(str(secret) == p or str(secret).startswith(p + "/") for p in shown), (secret, shown)


def test_a_secret_inside_a_shown_folder_is_masked(tmp_path):
    shown = [tmp_path / "site-packages", Path("/usr")]
    secrets = [tmp_path / "site-packages" / "course", tmp_path / "out", Path("/usr/local/grades")]
    assert hidden_inside(shown, secrets) == [str(secrets[0]), "/usr/local/grades"]


def test_abandoned_run_folders_are_removed_and_live_ones_kept(tmp_path):
    import fcntl

    dead, live = tmp_path / f"{PREFIX}dead", tmp_path / f"{PREFIX}live"
    for folder in (dead, live):
        (folder / "job-0001").mkdir(parents=True)
        (folder / "lock").write_text("")
    handle = os.open(live / "lock", os.O_RDWR)
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        assert remove_abandoned(tmp_path) == [dead]
        assert live.exists() and not dead.exists()
    finally:
        os.close(handle)


def test_the_copy_of_a_students_folder_follows_no_link_even_one_swapped_in(tmp_path, monkeypatch):
    """Links are left out, also one that replaces a file or a folder between the listing and the
    copy; a pipe is not opened; an error writing the copy (the judge's disk) is raised."""
    secret = tmp_path / "course"
    (secret / "inner").mkdir(parents=True)
    (secret / "answers.txt").write_text("the course")
    (secret / "inner" / "more.txt").write_text("the course")
    student = tmp_path / "ann"
    (student / "data").mkdir(parents=True)
    (student / "data" / "kept.txt").write_text("mine")
    (student / "swapped.txt").write_text("mine")
    (student / "swapped_dir").mkdir()
    (student / "link.txt").symlink_to(secret / "answers.txt")
    os.mkfifo(student / "pipe")
    listing = os.scandir

    def swap_after_listing(folder):
        entries = list(listing(folder))
        if any(e.name == "swapped.txt" for e in entries):
            (student / "swapped.txt").unlink()
            (student / "swapped.txt").symlink_to(secret / "answers.txt")
            (student / "swapped_dir").rmdir()
            (student / "swapped_dir").symlink_to(secret / "inner", target_is_directory=True)
        return iter(entries)

    monkeypatch.setattr(os, "scandir", swap_after_listing)
    copy = tmp_path / "copy"
    copy.mkdir()
    scratch._copy_folder(student, copy, [2**20])
    monkeypatch.setattr(os, "scandir", listing)
    copied = {p.relative_to(copy).as_posix(): p.read_text() for p in copy.rglob("*") if p.is_file()}
    assert copied == {"data/kept.txt": "mine"}
    assert sorted(p.name for p in copy.iterdir()) == ["data"]

    blocked = tmp_path / "blocked"  # the copy cannot be written: a file where its folder goes
    blocked.mkdir()
    (blocked / "data").write_text("")
    with pytest.raises(FileExistsError):
        scratch._copy_folder(student, blocked, [2**20])


# --- the sandbox, for real -------------------------------------------------------------------------

PROBE = r"""
import json, os, socket, sys
from buflesson.grading.child import sandbox, linux

scratch = sys.argv[1]
level, user_namespace = sys.argv[2], sys.argv[3] == "1"
box = sandbox.Sandbox(level, 256, 8, 16, 30, tuple(sandbox.software_folders()), (), user_namespace)
ours, theirs = socket.socketpair()

def notebook(fd):
    seen = {
        "uid": os.getuid(),
        "caps": linux.capabilities(),
        "cwd": os.getcwd(),
        "root": sorted(os.listdir("/")),
        "argv": sys.argv,
        "env": sorted(os.environ),
        "pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
        "course": os.path.exists(sys.argv[0]) if False else os.path.exists(%(secret)r),
        "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
    }
    try:
        open("/usr/x", "w")
        seen["usr"] = "written"
    except OSError as error:
        seen["usr"] = error.strerror
    os.write(fd, json.dumps(seen).encode())

pid = os.fork()
if pid == 0:
    ours.close()
    sandbox.launch(box, scratch, 3, theirs.detach(), notebook)
theirs.close()
data = ours.recv(65536)
_, status = os.waitpid(pid, 0)
print(json.dumps({"seen": json.loads(data), "status": status}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces levels are tried as root here")
@pytest.mark.parametrize(
    ("level", "user_namespace"), [("namespaces", False), ("namespaces", True), ("basic", False)]
)
def test_each_sandbox_level_gives_what_it_says(tmp_path, level, user_namespace):
    import json

    scratch = tmp_path / "job"
    for name in ("files", "home", "tmp", "root"):
        (scratch / name).mkdir(parents=True)
    (scratch / "files" / "mine.txt").write_text("the student's file")
    secret = ROOT / "notebooks" / "answers"
    code = PROBE % {"secret": str(secret)}
    run = subprocess.run(
        [sys.executable, "-I", "-c", code, str(scratch), level, "1" if user_namespace else "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "SECRET_OUT": "/grades/out"},
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    seen = report["seen"]
    assert report["status"] == 0 and seen["argv"] == ["notebook"] and "SECRET_OUT" not in seen["env"]
    assert seen["fds"][:3] == [0, 1, 2] and len(seen["fds"]) <= 5  # stdio, the channel, the listing
    if level == "basic":
        assert seen["cwd"] == str(scratch / "files") and seen["course"]
        return
    assert seen["cwd"] == "/sandbox/work" and not seen["course"] and seen["caps"] == 0
    assert seen["usr"] == "Read-only file system" and seen["pids"] <= 3
    assert "sandbox" in seen["root"] and "home" not in seen["root"]
    assert seen["uid"] == (0 if user_namespace else 2_100_000_003)
