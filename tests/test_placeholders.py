"""Every placeholder a student meets ends the code it stands in: no given line after it that never runs.

A student's copy replaces an answer region with `raise NotImplementedError`. A given line after it
in the same straight run of code (`return x - self.mean` after the region) can never run and reads
as a bug; the exercise cell must end its block with the answer region instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from buflesson.authoring import ROLE_EXERCISE, cell_role, strip_answers

ANSWERS = Path(__file__).resolve().parent.parent / "notebooks" / "answers"
# Blocks a `raise` leaves for good; after an `if` or a loop the code runs on the other branch.
_STRAIGHT = (ast.With, ast.AsyncWith)


def _is_placeholder(node: ast.AST) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _bodies(node: ast.AST):
    for name in ("body", "orelse", "finalbody"):
        body = getattr(node, name, None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            yield body
    for handler in getattr(node, "handlers", []):
        yield handler.body
    for case in getattr(node, "cases", []):
        yield case.body


def unreachable_after_placeholders(source: str) -> list[int]:
    """Line numbers of statements that can never run because a placeholder raises before them."""
    tree = ast.parse(source)
    found: list[int] = []

    def visit(node: ast.AST, after: list[ast.stmt]) -> None:
        # `after`: what runs next when `node`'s bodies finish, as long as nothing branches around them.
        for body in _bodies(node):
            for index, statement in enumerate(body):
                rest = body[index + 1 :]
                if _is_placeholder(statement):
                    found.extend(line.lineno for line in rest + after)
                inherited = rest + after if isinstance(statement, _STRAIGHT) else []
                visit(statement, inherited)

    visit(tree, [])
    return sorted(found)


def test_the_rule_finds_a_given_line_after_a_placeholder():
    source = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError\n    return x\n"
    assert unreachable_after_placeholders(source) == [4]
    with_block = "with a:\n    raise NotImplementedError()\nprint(1)\n"
    assert unreachable_after_placeholders(with_block) == [3]
    assert unreachable_after_placeholders("if a:\n    raise NotImplementedError\nprint(1)\n") == []
    assert (
        unreachable_after_placeholders("def f():\n    raise NotImplementedError\n\ndef g():\n    pass\n")
        == []
    )
    assert unreachable_after_placeholders("raise ValueError\nx = 1\n") == []


EXERCISE_CELLS = [
    pytest.param(path, cell, id=f"{path.stem}:{cell.id}")
    for path in sorted(ANSWERS.glob("[0-9][0-9]-*.ipynb"))
    for cell in nbformat.read(path, as_version=4).cells
    if cell_role(cell) == ROLE_EXERCISE
]


@pytest.mark.parametrize("path, cell", EXERCISE_CELLS)
def test_no_given_line_follows_a_placeholder(path, cell):
    student = strip_answers(cell.source)
    lines = student.splitlines()
    dead = unreachable_after_placeholders(student)
    assert not dead, (
        f"{path.name}, cell {cell.id}: given lines after `raise NotImplementedError` never run; end the "
        "block with the answer region, or move them before it:\n"
        + "\n".join(f"  {number}: {lines[number - 1]}" for number in dead)
    )
