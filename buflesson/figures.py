"""The look of buflesson's figures: readable on JupyterLab's light and dark themes alike.

A PNG cannot follow the theme, so the figures have no background of their own (the page shows
through) and draw text, axes and grid in a mid grey that keeps a contrast of about 4.35:1 against
both a white page and JupyterLab Dark's #111 page (no grey reaches WCAG's 4.5:1 on both; black or
white text would vanish on one of them). Coloured marks keep their colours.

Text in a figure is in the current language (`buflesson.i18n`) when a font on this machine can draw
it: Chinese needs a CJK font (Noto Sans CJK, WenQuanYi, PingFang, Microsoft YaHei, ...), which
matplotlib does not ship. Without one a figure keeps its English labels rather than draw empty boxes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache

from buflesson.i18n import language, render

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


# Fonts that draw Simplified Chinese, most common first (Linux, macOS, Windows).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "STHeiti",
    "Microsoft YaHei",
    "SimHei",
    "Droid Sans Fallback",
    "Arial Unicode MS",
)
_NEEDS_FONT = {"zh": CJK_FONTS}


# Words in the file names of those fonts: a font installed after matplotlib built its font cache is
# added from its file (matplotlib does not look again by itself).
_CJK_FILES = (
    "cjk",
    "wqy",
    "microhei",
    "zenhei",
    "pingfang",
    "msyh",
    "yahei",
    "simhei",
    "heiti",
    "hiragino",
    "droidsansfallback",
    "sourcehan",
    "notosanssc",
    "arialuni",
)


@cache
def installed_font(families: tuple[str, ...]) -> str | None:
    """The first of `families` that matplotlib finds on this machine, or None."""
    from matplotlib import font_manager

    def found() -> str | None:
        present = {font.name for font in font_manager.fontManager.ttflist}
        return next((family for family in families if family in present), None)

    if found() is None:
        for path in font_manager.findSystemFonts():
            name = path.replace("-", "").replace("_", "").replace(" ", "").lower()
            if any(word in name for word in _CJK_FILES):
                try:
                    font_manager.fontManager.addfont(path)
                except Exception:  # a font file matplotlib cannot read is no font for figures
                    continue
    return found()


def _font() -> str | None:
    """The font the current language needs beside matplotlib's own, None when it needs none."""
    families = _NEEDS_FONT.get(language() or "en")
    return installed_font(families) if families else None


def can_draw() -> bool:
    """True when figures can show text in the current language (English always; Chinese with a CJK font)."""
    return language() not in _NEEDS_FONT or _font() is not None


def bold() -> str:
    """The font weight for emphasis: "bold", or "normal" where the font the language needs has no bold
    face (matplotlib would log a warning for every figure)."""
    font = _font()
    if font is None:
        return "bold"
    from matplotlib import font_manager

    weights = [f.weight for f in font_manager.fontManager.ttflist if f.name == font]
    return "bold" if any(w == "bold" or (isinstance(w, int) and w >= 600) for w in weights) else "normal"


def caption(template: str, **values: object) -> str:
    """A figure's text in the current language when a font can draw it, else in English."""
    return render(template, None if can_draw() else "en", **values)


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """Build a figure inside this block to give it buflesson's theme-neutral look (and, for a
    language written in CJK characters, a font that draws them after matplotlib's own)."""
    import matplotlib

    style = dict(STYLE)
    font = _font()
    if font is not None:  # named families, not "sans-serif": a figure is drawn after this block ends
        style["font.family"] = [*matplotlib.rcParams["font.sans-serif"][:1], font]
    with matplotlib.rc_context(style):
        yield
