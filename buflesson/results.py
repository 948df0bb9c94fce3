"""The result of one exercise check: text in a terminal, a coloured box in Jupyter."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

PASSED = "passed"
FAILED = "failed"
NOT_ATTEMPTED = "not attempted"

_LABELS = {PASSED: "PASSED", FAILED: "NOT YET", NOT_ATTEMPTED: "NOT ATTEMPTED YET"}
# Dark text on a light fill keeps the box readable in JupyterLab's light and dark themes.
_COLOURS = {
    PASSED: ("#e6f4ea", "#1e7b34", "#0b3d17"),
    FAILED: ("#fdecea", "#b3261e", "#4a0d0a"),
    NOT_ATTEMPTED: ("#eef1f5", "#5f6b7a", "#1f2933"),
}


def _html(text: str) -> str:
    """Escaped text, with `code` spans (as in the lessons' markdown) in code font."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


@dataclass(frozen=True)
class CheckResult:
    """What `check` found: the exercise, a status, a short message and a hint when it failed."""

    exercise: str
    title: str
    status: str
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        """True only when the answer passed every test of the exercise."""
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        lines = [f"[{_LABELS[self.status]}] Exercise {self.exercise}: {self.title}", self.message]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        fill, border, text = _COLOURS[self.status]
        hint = ""
        if self.hint:
            hint = f'<div style="margin-top:4px"><b>Hint:</b> {_html(self.hint)}</div>'
        return (
            f'<div class="buflesson-check buflesson-{self.status.replace(" ", "-")}" '
            f'style="background:{fill};color:{text};border-left:6px solid {border};'
            f'padding:8px 12px;margin:4px 0;border-radius:4px;font-family:sans-serif">'
            f"<b>{_LABELS[self.status]}</b> &middot; Exercise {html.escape(self.exercise)}: "
            f"{_html(self.title)}"
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
