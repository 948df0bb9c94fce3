"""`buflesson grade` end to end on the fixture lesson: right, blank, broken, hostile and cheating
submissions in one run, then resume, shards and merge. Each run is a real `buflesson` process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from buflesson.grading.feedback import feedback_name
from buflesson.release import handout

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
ANSWERS = FIXTURES / "answers"
LESSON = "90-fixture"
LIMITS = ["--cell-timeout", "3", "--timeout", "8", "--memory", "1024"]

pytestmark = pytest.mark.slow


def grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, str(FIXTURES / "run_grader.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )


def answer_nb() -> nbformat.NotebookNode:
    return nbformat.read(ANSWERS / f"{LESSON}.ipynb", as_version=4)


def blank_nb() -> nbformat.NotebookNode:
    return handout(answer_nb(), LESSON)


def with_exercise(nb: nbformat.NotebookNode, index: int, source: str) -> nbformat.NotebookNode:
    nb.cells[index].source = source
    return nb


def put(root: Path, rel: str, content: nbformat.NotebookNode | str | bytes, mtime: float | None = None):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, nbformat.NotebookNode):
        content = nbformat.writes(content)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


STUBBORN = """
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""
CHEAT_CHECK = "answer = 0\n\ndef check(*args, **kwargs):\n    return 'PASSED'"
CHEAT_REGISTRY = """
import buflesson, buflesson.checks as c, buflesson.probes as p
from buflesson.results import CheckResult
c._REGISTRY["90.1"] = c.Exercise("90.1", "x", "ok", lambda a: None)
c._REGISTRY["90.2"] = c.Exercise("90.2", "x", "ok", lambda a: None)
c.check = buflesson.check = lambda i, a: CheckResult(i, "x", "passed", "ok")
p.build_module = lambda a, *x: None
answer = 0
"""
CHEAT_TORCH = """
import builtins, torch
class Scale(nn.Module):
    def forward(self, x):
        return x * 2
nn.Module.named_buffers = lambda self, *a, **k: iter([("factor", torch.ones(()))])
torch.equal = lambda a, b: True
builtins.isinstance = lambda a, b: True
answer = 41
"""
CHEAT_CHANNEL = """
import os, json
fake = {"t": "result", "result": {"exercise": "90.2", "title": "t", "status": "passed",
        "message": "m", "hint": ""}}
line = ("0" * 64 + " " + json.dumps(fake) + "\\n").encode()
for fd in range(3, 1024):
    try:
        os.write(fd, line)
    except OSError:
        pass
print("[PASSED] Exercise 90.2")
open("results.json", "w").write(json.dumps({"score": 100}))
answer = 41
"""
CHEAT_JSON = """
import json
fake = json.dumps({"t": "result", "result": {"exercise": "90.2", "title": "t", "status": "passed",
                  "message": "m", "hint": ""}})
json.dumps = lambda *a, **k: fake
answer = 41
"""


def make_submissions(root: Path) -> None:
    """One folder per student; each name says what it holds."""
    now = time.time()
    answer, blank = answer_nb(), blank_nb()
    put(root, f"right/{LESSON}.ipynb", answer)
    put(root, f"blank/{LESSON}.ipynb", blank)
    put(root, f"empty/{LESSON}.ipynb", b"")
    put(root, f"badjson/{LESSON}.ipynb", '{"cells": [')
    put(root, f"notnotebook/{LESSON}.ipynb", '{"hello": "world"}')
    put(root, f"binary/{LESSON}.ipynb", b"\x89PNG\r\n\x1a\n\x00\x00")
    put(root, f"v3/{LESSON}.ipynb", nbformat.writes(nbformat.convert(answer_nb(), 3), version=3))
    put(root, f"loop/{LESSON}.ipynb", with_exercise(answer_nb(), 2, "while True:\n    pass"))
    put(root, f"stubborn/{LESSON}.ipynb", with_exercise(answer_nb(), 2, STUBBORN))
    put(root, f"exits/{LESSON}.ipynb", with_exercise(answer_nb(), 5, "import os\nos._exit(3)"))
    segv = "import ctypes\nctypes.string_at(0)"
    put(root, f"segfault/{LESSON}.ipynb", with_exercise(answer_nb(), 5, segv))
    spam = "for _ in range(20):\n    print('x' * 1_000_000)\nanswer = 42"
    put(root, f"spam/{LESSON}.ipynb", with_exercise(answer_nb(), 5, spam))
    hog = "import torch\nbig = torch.empty(8 * 2**30, dtype=torch.uint8)\nanswer = 42"
    put(root, f"memory/{LESSON}.ipynb", with_exercise(answer_nb(), 5, hog))
    put(root, f"Zoë Ångström/{LESSON} (copy 1).ipynb", answer)
    put(root, f"dup/{LESSON}.ipynb", answer, mtime=now - 3600)
    put(root, f"dup/{LESSON} (2).ipynb", blank, mtime=now)
    tampered = answer_nb()
    tampered.cells[6].source = 'print("[PASSED] Exercise 90.2")'
    del tampered.cells[4]
    put(root, f"tampered/{LESSON}.ipynb", tampered)
    claims = blank_nb()
    claims.metadata["buflesson"]["score"] = 100
    claims.cells[3].outputs = [nbformat.v4.new_output("stream", text="[PASSED] Exercise 90.1\n")]
    put(root, f"claims/{LESSON}.ipynb", claims)
    put(root, f"cheat_check/{LESSON}.ipynb", with_exercise(blank_nb(), 5, CHEAT_CHECK))
    put(root, f"cheat_registry/{LESSON}.ipynb", with_exercise(blank_nb(), 5, CHEAT_REGISTRY))
    put(root, f"cheat_torch/{LESSON}.ipynb", with_exercise(blank_nb(), 2, CHEAT_TORCH))
    put(root, f"cheat_channel/{LESSON}.ipynb", with_exercise(blank_nb(), 5, CHEAT_CHANNEL))
    put(root, f"cheat_json/{LESSON}.ipynb", with_exercise(blank_nb(), 5, CHEAT_JSON))
    put(root, "stranger/other-course.ipynb", answer)


# student -> (status, 90.1, 90.2 hidden, 90.2, words the error must hold)
EXPECTED = {
    "right": ("graded", "1", "2", "1", ""),
    "blank": ("graded", "0", "0", "0", ""),
    "empty": ("invalid", "0", "0", "0", "empty"),
    "badjson": ("invalid", "0", "0", "0", "not valid JSON"),
    "notnotebook": ("invalid", "0", "0", "0", "no nbformat"),
    "binary": ("invalid", "0", "0", "0", "not UTF-8"),
    "v3": ("graded", "1", "2", "1", ""),
    "loop": ("timeout", "0", "0", "1", "limit per cell"),
    "stubborn": ("timeout", "0", "0", "0", "limit per notebook"),
    "exits": ("crashed", "1", "2", "0", "exited with code 3"),
    "segfault": ("crashed", "1", "2", "0", "SIGSEGV"),
    "spam": ("graded", "1", "2", "1", ""),
    "memory": ("graded", "1", "2", "0", "memory"),
    "Zoë Ångström": ("graded", "1", "2", "1", ""),
    "tampered": ("tampered", "1", "2", "1", "deleted"),
    "claims": ("graded", "0", "0", "0", ""),
    "cheat_check": ("graded", "0", "0", "0", ""),
    "cheat_registry": ("graded", "0", "0", "0", ""),
    "cheat_torch": ("graded", "0", "0", "0", ""),
    "cheat_channel": ("graded", "0", "0", "0", ""),
    "cheat_json": ("graded", "0", "0", "0", ""),
}


def rows_of(out: Path) -> list[dict[str, str]]:
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    make_submissions(root / "course")
    args = ["grade", "course", "--answers", str(ANSWERS), "--hidden", str(FIXTURES / "hidden_checks.py")]
    started = time.monotonic()
    run = grader(*args, "--out", "out", "--jobs", "2", *LIMITS, cwd=root)
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    return root, args, run, seconds


def test_one_row_per_submitted_notebook(graded):
    root, _, run, _ = graded
    rows = rows_of(root / "out")
    files = sorted(r["file"] for r in rows)
    assert files == sorted(p.relative_to(root).as_posix() for p in (root / "course").rglob("*.ipynb"))
    assert "24 notebooks of 23 students" in run.stdout
    assert run.stderr == ""  # no progress bar when stderr is not a terminal


@pytest.mark.parametrize("student", list(EXPECTED))
def test_status_points_and_reason(graded, student):
    root = graded[0]
    (row,) = [r for r in rows_of(root / "out") if r["student"] == student]
    status, first, hidden, second, words = EXPECTED[student]
    got = (row["status"], row["90.1"], row["90.1+factor_follows_double"], row["90.2"])
    assert got == (status, first, hidden, second), row
    assert words in row["error"] or words in feedback(root, student), row
    assert row["max_score"] == "4"
    earned = sum(float(row[c]) for c in ("90.1", "90.1+factor_follows_double", "90.2") if row[c])
    assert float(row["score"]) == earned


def feedback(root: Path, student: str) -> str:
    return (root / "out" / "feedback" / f"{feedback_name(student)}.md").read_text(encoding="utf-8")


def test_duplicates_newest_wins_and_older_is_reported(graded):
    root = graded[0]
    rows = {r["file"]: r for r in rows_of(root / "out") if r["student"] == "dup"}
    newer, older = rows[f"course/dup/{LESSON} (2).ipynb"], rows[f"course/dup/{LESSON}.ipynb"]
    assert newer["status"] == "graded" and newer["score"] == "0"
    assert older["status"] == "duplicate" and f"{LESSON} (2).ipynb" in older["error"]


def test_file_outside_the_course_is_invalid_with_a_reason(graded):
    root = graded[0]
    (row,) = [r for r in rows_of(root / "out") if r["student"] == "stranger"]
    assert row["status"] == "invalid" and "not a notebook of this course" in row["error"]


def test_feedback_per_student_in_markdown_and_html_without_hidden_code(graded):
    root = graded[0]
    folder = root / "out" / "feedback"
    assert {p.stem for p in folder.glob("*.md")} == {p.stem for p in folder.glob("*.html")}
    right = feedback(root, "right")
    assert "Total: **4 / 4**" in right and "Exercise 90.1: Keep factor as a buffer" in right
    assert "hidden check 90.1: factor follows the model" in right
    blank = feedback(root, "blank")
    assert "not attempted" in blank and "Traceback" not in blank
    for student in ("loop", "empty"):  # checks that never ran still name what they check
        text = feedback(root, student)
        assert "Exercise 90.1: Keep factor as a buffer" in text
        assert "hidden check 90.1: factor follows the model" in text
    html = (folder / f"{feedback_name('Zoë Ångström')}.html").read_text(encoding="utf-8")
    assert "<h1>Feedback for Zoë Ångström</h1>" in html
    for path in folder.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "HIDDEN-SECRET-CODE" not in text and "Traceback" not in text


def test_tampered_cells_are_named(graded):
    text = feedback(graded[0], "tampered")
    assert "given cell 5 of the lesson was deleted (restored)" in text
    assert "check cell 6 was changed (the original was run)" in text


def test_rerun_resumes_and_force_regrades(graded):
    root, args, _, _ = graded
    first = (root / "out" / "gradebook.csv").read_text(encoding="utf-8")
    results = sorted((root / "out" / "results").glob("*.json"))
    graded_right = [p for p in results if json.loads(p.read_text())["student"] == "right"]
    graded_right[0].unlink()  # as if the run had stopped before this notebook finished
    again = grader(*args, "--out", "out", *LIMITS, cwd=root)
    assert again.returncode == 0, again.stderr
    assert "(23 kept from an earlier run or not runnable)" in again.stdout
    assert (root / "out" / "gradebook.csv").read_text(encoding="utf-8") == first


def test_shards_merged_equal_one_unsharded_run(tmp_path):
    course = tmp_path / "course"
    for student in ("ana", "ben", "chloé", "dev", "eli", "fay"):
        put(course, f"{student}/{LESSON}.ipynb", answer_nb() if student < "d" else blank_nb())
    put(course, f"gus/{LESSON}.ipynb", b"")
    put(tmp_path, f"loose/hal_{LESSON}.ipynb", answer_nb())
    args = ["grade", "course", "loose", "--answers", str(ANSWERS), *LIMITS]
    shards = [[*args, "--out", f"shard{index}", "--shard", f"{index}/2"] for index in range(2)]
    merge = ["gradebook", "merge", "shard0", "shard1", "--out", "merged"]
    run = grader(*args, "--out", "whole", "::", *shards[0], "::", *shards[1], "::", *merge, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    sizes = [len(rows_of(tmp_path / f"shard{index}")) for index in range(2)]
    assert all(sizes) and sum(sizes) == len(rows_of(tmp_path / "whole")) == 8
    whole = (tmp_path / "whole" / "gradebook.csv").read_text(encoding="utf-8")
    assert (tmp_path / "merged" / "gradebook.csv").read_text(encoding="utf-8") == whole
    assert sorted(p.name for p in (tmp_path / "merged" / "feedback").iterdir()) == sorted(
        p.name for p in (tmp_path / "whole" / "feedback").iterdir()
    )


KILLS_GRADER = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nanswer = 42"


def test_a_notebook_that_kills_the_grader_is_marked_crashed_on_the_third_run(tmp_path):
    """Each run loses only what was running; the journal blames the notebook after two deaths."""
    put(tmp_path / "course", f"killer/{LESSON}.ipynb", with_exercise(answer_nb(), 5, KILLS_GRADER))
    args = ["grade", "course", "--answers", str(ANSWERS), "--out", "out", "--jobs", "1", *LIMITS]
    for _ in range(2):
        assert grader(*args, cwd=tmp_path).returncode == -9  # SIGKILL, from the notebook
    put(tmp_path / "course", f"right/{LESSON}.ipynb", answer_nb())
    third = grader(*args, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    rows = {r["student"]: r for r in rows_of(tmp_path / "out")}
    assert rows["killer"]["status"] == "crashed"
    assert "killed twice" in rows["killer"]["error"]
    assert (rows["right"]["status"], rows["right"]["score"]) == ("graded", "2")  # no hidden checks here
