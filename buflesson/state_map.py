"""`state_map(model)`: a figure of every tensor of a model, by kind, and what PyTorch does with it.

One row per tensor (from `inventory`), grouped by kind; three columns say whether
`state_dict()` saves it, `.to()` moves it and `optimizer.step()` trains it. The
figure is built without pyplot, so Jupyter shows it once, where the cell returns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from buflesson.figures import FAINT, INK, bold, caption, styled
from buflesson.i18n import N_
from buflesson.inventory import (
    BUFFER,
    COMPUTED,
    EXTRA_STATE,
    NON_PERSISTENT_BUFFER,
    NONE_BUFFER,
    PARAMETER,
    PLAIN,
    REFERENCE,
    TensorRow,
    inventory,
)

if TYPE_CHECKING:  # matplotlib is imported by state_map itself: `import buflesson` stays light
    from matplotlib.figure import Figure

KIND_ORDER = [PARAMETER, BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PLAIN, REFERENCE, COMPUTED, EXTRA_STATE]
# Okabe-Ito colours: distinct for the common kinds of colour blindness.
KIND_COLOURS = {
    PARAMETER: "#0072B2",
    BUFFER: "#009E73",
    NON_PERSISTENT_BUFFER: "#E69F00",
    NONE_BUFFER: "#999999",
    PLAIN: "#D55E00",
    REFERENCE: "#56B4E9",
    COMPUTED: "#CC79A7",
    EXTRA_STATE: "#F0E442",
}
COLUMNS = [
    (N_("saved"), N_("in state_dict()")),
    (N_("moved"), N_("by .to()")),
    (N_("trained"), N_("by optimizer.step()")),
]
_NO_EDGE = INK  # a "no" tile is an outline only: no fill to glare on a dark page


def _ink(fill: str) -> str:
    """Black or white text, whichever reads better on `fill` (a #rrggbb colour)."""
    red, green, blue = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5 else "white"


def _label(row: TensorRow) -> str:
    if row.kind == PARAMETER and not row.requires_grad:
        return caption("frozen parameter")
    return caption(row.kind)


def _flags(row: TensorRow) -> list[bool]:
    return [row.in_state_dict, row.follows_to, row.stepped_by_optimizer]


def _ordered(rows: list[TensorRow]) -> list[TensorRow]:
    """Rows grouped by kind in `KIND_ORDER`, each group in the model's own order."""
    return sorted(rows, key=lambda row: KIND_ORDER.index(row.kind))


def state_map(model: nn.Module, title: str | None = None) -> Figure:
    """Draw every tensor of `model` by kind, with what is saved, moved and trained.

    Returns a matplotlib `Figure`; in Jupyter, end a cell with it to show it.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyBboxPatch, Patch

    rows = _ordered(list(inventory(model)))
    yes, no, emphasis = caption("yes"), caption("no"), bold()
    with styled():
        height = 1.9 + 0.42 * max(len(rows), 1)
        fig = Figure(figsize=(8.0, height), layout="constrained")
        ax = fig.add_subplot()
        for y, row in enumerate(rows):
            colour = KIND_COLOURS[row.kind]
            for x, flag in enumerate(_flags(row)):
                ax.add_patch(
                    FancyBboxPatch(
                        (x - 0.34, y - 0.34),
                        0.68,
                        0.68,
                        boxstyle="round,pad=0,rounding_size=0.08",
                        facecolor=colour if flag else "none",
                        edgecolor=colour if flag else _NO_EDGE,
                        linewidth=1.2,
                    )
                )
                ax.text(
                    x,
                    y,
                    yes if flag else no,
                    ha="center",
                    va="center",
                    fontsize=10,
                    fontweight=emphasis if flag else "normal",
                    color=_ink(colour) if flag else INK,
                )
            ax.add_patch(FancyBboxPatch((2.75, y - 0.15), 0.12, 0.3, boxstyle="square,pad=0", color=colour))
            ax.text(2.95, y, _label(row), ha="left", va="center", fontsize=10)
        for y in range(1, len(rows)):
            if rows[y].kind != rows[y - 1].kind:
                ax.axhline(y - 0.5, color=FAINT, linewidth=0.8)
        ax.set_xlim(-0.55, 4.7)
        ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)
        ax.set_yticks(range(len(rows)), [row.name for row in rows], fontsize=10, family="monospace")
        ax.set_xticks(
            range(len(COLUMNS)), [f"{caption(word)}\n{caption(how)}" for word, how in COLUMNS], fontsize=10
        )
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.text(2.75, -0.75, caption("kind"), ha="left", va="bottom", fontsize=10)
        kinds = [kind for kind in KIND_ORDER if any(row.kind == kind for row in rows)]
        handles = [Patch(facecolor=KIND_COLOURS[kind], label=caption(kind)) for kind in kinds]
        handles.append(
            Line2D(
                [],
                [],
                marker="s",
                linestyle="",
                markerfacecolor="none",
                markeredgecolor=_NO_EDGE,
                markersize=10,
                label=no,
            )
        )
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize=9)
        fig.suptitle(
            title
            or caption(
                "Every tensor of {model}: what is saved, moved and trained", model=type(model).__name__
            )
        )
        if not rows:
            ax.text(1, 0, caption("(no tensors)"), ha="center", va="center")
    return fig
