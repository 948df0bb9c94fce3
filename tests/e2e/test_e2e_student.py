"""A student's session on lesson 1 in their own copy: a wrong answer gets a hint, the right one passes.

Each box's text is measured against its background (computed styles, WCAG contrast) in the light
and the dark theme. The course's own notebooks never change.
"""

from __future__ import annotations

import hashlib
import json
import re

import lab_ui as ui
import nbformat
import pytest
from lab_ui import ANSWERS, ARTIFACTS, NOTEBOOKS, SCREENSHOTS

from buflesson.authoring import BEGIN, END, ROLE_CHECK, ROLE_EXERCISE
from buflesson.lab import lessons

# The wrong answer a student types first, by exercise: the plain-attribute mistake of lesson 1.
WRONG_ANSWERS = {"1.1": 'keys = ["mean", "std", "hidden.weight", "hidden.bias", "out.weight"]'}
MIN_CONTRAST = 7.0  # WCAG AAA for normal text


def typed(answer_source: str) -> str:
    """An answer cell as a student would type it: without the solution markers."""
    lines = [line for line in answer_source.splitlines() if line.strip() not in (BEGIN, END)]
    return "\n".join(re.sub(r"\s*#\s*SOLUTION\s*$", "", line) for line in lines)


def roles(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.metadata.get("buflesson", {}).get("role", "") for cell in notebook.cells]


def contrast_in_both_themes(page, box) -> dict[str, float]:
    ratios = {}
    for theme in (ui.LIGHT, ui.DARK):
        ui.set_theme(page, theme)
        ratios[theme] = ui.contrast(box)
    ui.set_theme(page, ui.LIGHT)
    return ratios


def test_wrong_answer_gets_a_hint_then_the_right_one_passes(lab, page):
    first = lessons(ANSWERS)[:1]
    if not first or not first[0].name.startswith("01-"):
        pytest.skip("no lesson 01-*.ipynb yet")
    relpath = first[0].name
    course = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in (NOTEBOOKS / relpath, first[0])}
    student = nbformat.read(lab.root / relpath, as_version=4)
    answer = nbformat.read(first[0], as_version=4)
    exercise = roles(student).index(ROLE_EXERCISE)
    checker = roles(student).index(ROLE_CHECK, exercise)
    later_checker = roles(student).index(ROLE_CHECK, checker + 1)
    exercise_id = student.cells[checker].metadata["buflesson"]["exercises"][0]
    assert exercise_id in WRONG_ANSWERS, f"add the wrong answer a student might give to {exercise_id}"
    code_cells = [i for i in range(exercise, checker + 1) if student.cells[i].cell_type == "code"]
    shot = SCREENSHOTS / "student" / relpath.removesuffix(".ipynb")
    shot.parent.mkdir(parents=True, exist_ok=True)
    contrasts = {}
    try:
        ui.open_notebook(page, lab, relpath)
        ui.run_all(page, lab, relpath)
        ui.hide_left_sidebar(page)
        waiting = ui.cell(page, later_checker).locator(".buflesson-check")
        assert "buflesson-not-attempted" in waiting.get_attribute("class")
        contrasts["not attempted"] = contrast_in_both_themes(page, waiting)

        ui.type_into_cell(page, exercise, WRONG_ANSWERS[exercise_id])
        for index in code_cells:
            ui.run_cell(page, lab, relpath, index)
        box = ui.cell(page, checker).locator(".buflesson-check")
        box.evaluate("element => element.scrollIntoView({block: 'center'})")
        page.screenshot(path=f"{shot}.wrong.png")
        assert "buflesson-failed" in box.get_attribute("class")
        assert "Hint:" in box.inner_text(), box.inner_text()
        contrasts["failed"] = contrast_in_both_themes(page, box)
        ui.set_theme(page, ui.DARK)
        page.screenshot(path=f"{shot}.wrong.dark.png")
        ui.set_theme(page, ui.LIGHT)

        ui.type_into_cell(page, exercise, typed(answer.cells[exercise].source))
        for index in code_cells:
            ui.run_cell(page, lab, relpath, index)
        box.evaluate("element => element.scrollIntoView({block: 'center'})")
        page.screenshot(path=f"{shot}.right.png")
        assert "buflesson-passed" in box.get_attribute("class"), box.inner_text()
        contrasts["passed"] = contrast_in_both_themes(page, box)
        ui.set_theme(page, ui.DARK)
        page.screenshot(path=f"{shot}.right.dark.png")
        ui.set_theme(page, ui.LIGHT)
    finally:
        lab.shut_down(relpath)
    measured = {
        status: {theme: round(ratio, 2) for theme, ratio in by_theme.items()}
        for status, by_theme in contrasts.items()
    }
    (ARTIFACTS / "box-contrast.json").write_text(json.dumps(measured, indent=1) + "\n")
    low = {
        f"{status}, {theme}": round(ratio, 1)
        for status, by_theme in contrasts.items()
        for theme, ratio in by_theme.items()
        if ratio < MIN_CONTRAST
    }
    assert not low, f"box text against its background below {MIN_CONTRAST}:1: {low}"
    assert all(hashlib.sha256(path.read_bytes()).hexdigest() == digest for path, digest in course.items())
