"""Check boxes: the colours of the JupyterLab theme, readable on its light and dark variants."""

import re
import sys
from pathlib import Path

import pytest

from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED, CheckResult, box_style

STATUSES = [PASSED, FAILED, NOT_ATTEMPTED]
THEMES = Path(sys.prefix, "share/jupyter/lab/themes/@jupyterlab")


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance of an sRGB colour given as 0..255 channels."""
    channels = [c / 255 for c in rgb]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a, b) -> float:
    low, high = sorted([luminance(a), luminance(b)])
    return (high + 0.05) / (low + 0.05)


def hex_rgb(text: str) -> tuple[int, int, int]:
    text = {"white": "#fff", "black": "#000"}.get(text, text).lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    return tuple(int(text[i : i + 2], 16) for i in (0, 2, 4))


def theme_variables(theme: str) -> dict[str, str]:
    """`--jp-*` and `--md-*` variables of an installed JupyterLab theme, `var()` resolved."""
    css = (THEMES / theme / "index.css").read_text()
    values = dict(re.findall(r"(--(?:jp|md)-[\w-]+):\s*([^;}]+)", css))

    def resolve(value: str) -> str:
        match = re.fullmatch(r"var\((--[\w-]+)(?:,\s*([^)]+))?\)", value.strip())
        if not match:
            return value.strip()
        return resolve(values.get(match[1], match[2] or ""))

    return {name: resolve(value) for name, value in values.items()}


def rendered(style: str, variables: dict[str, str]) -> tuple[tuple, tuple]:
    """(text, background) colours of a box style, as a browser computes them under `variables`."""

    def value(expr: str) -> str:
        match = re.fullmatch(r"var\((--[\w-]+),\s*([^)]+)\)", expr.strip())
        return variables.get(match[1], match[2]) if match else expr.strip()

    mix = re.search(r"color-mix\(in srgb, (var\([^)]*\)) (\d+)%, (var\([^)]*\))\)", style)
    accent, share, page = hex_rgb(value(mix[1])), int(mix[2]) / 100, hex_rgb(value(mix[3]))
    background = tuple(share * a + (1 - share) * p for a, p in zip(accent, page, strict=True))
    text = value(re.search(r";color:(var\([^)]*\))", style)[1])
    return hex_rgb(text), background


def test_the_box_names_its_status_and_escapes_the_text():
    failed = CheckResult("3.1", "Title <b>", FAILED, "Bad & wrong.", "Try again.")
    html = failed._repr_html_()
    assert "buflesson-check buflesson-failed" in html and "<b>NOT YET</b>" in html
    assert "Title &lt;b&gt;" in html and "Bad &amp; wrong." in html and "<b>Hint:</b>" in html


@pytest.mark.parametrize("status", STATUSES)
def test_the_box_takes_its_colours_from_the_theme(status):
    style = box_style(status)
    assert "var(--jp-content-font-color0" in style and "var(--jp-layout-color0" in style
    assert style in CheckResult("1.1", "t", status, "m")._repr_html_()


@pytest.mark.parametrize("theme", ["theme-light-extension", "theme-dark-extension", None])
@pytest.mark.parametrize("status", STATUSES)
def test_box_text_contrast_is_at_least_7_to_1(theme, status):
    variables = theme_variables(theme) if theme else {}  # None: outside JupyterLab, the fallbacks
    text, background = rendered(box_style(status), variables)
    assert contrast(text, background) >= 7, (theme, status, text, background)
