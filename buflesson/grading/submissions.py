"""Finding submissions: which files, whose, of which lesson, readable or not, newest of duplicates.

`buflesson grade PATH...` takes notebook files and folders. Whose a notebook is comes from outside
the file first, since everything in it is the student's to write:

1. a student folder: a given folder's first-level subfolders are students (`course/alice/...` is
   alice's, however deep it lies and whatever its name or metadata say);
2. otherwise (a notebook directly in a given folder, or a file given by name) the id before the
   lesson name in the file name (`alice_01-plain-attributes.ipynb`),
3. else the id in its metadata (`metadata.buflesson.student`),
4. else the name of the folder it is in.

Folder names rank above file names, which rank above metadata. A notebook whose id comes from a
lower rank than another notebook's with the same id is not that student's: it is `invalid`
("claims to be ...'s work"), so it can never displace or add to their work. Ids are compared as
written (NFC, whitespace runs made one space); for claims also without case, compatibility forms
and punctuation (`ALICE`, `../alice` and `ａlice` all claim alice's).

Links are not followed: a notebook or a student folder that is a symbolic link is `invalid`, as is
anything that is not a regular file (a pipe, a device). The lesson is the one named in the metadata
(`metadata.buflesson.lesson`, set by the release) or in the file name. Nothing read here is trusted
for grading: it only says which reference to grade against.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat

from buflesson.grading.gradebook import CLAIM
from buflesson.grading.text import fs_text, printable
from buflesson.translation import notebook_language

INVALID, DUPLICATE = "invalid", "duplicate"
MAX_BYTES = 50 * 1024 * 1024
MAX_ID = 200  # characters; a longer "id" is no id
_SEPARATORS = " _-.()[]"
# Where an id came from, and how far it is trusted (higher wins).
STUDENT_FOLDER, FOLDER, FILE_NAME, METADATA = "student folder", "folder", "file name", "metadata"
RANK = {STUDENT_FOLDER: 2, FOLDER: 2, FILE_NAME: 1, METADATA: 0}


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
    source: str = ""  # where the student id came from: STUDENT_FOLDER, FOLDER, FILE_NAME, METADATA
    home: str = ""  # the student folder as shown (`course/alice`), for notebooks in one
    language: str = "en"  # what the notebook is written in (`translation.notebook_language`)

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
    except RecursionError:  # JSON nested deeper than Python's parser goes: no notebook is
        raise InvalidNotebook("not a notebook: its JSON is nested too deep") from None
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
    """A student id usable as a file name (letters of any script, digits, `.-_@`); lossy: two ids
    can give the same text (`feedback.feedback_name` is the one-to-one name of a student's files)."""
    cleaned = re.sub(r"[^\w.@-]+", "_", printable(text).strip(), flags=re.UNICODE).strip("._")
    return cleaned or "unknown"


def student_id(raw: object) -> str:
    """`raw` as a student id: text (or a whole number) in Unicode NFC, undecodable bytes of a file
    name as `\\xff`, whitespace runs made one space. "" when it is none: empty, not text, or longer
    than MAX_ID characters."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return ""
    text = " ".join(unicodedata.normalize("NFC", fs_text(str(raw))).split())
    return text if len(text) <= MAX_ID else ""


def claim_key(student: str) -> str:
    """What ids naming the same person share: case, compatibility forms (`ａ`), and all but letters
    and digits ignored, so `Alice`, `alice `, `a.lice` and `../alice` have alice's key."""
    folded = unicodedata.normalize("NFKC", student).casefold()
    return "".join(char for char in folded if char.isalnum()) or folded


def _meta(nb: nbformat.NotebookNode | None) -> dict:
    info = nb.metadata.get("buflesson") if nb is not None else None
    return info if isinstance(info, dict) else {}


def read_submitted(path: Path) -> tuple[bytes, float]:
    """The first MAX_BYTES + 1 bytes of a submitted file and its mtime. A link, a pipe, a device or
    a file that cannot be opened is `InvalidNotebook`, saying which; a link is never followed."""
    try:
        info = os.lstat(path)
    except OSError as error:
        raise InvalidNotebook(f"cannot read the file: {error.strerror or error}") from None
    if stat.S_ISLNK(info.st_mode):
        try:
            target = printable(os.readlink(path), 80)
        except OSError:
            target = "?"
        raise InvalidNotebook(
            f"a symbolic link (to {target}), not a file: links are not graded; hand in the notebook itself"
        )
    if stat.S_ISDIR(info.st_mode):
        raise InvalidNotebook("a folder the grader cannot read: nothing in it was graded")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidNotebook("not a regular file (a pipe, socket or device)")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        handle = os.open(path, flags)  # O_NOFOLLOW: not a link swapped in since lstat
    except OSError as error:
        raise InvalidNotebook(f"cannot read the file: {error.strerror or error}") from None
    with open(handle, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise InvalidNotebook("not a regular file (a pipe, socket or device)")
        return file.read(MAX_BYTES + 1), info.st_mtime


def describe(
    path: Path,
    shown: str,
    owner_folder: str | None,
    lessons: list[str],
    *,
    given: bool = False,
    home: str = "",
) -> Submission:
    """One file as a submission: read, identify, and say why it is invalid if it is. `owner_folder`
    is the student folder it is in, if any; `given`: the file was named on the command line."""
    sub = Submission(path, shown, "", "", hashlib.sha256(b"").hexdigest(), 0.0, home=home)
    nb = None
    try:
        data, sub.mtime = read_submitted(path)
        sub.sha256 = hashlib.sha256(data).hexdigest()
        nb = read_notebook(data)
    except InvalidNotebook as error:
        sub.problem = str(error)
    meta = _meta(nb)
    sub.language = notebook_language(nb) if nb is not None else "en"
    in_name = lesson_in_name(fs_text(path.stem), lessons)
    lesson = meta.get("lesson") if meta.get("lesson") in lessons else None
    sub.lesson = lesson or (in_name[0] if in_name else "")
    if owner_folder is not None:  # course/ID/.../notebook.ipynb
        sub.student, sub.source, sub.folder = student_id(owner_folder), STUDENT_FOLDER, path.parent
        if not sub.student:
            sub.student = printable(owner_folder, 40)
            sub.problem = sub.problem or f"the folder name is no student id (over {MAX_ID} characters)"
    else:
        parent = Path(os.path.realpath(path.parent)).name
        for raw, source in ((in_name[1] if in_name else "", FILE_NAME), (meta.get("student"), METADATA)):
            if student_id(raw):
                sub.student, sub.source = student_id(raw), source
                break
        else:
            sub.student, sub.source = student_id(parent), FOLDER
            sub.folder = path.parent if given else None  # a given folder holds everyone's work
    if not sub.problem and not sub.lesson:
        sub.problem = f"not a notebook of this course: no lesson name ({', '.join(lessons)}) in its name"
    if not sub.problem and not sub.student:
        sub.problem = "no student id: name the file ID_lesson.ipynb or put it in a folder named ID"
    sub.status = INVALID if sub.problem else ""
    return sub


def _entries(root: Path) -> list[tuple[Path, tuple[str, ...], str | None]]:
    """(path, parts below `root`, student folder or None) of each notebook under `root`: each
    non-folder named *.ipynb, each first-level link to a folder (a linked student folder) and each
    folder that cannot be read. Hidden names are skipped; links are listed, never followed."""
    found: list[tuple[Path, tuple[str, ...], str | None]] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        folder, parts = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            if parts:  # an unreadable folder is listed: its student would vanish unseen otherwise
                found.append((folder, parts, parts[0]))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            here = (*parts, entry.name)
            owner = here[0] if len(here) > 1 else None
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                linked_folder = entry.is_symlink() and not parts and os.path.isdir(entry.path)
            except OSError:
                is_dir = linked_folder = False
            if is_dir:
                stack.append((Path(entry.path), here))
            elif linked_folder:
                found.append((Path(entry.path), here, entry.name))
            elif entry.name.endswith(".ipynb"):
                found.append((Path(entry.path), here, owner))
    return sorted(found, key=lambda item: item[1])


def find(paths: list[Path], lessons: list[str]) -> list[Submission]:
    """Every submission under `paths`, claims on other students' ids refused and duplicates marked
    (the newest of a student's lesson wins). A file reached twice is listed once."""
    found: list[Submission] = []
    seen: set[tuple[str, str]] = set()
    labels: set[str] = set()
    for given in map(Path, paths):
        if given.is_dir():  # a link the instructor names is followed
            label = fs_text(given.resolve().name) or "/"
            if label in labels:  # two given folders of the same name: show where each is
                label = fs_text(given.as_posix())
            labels.add(label)
            for path, parts, owner in _entries(given):
                if _first_time(path, seen):
                    shown = "/".join((label, *map(fs_text, parts)))
                    home = f"{label}/{fs_text(owner)}" if owner is not None else ""
                    found.append(describe(path, shown, owner, lessons, home=home))
        elif (given.exists() or given.is_symlink()) and _first_time(given, seen):
            found.append(describe(given, fs_text(given.as_posix()), None, lessons, given=True))
    _refuse_claims(found)
    _mark_duplicates(found)
    return found


def _first_time(path: Path, seen: set[tuple[str, str]]) -> bool:
    where = (os.path.realpath(path.parent), path.name)
    new = where not in seen
    seen.add(where)
    return new


def _refuse_claims(found: list[Submission]) -> None:
    """Make invalid each notebook whose id a better-ranked source gives another notebook."""
    best: dict[str, Submission] = {}
    for sub in found:
        if sub.source and sub.student:
            key, other = claim_key(sub.student), best.get(claim_key(sub.student))
            if other is None or RANK[sub.source] > RANK[other.source]:
                best[key] = sub
    for sub in found:
        owner = best.get(claim_key(sub.student)) if sub.source and sub.student else None
        if owner is None or RANK[sub.source] >= RANK[owner.source] or not sub.ok:
            continue
        whose = "metadata.buflesson.student" if sub.source == METADATA else f"its {sub.source}"
        where = f"the student folder {owner.home}" if owner.home else f"{owner.file} (by its {owner.source})"
        sub.status = INVALID
        sub.problem = (
            f"{CLAIM}{sub.student}'s work ({whose}), but {owner.student} has {where}, "
            "which outranks it: not graded"
        )


def _mark_duplicates(found: list[Submission]) -> None:
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


def shard_of(sub: Submission, count: int) -> int:
    """Which of `count` shards grades `sub`: by student id alone, so one student's files stay
    together (files without an id too: their feedback file is one, as in an unsharded run)."""
    return int(hashlib.sha256(sub.student.encode("utf-8", "surrogatepass")).hexdigest(), 16) % count
