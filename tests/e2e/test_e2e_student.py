"""A student's session on lesson 1: a wrong answer gets a hint, the right one passes.

It works in the server's temporary copy of notebooks/, so the committed notebook never changes.
"""

from __future__ import annotations

import hashlib
import re

import lab_ui as ui
import nbformat
import pytest
from lab_ui import NOTEBOOKS, SCREENSHOTS

from buflesson.authoring import BEGIN, END, ROLE_CHECK, ROLE_EXERCISE
from buflesson.lab import lessons

# The wrong answer a student types first, by exercise: the plain-attribute mistake of lesson 1.
WRONG_ANSWERS = {"1.1": 'keys = ["mean", "std", "hidden.weight", "hidden.bias", "out.weight"]'}


def typed(answer_source: str) -> str:
    """An answer cell as a student would type it: without the solution markers."""
    lines = [line for line in answer_source.splitlines() if line.strip() not in (BEGIN, END)]
    return "\n".join(re.sub(r"\s*#\s*SOLUTION\s*$", "", line) for line in lines)


def roles(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.metadata.get("buflesson", {}).get("role", "") for cell in notebook.cells]


def test_wrong_answer_gets_a_hint_then_the_right_one_passes(lab, page):
    first = lessons(NOTEBOOKS)[:1]
    if not first or not first[0].name.startswith("01-"):
        pytest.skip("no student notebook 01-*.ipynb yet")
    relpath = first[0].name
    committed = hashlib.sha256(first[0].read_bytes()).hexdigest()
    student = nbformat.read(lab.root / relpath, as_version=4)
    answer = nbformat.read(NOTEBOOKS / "answers" / relpath, as_version=4)
    exercise = roles(student).index(ROLE_EXERCISE)
    checker = roles(student).index(ROLE_CHECK, exercise)
    exercise_id = student.cells[checker].metadata["buflesson"]["exercises"][0]
    assert exercise_id in WRONG_ANSWERS, f"add the wrong answer a student might give to {exercise_id}"
    code_cells = [i for i in range(exercise, checker + 1) if student.cells[i].cell_type == "code"]
    shot = SCREENSHOTS / "student" / relpath.removesuffix(".ipynb")
    try:
        ui.open_notebook(page, lab, relpath)
        ui.run_all(page, lab, relpath)
        ui.hide_left_sidebar(page)

        ui.type_into_cell(page, exercise, WRONG_ANSWERS[exercise_id])
        for index in code_cells:
            ui.run_cell(page, lab, relpath, index)
        box = ui.cell(page, checker).locator(".buflesson-check")
        box.evaluate("element => element.scrollIntoView({block: 'center'})")
        page.screenshot(path=f"{shot}.wrong.png")
        assert "buflesson-failed" in box.get_attribute("class")
        assert "Hint:" in box.inner_text(), box.inner_text()

        ui.type_into_cell(page, exercise, typed(answer.cells[exercise].source))
        for index in code_cells:
            ui.run_cell(page, lab, relpath, index)
        box.evaluate("element => element.scrollIntoView({block: 'center'})")
        page.screenshot(path=f"{shot}.right.png")
        assert "buflesson-passed" in box.get_attribute("class"), box.inner_text()
    finally:
        lab.shut_down(relpath)
    assert hashlib.sha256(first[0].read_bytes()).hexdigest() == committed
