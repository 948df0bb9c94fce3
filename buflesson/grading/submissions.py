"""Finding submissions: which files, whose, of which lesson, readable or not, newest of duplicates.

`buflesson grade PATH...` takes notebook files and folders. A folder's first-level subfolders are
students (`course/alice/01-plain-attributes.ipynb` is alice's); notebooks directly in a folder
that is given, or files given by name, belong to the id in their metadata
(`metadata.buflesson.student`), else to the id before the lesson name in the file name
(`alice_01-plain-attributes.ipynb`), else to the folder they are in. The lesson is the one named
in the metadata (`metadata.buflesson.lesson`, set by the release) or in the file name.
Nothing read here is trusted for grading: it only says which reference to grade against.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

INVALID, DUPLICATE = "invalid", "duplicate"
MAX_BYTES = 50 * 1024 * 1024
_SEPARATORS = " _-.()[]"


@dataclass
class Submission:
    path: Path
    file: str  # the path as shown in the gradebook
    student: str
    lesson: str
    sha256: str
    mtime: float
    problem: str = ""  # why it cannot be graded; empty when it can
    folder: Path | None = None  # the student's own folder (copied for the run), if it has one
    status: str = ""  # INVALID or DUPLICATE when it is not graded

    @property
    def ok(self) -> bool:
        return not self.status


class InvalidNotebook(ValueError):
    """A file that is not a notebook the grader can run; the message says why, for the gradebook."""


def read_notebook(data: bytes) -> nbformat.NotebookNode:
    """A submitted file as an nbformat 4 notebook, or `InvalidNotebook` with a clear reason."""
    if not data.strip():
        raise InvalidNotebook("the file is empty")
    if len(data) > MAX_BYTES:
        raise InvalidNotebook(f"the file is larger than {MAX_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidNotebook("not a notebook: the file is not UTF-8 text") from None
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise InvalidNotebook(f"not valid JSON ({error}); was the download cut short?") from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise InvalidNotebook("not a notebook: the JSON has no nbformat version")
    version = raw.get("nbformat")
    if version not in (3, 4):
        raise InvalidNotebook(f"nbformat {version} is not supported (4, or 3 converted)")
    try:
        nb = nbformat.reads(text, as_version=4)
        cells = list(nb.cells)
    except Exception as error:
        raise InvalidNotebook(f"not a readable notebook ({type(error).__name__}: {error})") from None
    for cell in cells:
        if not isinstance(cell.get("source", ""), str) or "cell_type" not in cell:
            raise InvalidNotebook("not a readable notebook: a cell has no type or source")
    return nb


def lesson_in_name(stem: str, lessons: list[str]) -> tuple[str, str] | None:
    """The longest lesson name in a file stem, and what is left of the stem before it."""
    for lesson in sorted(lessons, key=len, reverse=True):
        at = stem.find(lesson)
        if at >= 0:
            return lesson, stem[:at].strip(_SEPARATORS)
    return None


def safe_id(text: str) -> str:
    """A student id usable as a file name (letters of any script, digits, `.-_@`)."""
    cleaned = re.sub(r"[^\w.@-]+", "_", text.strip(), flags=re.UNICODE).strip("._")
    return cleaned or "unknown"


def _meta(nb: nbformat.NotebookNode | None) -> dict:
    info = nb.metadata.get("buflesson") if nb is not None else None
    return info if isinstance(info, dict) else {}


def describe(path: Path, shown: str, owner_folder: str | None, lessons: list[str]) -> Submission:
    """One file as a submission: read, identify, and say why it is invalid if it is."""
    stat = path.stat()
    data = path.read_bytes() if stat.st_size <= MAX_BYTES else b"x" * (MAX_BYTES + 1)
    sub = Submission(path, shown, "", "", hashlib.sha256(data).hexdigest(), stat.st_mtime)
    nb = None
    try:
        nb = read_notebook(data)
    except InvalidNotebook as error:
        sub.problem = str(error)
    meta = _meta(nb)
    in_name = lesson_in_name(path.stem, lessons)
    lesson = meta.get("lesson") if meta.get("lesson") in lessons else None
    sub.lesson = lesson or (in_name[0] if in_name else "")
    from_name = in_name[1] if in_name else ""
    if owner_folder is not None:  # course/ID/notebook.ipynb
        sub.student, sub.folder = owner_folder, path.parent
    elif meta.get("student") or from_name:
        sub.student = str(meta.get("student") or from_name)
    else:
        sub.student, sub.folder = path.resolve().parent.name, path.parent
    if not sub.problem and not sub.lesson:
        sub.problem = f"not a notebook of this course: no lesson name ({', '.join(lessons)}) in its name"
    if not sub.problem and not sub.student:
        sub.problem = "no student id: name the file ID_lesson.ipynb or put it in a folder named ID"
    sub.status = INVALID if sub.problem else ""
    return sub


def find(paths: list[Path], lessons: list[str]) -> list[Submission]:
    """Every submission under `paths`, duplicates marked (the newest of a student's lesson wins)."""
    found: list[Submission] = []
    for given in map(Path, paths):
        if given.is_dir():
            for path in sorted(given.rglob("*.ipynb")):
                rel = path.relative_to(given)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                owner = rel.parts[0] if len(rel.parts) > 1 else None
                shown = (Path(given.resolve().name) / rel).as_posix()
                found.append(describe(path, shown, owner, lessons))
        elif given.is_file():
            found.append(describe(given, given.as_posix(), None, lessons))
    latest: dict[tuple[str, str], Submission] = {}
    for sub in found:
        if not sub.ok:
            continue
        key = (sub.student, sub.lesson)
        other = latest.get(key)
        if other is None or (sub.mtime, sub.file) > (other.mtime, other.file):
            latest[key] = sub
    for sub in found:
        winner = latest.get((sub.student, sub.lesson))
        if sub.ok and winner is not sub:
            sub.status = DUPLICATE
            sub.problem = f"an older copy: {winner.file} (newer) was graded instead"
    return found


def shard_of(sub: Submission, count: int) -> int:
    """Which of `count` shards grades `sub`: by student id, so one student's files stay together."""
    key = sub.student or sub.file
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % count
