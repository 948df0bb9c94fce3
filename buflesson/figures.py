"""The look of buflesson's figures: readable on JupyterLab's light and dark themes alike.

A PNG cannot follow the theme, so the figures have no background of their own (the page shows
through) and draw text, axes and grid in a mid grey that keeps a contrast of about 4.35:1 against
both a white page and JupyterLab Dark's #111 page (no grey reaches WCAG's 4.5:1 on both; black or
white text would vanish on one of them). Coloured marks keep their colours.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

INK = "#797979"  # contrast 4.35:1 on white and on #111 (WCAG relative luminance)
FAINT = "#79797955"  # grid and separator lines

STYLE = {
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "text.color": INK,
    "axes.edgecolor": INK,
    "axes.labelcolor": INK,
    "axes.titlecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "grid.color": INK,
    "grid.alpha": 0.3,
    "legend.facecolor": "none",
    "legend.edgecolor": INK,
    "legend.labelcolor": INK,
    "legend.framealpha": None,
}


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """Build a figure inside this block to give it buflesson's theme-neutral look."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield
