"""Student notebooks from answer notebooks: solution markers, cell roles, execution.

Answer notebooks (`notebooks/answers/`) are the single source. In their code cells

    ### BEGIN SOLUTION
    ...answer lines...
    ### END SOLUTION

become `# YOUR CODE HERE` and `raise NotImplementedError` (same indent), and a line
`name = value  # SOLUTION` becomes `name = ...  # YOUR CODE HERE`. Every cell gets
`metadata.buflesson.role`: `exercise` (it held an answer), `check` (it calls
`check(...)`) or `given` (everything else), so a grader can tell what a student
was allowed to change.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import sys
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
INLINE = "# SOLUTION"
PLACEHOLDER = "# YOUR CODE HERE"
ROLE_EXERCISE, ROLE_CHECK, ROLE_GIVEN = "exercise", "check", "given"

_HEADING_RE = re.compile(r"^### Exercise (?P<id>[^\s·]+)(?: · (?P<title>.*))?$", re.MULTILINE)
_INLINE_RE = re.compile(r"^(?P<lhs>\s*[\w.\[\]'\", ]+?\s*=\s*).*?#\s*SOLUTION\s*$")
_CHECK_RE = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")


class MarkerError(ValueError):
    """An answer cell whose solution markers do not pair up."""


def has_solution(source: str) -> bool:
    """True when a cell's source holds an answer region or an inline answer."""
    return any(line.strip() == BEGIN or _INLINE_RE.match(line) for line in source.splitlines())


def strip_answers(source: str) -> str:
    """Replace every answer in a code cell's source with a placeholder."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise MarkerError(f"line {number}: {BEGIN} inside another answer region")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}{PLACEHOLDER}", f"{indent}raise NotImplementedError"]
        elif stripped == END:
            if not inside:
                raise MarkerError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            match = _INLINE_RE.match(line)
            out.append(f"{match['lhs']}...  {PLACEHOLDER}" if match else line)
    if inside:
        raise MarkerError(f"{BEGIN} without {END}")
    return "\n".join(out)


def checked_exercises(source: str) -> list[str]:
    """Exercise ids that a cell passes to `check(...)`."""
    return _CHECK_RE.findall(source)


def cell_role(cell: nbformat.NotebookNode) -> str:
    """`exercise`, `check` or `given` for a cell of an answer notebook."""
    if cell.cell_type == "code" and has_solution(cell.source):
        return ROLE_EXERCISE
    if cell.cell_type == "code" and checked_exercises(cell.source):
        return ROLE_CHECK
    return ROLE_GIVEN


_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


def stable_ids(nb: nbformat.NotebookNode) -> bool:
    """Give every cell a unique id, keeping the ids cells already have; True when one changed.

    Ids are the keys the grader matches submissions by (and translations are kept under), so a cell
    keeps its id when other cells are inserted or moved. A cell without a valid id, or with an id an
    earlier cell already has (a copied cell), gets one made from its source, the same on every run.
    """
    seen: set[str] = set()
    changed = False
    for cell in nb.cells:
        current = cell.get("id")
        if isinstance(current, str) and _ID_RE.match(current) and current not in seen:
            seen.add(current)
            continue
        digest = hashlib.sha256(f"{cell.cell_type}\0{cell.source}".encode()).hexdigest()
        new, n = f"c-{digest[:8]}", 1
        while new in seen:
            new, n = f"c-{digest[:8]}-{n}", n + 1
        cell.id = new
        seen.add(new)
        changed = True
    return changed


def student_notebook(answer: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of an answer notebook: answers stripped, roles marked, outputs cleared."""
    nb = copy.deepcopy(answer)
    stable_ids(nb)
    for cell in nb.cells:
        role = cell_role(cell)
        info: dict[str, object] = {"role": role}
        if role == ROLE_CHECK:
            info["exercises"] = checked_exercises(cell.source)
        cell.metadata["buflesson"] = info
        if cell.cell_type == "code":
            if role == ROLE_EXERCISE:
                cell.source = strip_answers(cell.source)
            cell.outputs = []
            cell.execution_count = None
    return nb


def sync_headings(nb: nbformat.NotebookNode, titles: dict[str, str]) -> bool:
    """Write each exercise's registered title into its `### Exercise N.K · Title` heading.

    The title registered with `@exercise` is the one source: a heading written as `### Exercise N.K`
    alone gets its title here. True when a heading changed; `MarkerError` for a heading whose exercise
    has no registered check.
    """
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue

        def title_of(match: re.Match) -> str:
            exercise_id = match["id"]
            if exercise_id not in titles:
                raise MarkerError(
                    f"heading '### Exercise {exercise_id}' has no check: register one with "
                    f"@exercise({exercise_id!r}, title, passed=...) in buflesson/exercises/"
                )
            return f"### Exercise {exercise_id} · {titles[exercise_id]}"

        source = _HEADING_RE.sub(title_of, cell.source)
        if source != cell.source:
            cell.source, changed = source, True
    return changed


def answer_text(answer: nbformat.NotebookNode) -> list[str]:
    """Every answer line of a notebook (stripped, non-empty): none may survive in a student version."""
    lines: list[str] = []
    for cell in answer.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped == BEGIN:
                inside = True
            elif stripped == END:
                inside = False
            elif inside and stripped and not stripped.startswith("#"):
                lines.append(stripped)
            elif not inside and _INLINE_RE.match(line):
                lines.append(stripped)
    return lines


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell of `nb` in a fresh kernel (working directory `cwd`), storing outputs.

    Errors are kept as outputs, as in the lessons that show PyTorch's own error, in the short form
    of the project's kernel (`buflesson.kernel`, loaded here whatever the kernelspec says). No
    timestamps are stored, so running an unchanged notebook again leaves its file unchanged.
    """
    from nbclient import NotebookClient

    from buflesson.kernel import EXTENSION_ARGUMENT

    os.environ.setdefault("PYTHONHASHSEED", "0")
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(cwd)}},
        allow_errors=True,
        record_timing=False,
        extra_arguments=[EXTENSION_ARGUMENT],
    )
    client.execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
    return nb


def coalesce_streams(outputs: list) -> list:
    """Join consecutive stdout (or stderr) chunks into one output.

    How a kernel splits a cell's printing into messages depends on timing; joined, the stored
    outputs are the same on every run.
    """
    joined: list = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (
            output.get("output_type") == "stream"
            and previous is not None
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            previous["text"] = previous["text"] + output["text"]
        else:
            joined.append(output)
    return joined


# An absolute path up to an installed package: /home/me/.venv/lib/python3.11/site-packages/torch/...
_SITE_PACKAGES_RE = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s\"'<>|\x1b]*?[/\\](site|dist)-packages(?=[/\\])")


def machine_paths() -> list[tuple[str, str]]:
    """(path, what to show instead) for the folders of this machine a traceback may name, longest first.

    Installed packages become `site-packages/...`, the standard library `python3.X/...`, this checkout
    a path relative to it, and the home folder `~`.
    """
    import sysconfig

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    checkout = Path(__file__).resolve().parent.parent
    pairs = [(sysconfig.get_paths()[key], "site-packages") for key in ("purelib", "platlib")]
    pairs += [(sysconfig.get_paths()["stdlib"], version), (str(checkout), "."), (str(Path.home()), "~")]
    return sorted(
        {(path.rstrip("/\\"), short) for path, short in pairs if len(path) > 1}, key=lambda p: -len(p[0])
    )


def strip_machine_paths(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Replace this machine's folders in stored tracebacks and stderr with short, portable ones.

    A notebook's outputs are read online and compared in CI; `/home/me/.venv/lib/python3.11/...`
    in them says nothing to a reader and differs on every machine.
    """
    pairs = [(re.compile(re.escape(path) + r"(?=[/\\])"), short) for path, short in machine_paths()]

    def clean(text: str) -> str:
        for path, short in pairs:
            text = path.sub(short, text)
        return _SITE_PACKAGES_RE.sub(lambda match: f"{match[1]}-packages", text)

    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                output["traceback"] = [clean(line) for line in output.get("traceback", [])]
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = clean(output["text"])
    return nb


def exercise_titles() -> dict[str, str]:
    """The registered title of every exercise, by id."""
    from buflesson.checks import exercises

    return {exercise_id: ex.title for exercise_id, ex in exercises().items()}


def build_student_notebooks(
    answers_dir: Path, out_dir: Path, run: bool = True, pattern: str = "*.ipynb"
) -> list[Path]:
    """Write the student version of each answer notebook in `answers_dir` matching `pattern`.

    With `run`, answer and student notebooks are executed so their outputs are stored.
    """
    written = []
    for path in sorted(answers_dir.glob(pattern)):
        answer = nbformat.read(path, as_version=4)
        changed = stable_ids(answer)
        changed = sync_headings(answer, exercise_titles()) or changed
        if run:
            strip_machine_paths(execute(answer, out_dir))
        if run or changed:
            nbformat.write(answer, path)
        student = student_notebook(answer)
        if run:
            strip_machine_paths(execute(student, out_dir))
        target = out_dir / path.name
        nbformat.write(student, target)
        written.append(target)
    return written
