"""`buflesson lab` as a student meets it: their own copy of the lessons, lesson 1 open, nothing run yet."""

from __future__ import annotations

import lab_ui as ui
import nbformat
from lab_ui import ANSWERS, ANSWERS_ZH, SCREENSHOTS

from buflesson.authoring import ROLE_EXERCISE, answer_text
from buflesson.lab import KERNEL, lessons

SIZES = {"1366": (1366, 768), "1024": (1024, 768)}


def test_lab_opens_lesson_1_of_the_working_copy_with_no_outputs_and_no_answers(lab, page):
    from playwright.sync_api import expect

    course = lessons(ANSWERS)
    first = course[0].name
    assert lab.api("kernelspecs")["default"] == KERNEL
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        page.goto(f"{lab.url}/?token={lab.token}")  # the address `buflesson lab` opens
        tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
        expect(tab).to_have_text(first)
        expect(page.locator(f"{ui.NOTEBOOK} .jp-Toolbar-kernelName")).to_have_text("Python (buflesson)")
        page.wait_for_timeout(5000)  # the news prompt, when enabled, shows a few seconds after start
        ui.fail_on_popup(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for theme, suffix in ((ui.LIGHT, "light"), (ui.DARK, "dark")):
            ui.set_theme(page, theme)
            for size, (width, height) in SIZES.items():
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(300)
                page.screenshot(path=SCREENSHOTS / f"lab-start.{size}.{suffix}.png")
        ui.set_theme(page, ui.LIGHT)

        # The file browser shows the student's lessons and nothing else: no answers/ folder.
        assert ui.file_browser_names(page) == [path.name for path in course]
        # Nothing has run: no outputs, no numbered prompts.
        assert page.locator(f"{ui.NOTEBOOK} .jp-OutputArea-output").count() == 0
        prompts = [cell["prompt"] for cell in ui.code_cells(page)]
        assert prompts and all(prompt in ("[ ]:", "") for prompt in prompts), prompts
        # No answer in the part of the notebook the browser shows.
        shown = page.locator(f"{ui.NOTEBOOK} .jp-Notebook").inner_text()
        answers = answer_text(nbformat.read(course[0], as_version=4))
        assert answers and not [line for line in answers if line in shown]
    finally:
        lab.shut_down(first)

    # The whole notebook as the server hands it to the browser: placeholders, no answer, no
    # output, and trusted (the server marks code cells trusted when the signature is valid).
    code = [cell for cell in lab.api(f"contents/{first}")["content"]["cells"] if cell["cell_type"] == "code"]
    sources = "\n".join(cell["source"] for cell in code)
    assert "raise NotImplementedError" in sources and not [line for line in answers if line in sources]
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    assert all(cell["metadata"].get("trusted") is True for cell in code)


def test_a_cell_run_before_the_imports_says_which_cells_to_run(lab, page):
    from playwright.sync_api import expect

    relpath = lessons(ANSWERS)[2].name  # lesson 3: its first exercise subclasses nn.Module
    nb = nbformat.read(lab.root / relpath, as_version=4)
    exercise = next(
        index
        for index, cell in enumerate(nb.cells)
        if cell.metadata.get("buflesson", {}).get("role") == ROLE_EXERCISE
    )
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        ui.open_notebook(page, lab, relpath)
        ui.run_cell(page, lab, relpath, exercise)
        error = ui.cell(page, exercise).locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        expect(error).to_contain_text("NameError")
        text = error.inner_text()
        ui.cell(page, exercise).scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / "out-of-order.png")
    finally:
        lab.shut_down(relpath)
    assert "`nn` comes from `from torch import nn` in a cell above that has not run" in text, text
    assert "Run All Above Selected Cell" in text
    assert text.index("comes from") < text.index("NameError"), "the guiding line stands above the error"


def test_lab_lang_zh_opens_the_chinese_copy_in_the_chinese_interface(lab_zh, page):
    """`buflesson lab --lang zh`: lesson 1 of my-lessons-zh/, JupyterLab's menus in Chinese, glyphs
    from a CJK font (Debian's fonts-noto-cjk, installed by `make test-e2e`)."""
    import subprocess

    from playwright.sync_api import expect

    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    assert "Noto Sans CJK" in fonts, "no Noto CJK font: `make test-e2e` installs fonts-noto-cjk"
    course = lessons(ANSWERS_ZH)
    first = course[0].name
    assert lab_zh.root.name == "my-lessons-zh"
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        page.goto(f"{lab_zh.url}/?token={lab_zh.token}")
        tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
        expect(tab).to_have_text(first)
        expect(page.locator("#jp-menu-panel")).to_contain_text("帮助")  # Help: the language pack is on
        assert ui.interface_language(page) == "zh"
        expect(page.locator(f"{ui.NOTEBOOK} .jp-Toolbar-kernelName")).to_have_text("Python (buflesson)")
        expect(page.locator(f"{ui.NOTEBOOK} .jp-Notebook")).to_contain_text("第 1 课")
        page.wait_for_timeout(5000)
        ui.fail_on_popup(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for theme, suffix in ((ui.LIGHT, "light"), (ui.DARK, "dark")):
            ui.set_theme(page, theme)
            for size, (width, height) in SIZES.items():
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(300)
                page.screenshot(path=SCREENSHOTS / f"lab-start-zh.{size}.{suffix}.png")
        ui.set_theme(page, ui.LIGHT)
        assert ui.file_browser_names(page) == [path.name for path in course]
        assert page.locator(f"{ui.NOTEBOOK} .jp-OutputArea-output").count() == 0
        shown = page.locator(f"{ui.NOTEBOOK} .jp-Notebook").inner_text()
        answers = answer_text(nbformat.read(course[0], as_version=4))
        assert answers and not [line for line in answers if line.strip() and line in shown]
    finally:
        lab_zh.shut_down(first)
    copy = lab_zh.api(f"contents/{first}")["content"]
    assert copy["metadata"]["buflesson"]["language"] == "zh"
    code = [cell for cell in copy["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] == [] and cell["metadata"].get("trusted") is True for cell in code)
