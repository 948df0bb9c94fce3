"""Every lesson, in the student's copy and in the answers, run through JupyterLab's UI in Chromium.

Each renders cleanly; at 1024 px with the file browser open no table is cut off; screenshots of
each notebook in the light and the dark theme go to _e2e/screenshots/ (the Chinese lessons, run in
JupyterLab's Chinese interface, to _e2e/screenshots/zh/).
"""

from __future__ import annotations

import lab_ui as ui
import nbformat
import pytest
from lab_ui import ANSWERS, ANSWERS_ZH, SCREENSHOTS

from buflesson.authoring import checked_exercises
from buflesson.lab import lessons

NOTEBOOK_NAMES = [path.name for path in lessons(ANSWERS)]
NOTEBOOK_NAMES_ZH = [path.name for path in lessons(ANSWERS_ZH)]
EXPECTED_BOX = {"student": "buflesson-not-attempted", "answer": "buflesson-passed"}


def problems(kind: str, notebook: nbformat.NotebookNode, shown: list[dict]) -> list[str]:
    """What a student would see wrong in the run notebook: each a line naming the cell."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if len(shown) != len(code):
        return [f"{len(shown)} code cells in the browser, {len(code)} in the file"]
    expected_box = EXPECTED_BOX[kind]
    found = []
    for number, (cell, dom) in enumerate(zip(code, shown, strict=True), start=1):
        where = f"code cell {number} ({cell.source.splitlines()[0] if cell.source else ''!r})"
        if not dom["prompt"].strip("[]: ").isdigit():
            found.append(f"{where} did not run: prompt {dom['prompt']!r}")
            continue
        if "raises-exception" in cell.metadata.get("tags", []):
            if not dom["errors"]:
                found.append(f"{where} is tagged raises-exception but shows no error")
        elif dom["errors"]:
            found.append(f"{where} shows an error: {dom['errors'][0]!r}")
        if checked_exercises(cell.source):
            if not dom["boxes"]:
                found.append(f"{where} shows no check box; its output: {dom['text'][:300]!r}")
            for box in dom["boxes"]:
                if expected_box not in box["classes"]:
                    found.append(f"{where} shows {box['classes']}, expected {expected_box}: {box['text']!r}")
        stored = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        drawn = [width for width in dom["images"] if width > 0]
        if len(drawn) < stored or len(drawn) < len(dom["images"]):
            found.append(f"{where}: {stored} stored figure(s), {len(drawn)} drawn of {len(dom['images'])}")
        if "<Figure size" in dom["text"] and not drawn:
            found.append(f"{where} shows a figure as text, not as an image")
    return found


def run_and_look(page, server, relpath: str, kind: str, lang: str = "en") -> None:
    notebook = nbformat.read(server.root / relpath, as_version=4)
    name = ("" if lang == "en" else f"{lang}/") + f"{kind}/{relpath.removesuffix('.ipynb')}"
    try:
        ui.open_notebook(page, server, relpath)
        ui.run_all(page, server, relpath)
        shown = ui.code_cells(page)
        # A student on a 1024 px screen with the file browser open.
        page.set_viewport_size({"width": 1024, "height": 768})
        ui.show_left_sidebar(page)
        cut = ui.cut_tables(page)
        tables = page.locator(f"{ui.NOTEBOOK} .jp-OutputArea-output table")
        if tables.count():  # the last table, as a student at 1024 px sees it
            tables.last.evaluate("element => element.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(300)
            (SCREENSHOTS / name).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{name}.1024.png")
        page.set_viewport_size({"width": 1280, "height": 900})
        ui.screenshot_notebook(page, SCREENSHOTS / f"{name}.light.png")
        ui.set_theme(page, ui.DARK)
        ui.screenshot_notebook(page, SCREENSHOTS / f"{name}.dark.png")
        ui.set_theme(page, ui.LIGHT)
    finally:
        server.shut_down(relpath)
    found = problems(kind, notebook, shown) + [f"at 1024 px: {problem}" for problem in cut]
    if found:
        pytest.fail(f"{kind} {relpath}:\n" + "\n".join(found), pytrace=False)


@pytest.mark.parametrize("relpath", NOTEBOOK_NAMES)
def test_students_copy_runs_cleanly_in_jupyterlab(lab, page, relpath):
    run_and_look(page, lab, relpath, "student")


@pytest.mark.parametrize("relpath", NOTEBOOK_NAMES)
def test_answer_notebook_runs_cleanly_in_jupyterlab(answers_lab, page, relpath):
    run_and_look(page, answers_lab, relpath, "answer")


@pytest.mark.parametrize("relpath", NOTEBOOK_NAMES_ZH)
def test_chinese_students_copy_runs_cleanly_in_jupyterlab(lab_zh, page, relpath):
    run_and_look(page, lab_zh, relpath, "student", "zh")


@pytest.mark.parametrize("relpath", NOTEBOOK_NAMES_ZH)
def test_chinese_answer_notebook_runs_cleanly_in_jupyterlab(answers_lab_zh, page, relpath):
    run_and_look(page, answers_lab_zh, relpath, "answer", "zh")
