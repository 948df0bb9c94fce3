"""The result of one exercise check: text in a terminal, a coloured box in Jupyter."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from buflesson.i18n import N_, language, tr

PASSED = "passed"
FAILED = "failed"
NOT_ATTEMPTED = "not attempted"

_LABELS = {PASSED: N_("PASSED"), FAILED: N_("NOT YET"), NOT_ATTEMPTED: N_("NOT ATTEMPTED YET")}
_EXERCISE = N_("Exercise {id}: {title}")
_HINT = N_("Hint:")
# Each box follows the JupyterLab theme through its CSS variables: the accent is the theme's
# success, error or neutral colour; the fill is that accent mixed lightly into the page background;
# the text is the theme's own content colour (black on light themes, white on dark ones). Outside
# JupyterLab (no variables) the fallbacks give the light look.
_ACCENTS = {
    PASSED: "var(--jp-success-color1, #1e7b34)",
    FAILED: "var(--jp-error-color1, #b3261e)",
    NOT_ATTEMPTED: "var(--jp-layout-color4, #5f6b7a)",
}
_PAGE = "var(--jp-layout-color0, #ffffff)"
_TEXT = "var(--jp-content-font-color0, #111111)"
_FONT = "var(--jp-content-font-family, sans-serif)"


def box_style(status: str) -> str:
    """The inline CSS of a check box of `status`, in the colours of the current JupyterLab theme."""
    accent = _ACCENTS[status]
    return (
        f"background:color-mix(in srgb, {accent} 13%, {_PAGE});color:{_TEXT};"
        f"border-left:6px solid {accent};padding:8px 12px;margin:4px 0;border-radius:4px;"
        f"font-family:{_FONT};line-height:1.4"
    )


def _html(text: str) -> str:
    """Escaped text, with `code` spans (as in the lessons' markdown) in code font."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


@dataclass(frozen=True)
class CheckResult:
    """What `check` found: the exercise, a status, a short message and a hint when it failed.

    The title, message and hint are text in the language that was current when the check ran,
    recorded in `language`; the box's own labels (PASSED, Hint) are shown in that language too."""

    exercise: str
    title: str
    status: str
    message: str
    hint: str = ""
    language: str = field(default_factory=language, compare=False)

    @property
    def passed(self) -> bool:
        """True only when the answer passed every test of the exercise."""
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def _label(self) -> str:
        return tr(_LABELS[self.status], self.language)

    def _heading(self, exercise: str, title: str) -> str:
        return tr(_EXERCISE, self.language).format(id=exercise, title=title)

    def _hint_label(self) -> tuple[str, str]:
        """'Hint:' and the space after it (none after a full-width colon '：')."""
        label = tr(_HINT, self.language)
        return label, "" if label.endswith("：") else " "

    def __str__(self) -> str:
        lines = [f"[{self._label()}] {self._heading(self.exercise, self.title)}", self.message]
        if self.hint:
            lines.append("".join(self._hint_label()) + self.hint)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        hint = ""
        if self.hint:
            label, space = self._hint_label()
            hint = f'<div style="margin-top:4px"><b>{label}</b>{space}{_html(self.hint)}</div>'
        return (
            f'<div class="buflesson-check buflesson-{self.status.replace(" ", "-")}" '
            f'style="{box_style(self.status)}">'
            f"<b>{self._label()}</b> &middot; {self._heading(html.escape(self.exercise), _html(self.title))}"
            f'<div style="margin-top:4px">{_html(self.message)}</div>{hint}</div>'
        )

    def to_dict(self) -> dict[str, str]:
        """The result as plain data, for gradebooks and feedback files."""
        return {
            "exercise": self.exercise,
            "title": self.title,
            "status": self.status,
            "message": self.message,
            "hint": self.hint,
        }
