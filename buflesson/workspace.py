"""The student's own working copy of the lessons (`my-lessons/`), which `buflesson lab` opens.

The Chinese course (`buflesson lab --lang zh`) has a working copy of its own, `my-lessons-zh/`, made
the same way from the Chinese answer notebooks (`notebooks/zh/answers/`).

It holds the handout as `buflesson release` makes it: no outputs, no answers, given cells marked.
A lesson is copied in once and never overwritten afterwards, so a student's work survives every
update of the course; lessons added to the course later are copied in on the next start, and
`reset` replaces one lesson with a fresh copy, keeping the old one in `backups/`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import nbformat.sign

WORKSPACE = "my-lessons"  # at the root of the checkout, git-ignored
WORKSPACES = {"en": WORKSPACE, "zh": f"{WORKSPACE}-zh"}  # one working copy per language
BACKUPS = "backups"
LESSONS = "[0-9][0-9]-*.ipynb"


class WorkspaceError(ValueError):
    """A request the working copy cannot satisfy (an unknown lesson, no course found)."""


@dataclass
class SyncReport:
    """What `sync` did: lessons copied in now, kept as they were, and changed in the course since."""

    folder: Path
    added: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    updated_in_course: list[Path] = field(default_factory=list)

    @property
    def lessons(self) -> list[Path]:
        """Every lesson of the working copy, in lesson order."""
        return sorted(self.added + self.kept)


def _answers_folder(lang: str) -> Path:
    """Where a language's answer notebooks lie under a checkout: notebooks/answers, notebooks/zh/answers."""
    return Path("notebooks", "answers") if lang == "en" else Path("notebooks", lang, "answers")


def course_answers(given: str | os.PathLike | None = None, lang: str = "en") -> Path:
    """The course's answer notebooks in `lang`: `given`, else ./notebooks/answers (for Chinese
    ./notebooks/zh/answers), else those of this checkout."""
    if given:
        return Path(given)
    here = _answers_folder(lang)
    checkout = Path(__file__).resolve().parent.parent / here
    return here if here.is_dir() or not checkout.is_dir() else checkout


def default_folder(answers_dir: Path, lang: str = "en") -> Path:
    """Where the working copy goes: `my-lessons/` (Chinese: `my-lessons-zh/`) at the root of the
    checkout that holds the course."""
    answers_dir = Path(answers_dir).resolve()
    name = WORKSPACES[lang]
    notebooks = answers_dir.parent if lang == "en" else answers_dir.parent.parent
    if answers_dir.name == "answers" and notebooks.name == "notebooks":
        return notebooks.parent / name
    return Path.cwd().resolve() / name


def lessons(root: Path) -> list[Path]:
    """The lesson notebooks of `root`, in lesson order (`01-...`, `02-...`)."""
    return sorted(Path(root).glob(LESSONS))


def course_digest(nb: nbformat.NotebookNode) -> str:
    """A fingerprint of a handout's cells (type and source), to tell when the course changed a lesson."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        digest.update(f"{cell.cell_type}\0{cell.source}\0".encode())
    return digest.hexdigest()[:16]


def handout_notebook(answer_path: Path) -> nbformat.NotebookNode:
    """The student's copy of one lesson: `release.handout`, refused if any answer line survives."""
    from buflesson.authoring import answer_text
    from buflesson.release import LeakError, handout, leaked_lines

    answer = nbformat.read(answer_path, as_version=4)
    nb = handout(answer, answer_path.stem)
    leaked = leaked_lines(answer_text(answer), nbformat.writes(nb))
    if leaked:
        raise LeakError(f"{answer_path.name}: answer lines would be copied: {leaked[:5]}")
    nb.metadata["buflesson"]["course_digest"] = course_digest(nb)
    return nb


def _write_new(nb: nbformat.NotebookNode, target: Path) -> bool:
    """Write `nb` to `target` only if nothing is there; False (and nothing written) otherwise.

    The notebook is signed, so JupyterLab trusts it, and written to a temporary file first: an
    interrupted start never leaves half a notebook, and an existing file is never replaced.
    """
    nbformat.sign.NotebookNotary().sign(nb)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        try:
            os.link(temporary, target)  # fails if target exists, on every OS
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            if target.exists():
                return False
            os.replace(temporary, target)
        return True
    finally:
        Path(temporary).unlink(missing_ok=True)


def _stored_digest(path: Path) -> str | None:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # a copy the student broke is theirs to keep; say nothing about it
        return None
    return nb.metadata.get("buflesson", {}).get("course_digest")


def sync(answers_dir: Path, folder: Path) -> SyncReport:
    """Copy every lesson of the course missing from `folder` into it; never touch one already there."""
    answers_dir, folder = Path(answers_dir), Path(folder)
    course = lessons(answers_dir)
    if not course:
        raise WorkspaceError(f"no lessons (NN-*.ipynb) in {answers_dir}")
    folder.mkdir(parents=True, exist_ok=True)
    report = SyncReport(folder)
    for answer_path in course:
        target = folder / answer_path.name
        if target.exists():
            report.kept.append(target)
            stored = _stored_digest(target)
            if stored and stored != course_digest(handout_notebook(answer_path)):
                report.updated_in_course.append(target)
        elif _write_new(handout_notebook(answer_path), target):
            report.added.append(target)
        else:
            report.kept.append(target)
    return report


def find_lesson(answers_dir: Path, which: str) -> Path:
    """The course's lesson named by `which`: its number (`5`, `05`) or its name (`05-batchnorm`)."""
    course = lessons(answers_dir)
    wanted = which.removesuffix(".ipynb")
    for path in course:
        number = path.name[:2]
        if wanted in (path.stem, number) or (wanted.isdigit() and int(wanted) == int(number)):
            return path
    names = ", ".join(path.stem for path in course)
    raise WorkspaceError(f"no lesson {which!r} in the course; the lessons are {names}")


def reset(answers_dir: Path, folder: Path, which: str) -> tuple[Path, Path | None]:
    """Replace one lesson of `folder` with a fresh copy from the course.

    The student's copy is moved to `backups/` first (named with the time), never deleted. Returns
    the fresh lesson and the backup (None when there was no copy yet).
    """
    answer_path = find_lesson(answers_dir, which)
    folder = Path(folder)
    target = folder / answer_path.name
    backup = None
    if target.exists():
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        backup = folder / BACKUPS / f"{answer_path.stem}.{stamp}.ipynb"
        backup.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, backup)
    folder.mkdir(parents=True, exist_ok=True)
    _write_new(handout_notebook(answer_path), target)
    return target, backup
