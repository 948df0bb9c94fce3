"""One line above a NameError that says which earlier cell to run.

A student who opens a lesson and runs an exercise cell first meets `NameError: name 'nn' is not
defined`. In the lessons' kernel, `install(ip)` puts one line above that error naming the line of
the notebook that defines the name and what to do, for example

    `nn` comes from `from torch import nn` in a cell above that has not run since the kernel
    started: run the cells above this one first (Run > Run All Above Selected Cell).

The kernel knows its notebook from `JPY_SESSION_NAME`, which jupyter_server sets for the kernels it
starts; it reads the saved notebook and finds the definitions with `ast`. Outside JupyterLab (no
notebook), for a name no cell defines, or on any trouble, the error is shown as usual.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path

from buflesson.i18n import render

RUN_ABOVE = "Run > Run All Above Selected Cell"  # JupyterLab's menu, in JupyterLab's words
SHORT = 72  # a longer defining line is cut
BOLD, PLAIN = "\x1b[1m", "\x1b[22m"


@dataclass(frozen=True)
class Definition:
    """Where a notebook defines a name: the code cell (0-based among code cells) and the line."""

    cell: int
    line: str
    source: str


def _bound_names(target: ast.AST) -> list[str]:
    return [node.id for node in ast.walk(target) if isinstance(node, ast.Name)]


def defined_names(source: str) -> dict[str, str]:
    """Names a cell binds at its top level (not inside functions or classes) -> the defining line."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    lines = source.splitlines()
    found: dict[str, str] = {}

    def note(names: list[str], node: ast.stmt) -> None:
        line = lines[node.lineno - 1].strip()
        for name in names:
            found.setdefault(name, line if len(line) <= SHORT else line[: SHORT - 3] + "...")

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                note([node.name], node)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:  # only the import of this name: `from buflesson import check`
                    bound = (alias.asname or alias.name).split(".")[0]
                    alone = ast.unparse(type(node)(**{**node.__dict__, "names": [alias]}))
                    found.setdefault(bound, alone)
            elif isinstance(node, ast.Assign):
                note([name for target in node.targets for name in _bound_names(target)], node)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                note(_bound_names(node.target), node)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                note(_bound_names(node.target), node)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                note(
                    [
                        n
                        for item in node.items
                        if item.optional_vars
                        for n in _bound_names(item.optional_vars)
                    ],
                    node,
                )
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(node, field, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    visit(inner)
            for handler in getattr(node, "handlers", []):
                visit(handler.body)

    visit(tree.body)
    return found


def code_cells(path: Path, transform=lambda source: source) -> list[str]:
    """The sources of a saved notebook's code cells, IPython syntax made Python by `transform`."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append(transform("".join(source) if isinstance(source, list) else source))
    return cells


def _same(a: str, b: str) -> bool:
    return a.strip() == b.strip()


def advice(name: str, cells: list[str], current: str, ran: list[str]) -> str | None:
    """The line to show for `NameError: name` raised by the cell `current`, or None.

    `cells` are the notebook's code cells, `ran` the sources run since the kernel started.
    """
    here = next((index for index, source in enumerate(cells) if _same(source, current)), len(cells))
    definitions = [
        Definition(index, line, source)
        for index, source in enumerate(cells)
        if (line := defined_names(source).get(name)) is not None and index != here
    ]
    if not definitions:
        return None
    above = [d for d in definitions if d.cell < here]
    if not above:
        first = definitions[0]
        return render(
            "`{name}` comes from `{line}` in a cell further down: run that cell first.",
            name=name,
            line=first.line,
        )
    nearest = above[-1]
    if any(_same(nearest.source, source) for source in ran):
        return render(
            "`{name}` comes from `{line}` in a cell above, which ran but stopped before defining it: fix the "
            "error there and run it again.",
            name=name,
            line=nearest.line,
        )
    return render(
        "`{name}` comes from `{line}` in a cell above that has not run since the kernel started: run the "
        "cells above this one first ({menu}).",
        name=name,
        line=nearest.line,
        menu=RUN_ABOVE,
    )


def notebook_path(ip) -> Path | None:
    """The notebook this kernel serves, as jupyter_server told it (`JPY_SESSION_NAME`)."""
    name = os.environ.get("JPY_SESSION_NAME") or ip.user_ns.get("__session__")
    if not name:
        return None
    path = Path(name)
    return path if path.is_file() else None


def _line_for(ip, error: NameError) -> str | None:
    path = notebook_path(ip)
    name = getattr(error, "name", None)
    if path is None or not name:
        return None
    history = list(ip.history_manager.input_hist_raw)
    current, ran = (history[-1], history[:-1]) if history else ("", [])
    cells = code_cells(path, ip.transform_cell)
    return advice(name, cells, ip.transform_cell(current), [ip.transform_cell(s) for s in ran])


def install(ip) -> None:
    """Show the advice above every NameError the shell `ip` reports (other errors untouched; idempotent)."""
    formatter = ip.InteractiveTB
    if getattr(formatter, "_buflesson_guides", False):
        return
    shown = formatter.structured_traceback

    def structured_traceback(etype, evalue, etb=None, tb_offset=None, *args, **kwargs):
        lines = shown(etype, evalue, etb, tb_offset, *args, **kwargs)
        if isinstance(evalue, NameError):
            try:
                line = _line_for(ip, evalue)
            except Exception:  # guidance is a courtesy: never replace the error with another one
                line = None
            if line:
                return [f"{BOLD}{line}{PLAIN}", *lines]
        return lines

    formatter.structured_traceback = structured_traceback
    formatter._buflesson_guides = True
