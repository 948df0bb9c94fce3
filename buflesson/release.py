"""The student handout of a course: `buflesson release OUT_DIR`.

Each answer notebook becomes its student notebook (`authoring.student_notebook`: answers replaced
by placeholders, every output cleared) and nothing else is written. Cells a student must not
change (given code and check cells) are marked read-only for JupyterLab and carry a checksum, so
anyone can tell an altered copy; the grader never trusts those marks and compares each submission
with its own copy of the lesson (`buflesson.grading.course`). Before anything is written, the
whole handout is scanned for every answer line, and the release is refused if one survives.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat

from buflesson import __version__
from buflesson.authoring import ROLE_CHECK, ROLE_EXERCISE, ROLE_GIVEN, answer_text, student_notebook

PROTECTED_ROLES = (ROLE_GIVEN, ROLE_CHECK)


class LeakError(RuntimeError):
    """A release would contain answer text."""


def normalized(source: str) -> str:
    """A cell's source without trailing spaces or blank lines at either end (what a checksum covers)."""
    return "\n".join(line.rstrip() for line in source.strip("\n").splitlines()).strip("\n")


def checksum(source: str) -> str:
    """A short, stable fingerprint of a cell's source."""
    return hashlib.sha256(normalized(source).encode()).hexdigest()[:16]


def handout(answer: nbformat.NotebookNode, lesson: str) -> nbformat.NotebookNode:
    """The released student notebook of one answer notebook: no answers, no outputs, cells marked."""
    nb = student_notebook(answer)  # keeps the answer notebook's cell ids (authoring.stable_ids)
    for cell in nb.cells:
        info = cell.metadata["buflesson"]
        if cell.cell_type != "code":
            continue
        if info["role"] in PROTECTED_ROLES:
            info["protected"] = True
            info["checksum"] = checksum(cell.source)
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        elif info["role"] == ROLE_EXERCISE:
            cell.metadata["deletable"] = False
    language = answer.metadata.get("buflesson", {}).get("language")
    nb.metadata["buflesson"] = {"lesson": lesson, "release": __version__}
    if language:  # a translated lesson (notebooks/zh/answers) says its language to the grader
        nb.metadata["buflesson"]["language"] = language
    return nb


def leaked_lines(answers: list[str], nb_text: str) -> list[str]:
    """The answer lines found on any line of a notebook file (sources, outputs, metadata)."""
    nb = json.loads(nb_text)
    seen: set[str] = set()

    def collect(value: object) -> None:
        if isinstance(value, str):
            seen.update(line.strip() for line in value.splitlines())
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(nb)
    # Sources are stored as lists of lines; join them too so a line split across items is found.
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        collect("".join(source) if isinstance(source, list) else source)
    return [line for line in answers if line in seen]


def release(answers_dir: Path, out_dir: Path) -> list[Path]:
    """Write the student notebook of every answer notebook in `answers_dir` to `out_dir`.

    Raises `LeakError` (and writes nothing) when any answer line would survive, and
    `FileNotFoundError` when `answers_dir` holds no notebook.
    """
    answers_dir, out_dir = Path(answers_dir), Path(out_dir)
    paths = sorted(answers_dir.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no answer notebooks (*.ipynb) in {answers_dir}")
    texts: dict[str, str] = {}
    for path in paths:
        answer = nbformat.read(path, as_version=4)
        text = nbformat.writes(handout(answer, path.stem))
        leaked = leaked_lines(answer_text(answer), text)
        if leaked:
            raise LeakError(f"{path.name}: answer lines would be released: {leaked[:5]}")
        texts[path.name] = text
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        target = out_dir / name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
