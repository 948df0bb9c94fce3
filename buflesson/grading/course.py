"""The grader's own copy of each lesson, and the plan that runs one submission against it.

The reference is the released student notebook, rebuilt from the answer notebook, never read
from a submission. A submission's code cells are matched to it by cell id (then by identical
source): exercise cells run as the student wrote them, protected cells (given code, checks) run
as the reference has them, deleted ones are put back, and every change is reported.

A lesson translated by `buflesson notebooks` (notebooks/zh/answers/NN-*.ipynb next to
notebooks/answers/) has a reference of its own, with the same code, ids and exercises and its
comments and printed strings in that language: a submission is planned against the reference in
its language (`translation.notebook_language`), so a Chinese copy's given cells are not "changed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from buflesson.authoring import ROLE_CHECK, ROLE_EXERCISE
from buflesson.i18n import LANGUAGES
from buflesson.release import PROTECTED_ROLES, handout, normalized
from buflesson.translation import notebook_language

STUDENT, GIVEN, CHECK = "student", "given", "check"


@dataclass(frozen=True)
class RefCell:
    index: int
    id: str
    role: str
    source: str
    exercises: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One cell to run: `kind` student|given|check, and its position in the submission (or None)."""

    kind: str
    source: str
    label: str
    exercises: tuple[str, ...] = ()


@dataclass
class Lesson:
    name: str
    cells: list[RefCell]
    exercises: list[str]  # in the order the check cells name them
    answer_code: list[str] = field(default_factory=list)  # the answer notebook's code cells
    translations: dict[str, Lesson] = field(default_factory=dict)  # language -> its reference

    def in_language(self, code: str) -> Lesson:
        """The reference a notebook written in `code` is planned against (this one if untranslated)."""
        return self.translations.get(code, self)

    @property
    def imports(self) -> list[str]:
        """Top-level modules the lesson's given cells import (the grader imports them once, up front)."""
        import ast

        names: list[str] = []
        for cell in self.cells:
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.append(node.module)
        return list(dict.fromkeys(names))


@dataclass
class Plan:
    steps: list[Step]
    tampered: list[str] = field(default_factory=list)


def load_lesson(path: Path) -> Lesson:
    """The reference of one answer notebook."""
    answer = nbformat.read(path, as_version=4)
    answer_code = [cell.source for cell in answer.cells if cell.cell_type == "code"]
    nb = handout(answer, path.stem)
    cells, exercises = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        info = cell.metadata["buflesson"]
        ids = tuple(info.get("exercises", ()))
        cells.append(RefCell(index, cell.id, info["role"], cell.source, ids))
        exercises += [i for i in ids if i not in exercises]
    return Lesson(path.stem, cells, exercises, answer_code)


def translated_answers(answers_dir: Path) -> dict[str, Path]:
    """The folders of the course's translated answer notebooks: language -> `notebooks/LANG/answers`
    for `answers_dir` = `notebooks/answers`, where one exists."""
    root = Path(answers_dir).parent
    found = {code: root / code / "answers" for code in LANGUAGES if code != "en"}
    return {code: folder for code, folder in found.items() if folder.is_dir()}


def load_course(answers_dir: Path) -> dict[str, Lesson]:
    """Every lesson of a course, by name (the answer notebook's file stem), with its translations."""
    paths = sorted(Path(answers_dir).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no answer notebooks (*.ipynb) in {answers_dir}")
    lessons = {path.stem: load_lesson(path) for path in paths}
    for code, folder in translated_answers(answers_dir).items():
        for name, lesson in lessons.items():
            if (folder / f"{name}.ipynb").is_file():
                lesson.translations[code] = load_lesson(folder / f"{name}.ipynb")
    return lessons


def _label(cell: RefCell | None, position: int | None) -> str:
    if position is None:
        return f"restored cell {cell.index + 1}"
    return f"cell {position + 1}"


def plan(lesson: Lesson, submission: nbformat.NotebookNode) -> Plan:
    """The cells to run for `submission`, and which protected cells it changed or deleted; against
    the reference in the submission's language."""
    lesson = lesson.in_language(notebook_language(submission))
    by_id = {cell.id: cell for cell in lesson.cells}
    subs = list(submission.cells)
    matched: dict[int, RefCell] = {}  # submission position -> reference cell
    taken: set[int] = set()
    # A protected cell is matched by its source first: one pasted back, or a notebook whose cell ids
    # another tool rewrote (an id may then name a different cell of the lesson), keeps its source.
    for ref in lesson.cells:
        if ref.role not in PROTECTED_ROLES:
            continue
        for pos, cell in enumerate(subs):
            if (
                pos not in matched
                and cell.cell_type == "code"
                and normalized(cell.source) == normalized(ref.source)
            ):
                matched[pos] = ref
                taken.add(ref.index)
                break
    for pos, cell in enumerate(subs):
        if pos in matched:
            continue
        ref = by_id.get(cell.get("id"))
        if ref is not None and ref.index not in taken:
            matched[pos] = ref
            taken.add(ref.index)

    result = Plan([])
    emitted: set[int] = set()

    def restore_missing(before: int) -> None:
        for ref in lesson.cells:
            if ref.index < before and ref.index not in taken and ref.index not in emitted:
                if ref.role in PROTECTED_ROLES:
                    result.tampered.append(
                        f"{ref.role} cell {ref.index + 1} of the lesson was deleted (restored)"
                    )
                    result.steps.append(_ref_step(ref, None))
                emitted.add(ref.index)

    for pos, cell in enumerate(subs):
        ref = matched.get(pos)
        if ref is None:
            if cell.cell_type == "code":
                result.steps.append(Step(STUDENT, cell.source, _label(None, pos)))
            continue
        restore_missing(ref.index)
        emitted.add(ref.index)
        if ref.role == ROLE_EXERCISE:
            source = cell.source if cell.cell_type == "code" else ""
            result.steps.append(Step(STUDENT, source, _label(ref, pos)))
            continue
        if cell.cell_type != "code" or normalized(cell.source) != normalized(ref.source):
            result.tampered.append(f"{ref.role} cell {pos + 1} was changed (the original was run)")
        result.steps.append(_ref_step(ref, pos))
    restore_missing(len(lesson.cells) and lesson.cells[-1].index + 1)
    return result


def _ref_step(ref: RefCell, position: int | None) -> Step:
    kind = CHECK if ref.role == ROLE_CHECK else GIVEN
    return Step(kind, ref.source, _label(ref, position), ref.exercises)
