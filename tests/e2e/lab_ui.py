"""Driving JupyterLab 4 through its own UI: the command palette, cells, themes, screenshots."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Playwright is installed by `make test-e2e` only
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ANSWERS = NOTEBOOKS / "answers"
ANSWERS_ZH = NOTEBOOKS / "zh" / "answers"  # the Chinese course (`buflesson lab --lang zh`)
ARTIFACTS = ROOT / "_e2e"  # git-ignored
SCREENSHOTS = ARTIFACTS / "screenshots"
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
RUN_TIMEOUT = 600  # seconds for one notebook's Run All on two shared cores
TALLEST_SHOT = 12_000  # pixels; a longer notebook is saved in several scrolled parts
LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"
# The commands these tests run, as JupyterLab's Chinese language pack labels them in the palette.
ZH_LABELS = {
    "Clear Outputs of All Cells": "清除所有单元格的输出",
    "Restart Kernel and Run All Cells": "重启并运行所有单元格",
    f"Use Theme: {LIGHT}": "使用主题: JupyterLab 亮色",  # the themes' names are translated too
    f"Use Theme: {DARK}": "使用主题: JupyterLab 暗色",
}

# What each code cell of the open notebook shows, in order.
_CODE_CELLS_JS = """
(root) => Array.from(document.querySelectorAll(root + ' .jp-Notebook .jp-CodeCell')).map(cell => {
  const outputs = Array.from(cell.querySelectorAll('.jp-OutputArea-output'));
  return {
    prompt: (cell.querySelector('.jp-InputPrompt') || {textContent: ''}).textContent.trim(),
    errors: outputs.filter(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr')
                   .map(o => o.textContent.slice(0, 400)),
    boxes: Array.from(cell.querySelectorAll('.buflesson-check')).map(b => ({
      classes: Array.from(b.classList), text: b.textContent})),
    images: Array.from(cell.querySelectorAll('.jp-OutputArea-output img')).map(i => i.naturalWidth),
    text: outputs.map(o => o.textContent).join('\\n').slice(0, 2000),
  };
})
"""

# Height of the notebook's content, and of the part of it the window shows.
_HEIGHTS_JS = """
(root) => {
  const outer = document.querySelector(root + ' .jp-WindowedPanel-outer');
  const cells = outer.querySelectorAll('.jp-Cell');
  const last = cells[cells.length - 1];
  const bottom = last.getBoundingClientRect().bottom - outer.getBoundingClientRect().top;
  return [Math.ceil(outer.scrollTop + bottom), outer.clientHeight];
}
"""


def interface_language(page: Page) -> str:
    """The language of JupyterLab's interface: "zh" when its menu bar is in Chinese, else "en"."""
    menus = page.locator("#jp-menu-panel")
    menus.wait_for()
    return "zh" if "帮助" in menus.inner_text() else "en"


def command(page: Page, label: str) -> None:
    """Run a JupyterLab command by its label, through the command palette (Ctrl+Shift+C). In the
    Chinese interface the palette's search finds no Chinese text (Lumino's fuzzy search starts a
    match only at a Latin word), so the item is picked by its Chinese label from the full list."""
    chinese = interface_language(page) == "zh"
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    field = page.locator(".lm-CommandPalette-input")
    field.wait_for(state="visible")
    if chinese:
        field.fill("")
        shown = re.compile("^" + re.escape(ZH_LABELS[label]) + "…?$")
    else:
        field.fill(label)
        shown = label
    item = page.locator(".lm-CommandPalette-item:not(.lm-mod-disabled)").filter(
        has=page.locator(".lm-CommandPalette-itemLabel", has_text=shown)
    )
    item.first.click()


def fail_on_popup(page: Page) -> None:
    """A dialog or toast the student would have to answer ("Select Kernel", news prompt) is a failure."""
    for selector in (".jp-Dialog", ".Toastify__toast"):
        popup = page.locator(selector)
        if popup.count() and popup.first.is_visible():
            raise AssertionError(f"JupyterLab shows a pop-up: {popup.first.inner_text()!r}")


def kernel_state(lab, relpath: str) -> str:
    """The execution state of the notebook's kernel, from the REST API (`/api/sessions`)."""
    try:
        sessions = lab.sessions(relpath)
    except OSError:  # a server too busy to answer (a loaded CI machine) is not known to be idle
        return "not answering"
    return sessions[0]["kernel"]["execution_state"] if sessions else "no kernel"


def wait_idle(page: Page, lab, relpath: str, timeout: float = 120, settle: float = 10) -> None:
    """Wait until the kernel is idle and every code cell shows an execution count.

    The REST API reports a kernel idle between two queued cells, and JupyterLab blanks the prompts
    of queued cells after an error even where the kernel goes on (a `raises-exception` cell), so a
    notebook with cells left unrun counts as done only once nothing has changed for `settle` seconds.
    """
    deadline = time.monotonic() + timeout
    seen, since = None, time.monotonic()
    while True:
        prompts = [cell["prompt"] for cell in code_cells(page)]
        state = kernel_state(lab, relpath)
        now = time.monotonic()
        if (state, prompts) != seen:
            seen, since = (state, prompts), now
        if state == "idle" and "[*]:" not in prompts:
            if all(re.fullmatch(r"\[[0-9]+\]:", prompt) for prompt in prompts) or now - since >= settle:
                return
        if now > deadline:
            raise AssertionError(f"{relpath}: kernel {state} after {timeout} s; prompts {prompts}")
        time.sleep(0.5)


def open_notebook(page: Page, lab, relpath: str) -> None:
    """Open `relpath` alone in a fresh workspace in the light theme, its kernel started."""
    page.goto(lab.page_url(relpath))
    page.locator(f"{NOTEBOOK} .jp-Notebook .jp-Cell").first.wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    fail_on_popup(page)
    set_theme(page, LIGHT)
    wait_idle(page, lab, relpath)


def run_all(page: Page, lab, relpath: str, timeout: float = RUN_TIMEOUT) -> None:
    """Clear every output, restart the kernel and run all cells; wait until the run has ended."""
    command(page, "Clear Outputs of All Cells")
    page.wait_for_function("root => !document.querySelector(root + ' .jp-OutputArea-output')", arg=NOTEBOOK)
    command(page, "Restart Kernel and Run All Cells")
    page.locator(".jp-Dialog button.jp-mod-accept").click()  # "Restart Kernel?"
    # The run has started once a prompt shows a number or a star: every prompt was blank.
    deadline = time.monotonic() + 120
    while not any(re.fullmatch(r"\[[0-9*]+\]:", cell["prompt"]) for cell in code_cells(page)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{relpath}: no cell started running after Restart Kernel and Run All")
        time.sleep(0.2)
    wait_idle(page, lab, relpath, timeout)
    fail_on_popup(page)


def code_cells(page: Page) -> list[dict]:
    """Prompt, error outputs, check boxes, images and output text of each code cell."""
    return page.evaluate(_CODE_CELLS_JS, NOTEBOOK)


def cell(page: Page, index: int):
    """The `index`-th cell (of any type) of the open notebook."""
    return page.locator(f"{NOTEBOOK} .jp-Notebook .jp-Cell").nth(index)


def type_into_cell(page: Page, index: int, text: str) -> None:
    """Replace the source of cell `index` as a student would: click into it, select all, type."""
    editor = cell(page, index).locator(".cm-content")
    editor.scroll_into_view_if_needed()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")


def run_cell(page: Page, lab, relpath: str, index: int) -> None:
    """Select cell `index`, run it with Ctrl+Enter and wait until it shows a new execution count."""
    from playwright.sync_api import expect

    prompt = cell(page, index).locator(".jp-InputPrompt")
    before = prompt.text_content().strip()
    prompt.click()  # selects the cell, in command mode
    page.keyboard.press("Control+Enter")
    expect(prompt).not_to_have_text(before, timeout=RUN_TIMEOUT * 1000)
    expect(prompt).to_have_text(re.compile(r"\[[0-9]+\]"), timeout=RUN_TIMEOUT * 1000)
    wait_idle(page, lab, relpath, settle=1)


def set_theme(page: Page, theme: str) -> None:
    """Switch JupyterLab's theme (Settings > Theme) unless it is already `theme`."""
    if page.evaluate("document.body.dataset.jpThemeName") == theme:
        return
    command(page, f"Use Theme: {theme}")
    page.wait_for_function("name => document.body.dataset.jpThemeName === name", arg=theme)
    page.wait_for_timeout(500)  # the theme's stylesheet applies after the attribute changes


def show_left_sidebar(page: Page) -> None:
    """Open the file browser, as a student who keeps it open while working."""
    if not page.locator("#jp-left-stack").is_visible():
        page.keyboard.press("Escape")
        page.keyboard.press("Control+B")
        page.locator("#jp-left-stack").wait_for(state="visible")


def file_browser_names(page: Page) -> list[str]:
    """The names the file browser lists, top to bottom."""
    page.locator(".jp-DirListing-item").first.wait_for()
    return page.locator(".jp-DirListing-item .jp-DirListing-itemText").all_inner_texts()


def hide_left_sidebar(page: Page) -> None:
    if page.locator("#jp-left-stack").is_visible():
        page.keyboard.press("Escape")
        page.keyboard.press("Control+B")
        page.locator("#jp-left-stack").wait_for(state="hidden")


def screenshot_notebook(page: Page, path: Path) -> list[Path]:
    """Save the whole open notebook: the window is made as tall as the notebook, or scrolled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hide_left_sidebar(page)
    size = page.viewport_size
    outer = page.locator(f"{NOTEBOOK} .jp-WindowedPanel-outer")
    outer.evaluate("element => element.scrollTo(0, 0)")
    content, visible = page.evaluate(_HEIGHTS_JS, NOTEBOOK)
    for _ in range(10):  # cells out of view have estimated heights until they are drawn
        height = min(page.viewport_size["height"] - visible + content + 24, TALLEST_SHOT)
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(500)
        measured, visible = page.evaluate(_HEIGHTS_JS, NOTEBOOK)
        if measured == content and (visible >= content or height == TALLEST_SHOT):
            break
        content = measured
    shots = []
    for part, top in enumerate(range(0, content, visible)):
        outer.evaluate("(element, top) => element.scrollTo(0, top)", top)
        page.wait_for_timeout(300)
        shot = path if top == 0 else path.with_name(f"{path.stem}.{part + 1}{path.suffix}")
        page.screenshot(path=shot)
        shots.append(shot)
    outer.evaluate("element => element.scrollTo(0, 0)")
    page.set_viewport_size(size)
    return shots


# The colours a browser shows: `rgb()`/`rgba()`, or `color(srgb r g b / a)` for colour-mix results.
_COLOURS_JS = """
(element) => {
  const parse = (text) => {
    let m = text.match(/^rgba?\\(([^)]*)\\)$/);
    if (m) { const v = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
             return [v[0] / 255, v[1] / 255, v[2] / 255, v.length > 3 ? v[3] : 1]; }
    m = text.match(/^color\\(srgb ([^)]*)\\)$/);
    if (m) { const v = m[1].split(/[ \\/]+/).filter(Boolean).map(Number);
             return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; }
    throw new Error('unknown colour ' + text);
  };
  let background = [0, 0, 0, 0];
  for (let el = element; el && background[3] === 0; el = el.parentElement) {
    background = parse(getComputedStyle(el).backgroundColor);
  }
  return {text: parse(getComputedStyle(element).color), background};
}
"""


def _luminance(rgb) -> float:
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(locator) -> float:
    """WCAG contrast of an element's text against the background it is drawn on (computed styles)."""
    colours = locator.evaluate(_COLOURS_JS)
    text, background = colours["text"], colours["background"]
    alpha = text[3]  # text drawn with transparency is blended into its background
    text = [alpha * t + (1 - alpha) * b for t, b in zip(text[:3], background[:3], strict=True)]
    low, high = sorted([_luminance(text), _luminance(background)])
    return (high + 0.05) / (low + 0.05)


# Tables wider than the output area they sit in, with no horizontal scrolling to reach the rest.
_CUT_TABLE_JS = """
(table) => {
  const area = table.closest('.jp-OutputArea-output');
  for (let el = table.parentElement; el; el = el.parentElement) {
    const overflow = getComputedStyle(el).overflowX;
    if ((overflow === 'auto' || overflow === 'scroll') && el.scrollWidth > el.clientWidth + 1) {
      return null;  // it scrolls: a scrollbar says there is more
    }
    if (el === area) break;
  }
  const box = table.getBoundingClientRect(), limit = area.getBoundingClientRect();
  const panel = table.closest('.jp-WindowedPanel-outer').getBoundingClientRect();
  const right = Math.min(limit.right, panel.right);
  if (box.right <= right + 1) return null;
  const header = (table.querySelector('th') || table).textContent.trim().slice(0, 40);
  return `table "${header}" is ${Math.round(box.width)} px wide, cut at ${Math.round(right - box.left)} px`;
}
"""


def cut_tables(page: Page) -> list[str]:
    """Every output table of the open notebook that is cut off with nothing to show the rest."""
    tables = page.locator(f"{NOTEBOOK} .jp-OutputArea-output table")
    found = []
    for index in range(tables.count()):
        table = tables.nth(index)
        table.scroll_into_view_if_needed()  # cells out of view are not laid out
        problem = table.evaluate(_CUT_TABLE_JS)
        if problem:
            found.append(problem)
    return found
