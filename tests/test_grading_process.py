"""The grading run as a process: what survives a killed grader, what a killed run leaves behind,
whom a grader's death is blamed on, and submissions that change under it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grading_fixture import (
    ANSWERS,
    HIDDEN,
    LESSON,
    RIGHT_SCALE,
    answer_nb,
    grader,
    grader_command,
    grader_env,
    notebook,
    points,
    put,
    row_of,
    rows_of,
)

from buflesson import checks
from buflesson.grading import grade
from buflesson.grading.judge.run import GRADEBOOK_EVERY
from buflesson.grading.limits import Limits

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LIMITS = ["--cell-timeout", "30", "--timeout", "60"]
SLEEPY = "import time\ntime.sleep({seconds})\nanswer = 42"


def journal(out: Path) -> list[str]:
    try:
        return (out / "results" / "journal.log").read_text().splitlines()
    except OSError:
        return []


def this_run(out: Path) -> list[str]:
    lines = journal(out)
    last = max((i for i, line in enumerate(lines) if line == "run ."), default=-1)
    return lines[last + 1 :]


def start_and_kill(args: list[str], cwd: Path, out: Path, started: int, tmp: Path | None = None) -> None:
    """Start the grader, SIGKILL it (from outside) once `started` notebooks of this run have begun."""
    before = len(journal(out))
    process = subprocess.Popen(grader_command(*args), cwd=cwd, env=grader_env(tmp))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = journal(out)[before:]
        if "run ." in lines and sum(line.startswith("start") for line in lines) >= started:
            break
        if process.poll() is not None:
            raise AssertionError(f"the grader ended by itself ({process.returncode})")
        time.sleep(0.05)
    else:
        process.kill()
        raise AssertionError("the notebooks never started")
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_innocent_notebooks_are_not_blamed_for_the_grader_being_killed(tmp_path):
    """Two right notebooks were running when the grader was killed from outside, twice: neither is
    blamed; each suspect runs alone next time, and both get their points."""
    for student in ("ann", "bob"):
        put(tmp_path / "course", f"{student}/{LESSON}.ipynb", notebook(RIGHT_SCALE, SLEEPY.format(seconds=8)))
    out = tmp_path / "out"
    args = ["grade", "course", "--answers", str(ANSWERS), "--hidden", str(HIDDEN), "--out", "out", *LIMITS]
    start_and_kill([*args, "--jobs", "2"], tmp_path, out, started=2)
    assert sum(line.startswith("start") for line in journal(out)) == 2
    start_and_kill([*args, "--jobs", "2"], tmp_path, out, started=1)
    assert [line.split()[0] for line in this_run(out)] == ["start"]  # a suspect runs alone
    third = grader(*args, "--jobs", "2", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    for student in ("ann", "bob"):
        row = row_of(out, student)
        assert (row["status"], points(row)) == ("graded", ("1", "2", "1")), row


KILLS_GRADER = """
import os, signal
pid = os.getpid()
while pid > 1:
    with open(f"/proc/{pid}/stat") as handle:
        pid = int(handle.read().rsplit(")", 1)[1].split()[1])
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        if b"run_grader.py" in handle.read():
            os.kill(pid, signal.SIGKILL)
answer = 42
"""


def test_a_notebook_that_kills_its_grader_alone_twice_is_marked_crashed(tmp_path):
    """Without namespaces a notebook can find and kill its grader: each run loses only what was
    running, and a notebook that was running alone when the grader died twice is not run again."""
    put(tmp_path / "course", f"killer/{LESSON}.ipynb", notebook(RIGHT_SCALE, KILLS_GRADER))
    args = ["grade", "course", "--answers", str(ANSWERS), "--out", "out", "--jobs", "1", "--sandbox", "basic"]
    for _ in range(2):
        assert grader(*args, *LIMITS, cwd=tmp_path).returncode == -9  # SIGKILL, from the notebook
    put(tmp_path / "course", f"right/{LESSON}.ipynb", answer_nb())
    third = grader(*args, *LIMITS, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    killer, right = row_of(tmp_path / "out", "killer"), row_of(tmp_path / "out", "right")
    assert killer["status"] == "crashed" and "killed twice" in killer["error"]
    assert (right["status"], right["score"]) == ("graded", "2")  # no hidden checks here


def test_a_killed_run_leaves_nothing_the_next_run_does_not_clean(tmp_path):
    tmp = tmp_path / "tmp"
    put(tmp_path / "course", f"slow/{LESSON}.ipynb", notebook(RIGHT_SCALE, SLEEPY.format(seconds=20)))
    args = ["grade", "course", "--answers", str(ANSWERS), "--out", "out", *LIMITS]
    start_and_kill(args, tmp_path, tmp_path / "out", started=1, tmp=tmp)
    left = [p.name for p in tmp.iterdir()]
    assert left and all(name.startswith("buflesson-grade-run-") for name in left)
    deadline = time.monotonic() + 10  # the zygote and the notebook die with their grader
    while _processes_in(tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_in(tmp)
    put(tmp_path / "course", f"slow/{LESSON}.ipynb", answer_nb())
    again = grader(*args, cwd=tmp_path, tmp=tmp)
    assert again.returncode == 0, again.stderr
    assert list(tmp.iterdir()) == []


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is under `folder`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(str(folder)):
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_after_a_kill_and_a_resume_nothing_finished_is_missing(tmp_path):
    """Each result is stored the moment it is decided; gradebook.csv follows at most every second
    (as the README says), and a resumed run rebuilds it from every stored result."""
    for student in ("a1", "a2"):
        put(tmp_path / "course", f"{student}/{LESSON}.ipynb", answer_nb())
    put(tmp_path / "course", f"z/{LESSON}.ipynb", notebook(RIGHT_SCALE, SLEEPY.format(seconds=30)))
    out = tmp_path / "out"
    args = ["grade", "course", "--answers", str(ANSWERS), "--out", "out", "--jobs", "1", *LIMITS]
    start_and_kill(args, tmp_path, out, started=3)
    stored = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert len(stored) == 2
    put(tmp_path / "course", f"z/{LESSON}.ipynb", answer_nb())
    again = grader(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert {r["student"]: r["score"] for r in rows_of(out)} == {"a1": "2", "a2": "2", "z": "2"}
    for name, mtime in stored.items():  # kept, not graded again
        assert (out / "results" / name).stat().st_mtime_ns == mtime
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert GRADEBOOK_EVERY == 1.0 and "rewritten from them at most once a second" in readme


@pytest.fixture
def fixture_checks():
    """The fixture's checks registered in this process (the judge here), for this test only."""
    sys.path.insert(0, str(ANSWERS.parent))
    import fixture_exercises  # noqa: F401

    yield
    for exercise_id in ("90.1", "90.2"):
        checks._REGISTRY.pop(exercise_id, None)
    sys.modules.pop("fixture_exercises", None)
    sys.path.remove(str(ANSWERS.parent))


def test_a_submission_that_vanishes_or_changes_during_grading_is_an_invalid_row(tmp_path, fixture_checks):
    course = tmp_path / "course"
    paths = {
        student: put(course, f"{student}/{LESSON}.ipynb", answer_nb()) for student in ("a", "b", "c", "d")
    }

    def meddle(result) -> None:
        if result.student == "a":
            paths["b"].unlink()
            paths["c"].write_text(paths["c"].read_text().replace("6 * 7", "6 * 7 + 0"))

    results = grade([course], tmp_path / "out", answers=ANSWERS, jobs=1, limits=Limits(), on_result=meddle)
    by_student = {r.student: r for r in results}
    assert (by_student["b"].status, by_student["c"].status) == ("invalid", "invalid")
    assert "vanished during grading" in by_student["b"].error
    assert "changed during grading" in by_student["c"].error
    assert (by_student["a"].score, by_student["d"].score) == (2, 2)
    rows = {r["student"]: r for r in rows_of(tmp_path / "out")}
    assert rows["b"]["status"] == "invalid" and rows["d"]["status"] == "graded"
    stored = [json.loads(p.read_text()) for p in (tmp_path / "out" / "results").glob("*.json")]
    assert sorted(r["student"] for r in stored) == ["a", "d"]  # what could not be read is not stored
