"""`make lab` as a student meets it: lesson 1 open on the project's kernel, and no pop-ups."""

from __future__ import annotations

import lab_ui as ui
import pytest
from lab_ui import NOTEBOOKS, SCREENSHOTS

from buflesson.lab import KERNEL, lessons


def test_lab_opens_the_first_lesson_on_the_project_kernel_without_popups(lab, page):
    from playwright.sync_api import expect

    assert lab.api("kernelspecs")["default"] == KERNEL
    first = lessons(NOTEBOOKS)[:1]
    if not first:
        pytest.skip("no student notebook yet")
    try:
        page.goto(f"{lab.url}/?token={lab.token}")  # the address `make lab` opens
        tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
        expect(tab).to_have_text(first[0].name)
        expect(page.locator(f"{ui.NOTEBOOK} .jp-Toolbar-kernelName")).to_have_text("Python (buflesson)")
        page.wait_for_timeout(5000)  # the news prompt, when enabled, shows a few seconds after start
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "lab-start.png")
        ui.fail_on_popup(page)
    finally:
        lab.shut_down(first[0].name)
