"""What the grading tests share: the fixture course, submissions built from it, and a grader run.

The fixture lesson `90-fixture` (tests/fixtures/grading) has two exercises: cell 2 defines `Scale`
(90.1, with a hidden check worth 2) and cell 5 sets `answer` (90.2). `run_grader.py` is `buflesson`
with the fixture's checks registered in the judge.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from buflesson.release import handout

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
ANSWERS = FIXTURES / "answers"
HIDDEN = FIXTURES / "hidden_checks.py"
LESSON = "90-fixture"
SCALE_CELL, ANSWER_CELL = 2, 5
COLUMNS = ("90.1", "90.1+factor_follows_double", "90.2")

WRONG_SCALE = """
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.factor = torch.tensor(2.0)  # a plain attribute: not saved, not moved

    def forward(self, x):
        return x * self.factor
"""
RIGHT_SCALE = """
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("factor", torch.tensor(2.0))

    def forward(self, x):
        return x * self.factor
"""


def answer_nb() -> nbformat.NotebookNode:
    return nbformat.read(ANSWERS / f"{LESSON}.ipynb", as_version=4)


def blank_nb() -> nbformat.NotebookNode:
    return handout(answer_nb(), LESSON)


def notebook(
    scale: str | None = None, answer: str | None = None, extra: list[str] = ()
) -> nbformat.NotebookNode:
    """The handout with the exercise cells replaced where given, and extra cells appended."""
    nb = blank_nb()
    if scale is not None:
        nb.cells[SCALE_CELL].source = scale
    if answer is not None:
        nb.cells[ANSWER_CELL].source = answer
    for source in extra:
        nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


def put(
    root: Path, rel: str, content: nbformat.NotebookNode | str | bytes, mtime: float | None = None
) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, nbformat.NotebookNode):
        content = nbformat.writes(content)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def grader_command(*args: str) -> list[str]:
    return [sys.executable, str(FIXTURES / "run_grader.py"), *args]


def grader_env(tmp: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if tmp is not None:  # the run's scratch folders go here (so a test can look at them)
        tmp.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmp)
    return env


def grader(
    *args: str, cwd: Path, tmp: Path | None = None, timeout: float = 400
) -> subprocess.CompletedProcess:
    """Run `buflesson` (with the fixture's checks) to the end."""
    return subprocess.run(
        grader_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=grader_env(tmp)
    )


def rows_of(out: Path) -> list[dict[str, str]]:
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def row_of(out: Path, student: str) -> dict[str, str]:
    (row,) = [r for r in rows_of(out) if r["student"] == student]
    return row


def points(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[c] for c in COLUMNS)


def feedback(out: Path, student: str) -> str:
    return (out / "feedback" / f"{student.replace(' ', '_')}.md").read_text(encoding="utf-8")
