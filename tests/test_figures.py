"""The figures read on a white page and on JupyterLab Dark's #111 page alike."""

import pytest
from matplotlib.colors import to_rgba
from matplotlib.text import Text

from buflesson import everything_model, plot_running_mean, state_map
from buflesson.figures import INK

PAGES = {"light": (1.0, 1.0, 1.0), "dark": (17 / 255, 17 / 255, 17 / 255)}


def luminance(rgb) -> float:
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a, b) -> float:
    low, high = sorted([luminance(a), luminance(b)])
    return (high + 0.05) / (low + 0.05)


FIGURES = {"running_mean": plot_running_mean, "state_map": lambda: state_map(everything_model())}


@pytest.mark.parametrize("name", FIGURES)
def test_the_figure_has_no_background_of_its_own(name):
    figure = FIGURES[name]()
    assert to_rgba(figure.get_facecolor())[3] == 0
    assert all(to_rgba(ax.get_facecolor())[3] == 0 for ax in figure.get_axes())


@pytest.mark.parametrize("name", FIGURES)
def test_text_on_the_page_reads_on_both_themes(name):
    figure = FIGURES[name]()
    figure.canvas.draw()  # tick labels exist once drawn
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    on_page = [t for t in texts if t.get_text() != "yes"]  # "yes" sits on its coloured tile
    assert len(on_page) > 5
    for text in on_page:
        for page, rgb in PAGES.items():
            ratio = contrast(to_rgba(text.get_color()), rgb)
            assert ratio >= 4.3, f"{text.get_text()!r} in {text.get_color()} on the {page} page: {ratio:.2f}"


def test_the_ink_is_a_grey_between_the_two_pages():
    ratios = [contrast(to_rgba(INK), rgb) for rgb in PAGES.values()]
    assert min(ratios) >= 4.3 and abs(ratios[0] - ratios[1]) < 0.3
