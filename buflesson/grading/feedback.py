"""Feedback for a student: one Markdown and one HTML file, readable without Jupyter.

Each notebook: its status and score, then each exercise's result, message and hint. Hidden checks
show their title and message, never their code; no traceback is ever shown.
"""

from __future__ import annotations

import html
from pathlib import Path

from buflesson.grading.gradebook import GRADED, NotebookResult, number, write_atomic
from buflesson.grading.submissions import safe_id
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED

LABELS = {PASSED: "passed", FAILED: "not yet", NOT_ATTEMPTED: "not attempted"}
STATUS_TEXT = {
    "graded": "graded",
    "timeout": "stopped: time limit",
    "crashed": "stopped: the notebook's process died",
    "invalid": "not graded: the file could not be read",
    "tampered": "graded, but cells you were not meant to change were changed",
    "duplicate": "not graded: a newer copy was graded",
}


def _title(check: dict) -> str:
    name = "hidden check" if check["hidden"] else "Exercise"
    label = check["of"] if check["hidden"] else check["exercise"]
    return f"{name} {label}" + (f": {check['title']}" if check["title"] else "")


def markdown(student: str, results: list[NotebookResult]) -> str:
    lines = [f"# Feedback for {student}", ""]
    total, most = sum(r.score for r in results), sum(r.max_score for r in results)
    lines += [f"Total: **{number(total)} / {number(most)}** points.", ""]
    for result in sorted(results, key=lambda r: r.sort_key):
        lines += [f"## {result.notebook}: {number(result.score)} / {number(result.max_score)}", ""]
        lines.append(f"File `{result.file}`, {STATUS_TEXT.get(result.status, result.status)}.")
        if result.error and result.status != GRADED:
            lines.append(f"Reason: {result.error}")
        lines.append("")
        for check in result.checks:
            lines.append(
                f"- **{_title(check)}**: {LABELS.get(check['status'], check['status'])} "
                f"({number(check['points'])} / {number(check['max_points'])}). {check['message']}"
            )
            if check["hint"] and check["status"] != PASSED:
                lines.append(f"  Hint: {check['hint']}")
        if result.notes:
            lines += ["", "Notes:"] + [f"- {note}" for note in result.notes]
        lines.append("")
    return "\n".join(lines)


def page(student: str, results: list[NotebookResult]) -> str:
    esc = html.escape
    total, most = sum(r.score for r in results), sum(r.max_score for r in results)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback for {esc(student)}</title>",
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}"
        ".passed{color:#1e7b34}.failed{color:#b3261e}.not-attempted{color:#5f6b7a}"
        "li{margin:.4em 0}.hint{font-style:italic}</style></head><body>",
        f"<h1>Feedback for {esc(student)}</h1>",
        f"<p>Total: <b>{number(total)} / {number(most)}</b> points.</p>",
    ]
    for result in sorted(results, key=lambda r: r.sort_key):
        parts.append(f"<h2>{esc(result.notebook)}: {number(result.score)} / {number(result.max_score)}</h2>")
        status = esc(STATUS_TEXT.get(result.status, result.status))
        parts.append(f"<p>File <code>{esc(result.file)}</code>, {status}.</p>")
        if result.error and result.status != GRADED:
            parts.append(f"<p>Reason: {esc(result.error)}</p>")
        parts.append("<ul>")
        for check in result.checks:
            css = check["status"].replace(" ", "-")
            hint = ""
            if check["hint"] and check["status"] != PASSED:
                hint = f'<br><span class="hint">Hint: {esc(check["hint"])}</span>'
            parts.append(
                f'<li><b>{esc(_title(check))}</b>: <span class="{css}">'
                f"{esc(LABELS.get(check['status'], check['status']))}</span> "
                f"({number(check['points'])} / {number(check['max_points'])}). "
                f"{esc(check['message'])}{hint}</li>"
            )
        parts.append("</ul>")
        if result.notes:
            parts.append("<p>Notes:</p><ul>" + "".join(f"<li>{esc(n)}</li>" for n in result.notes) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_feedback(folder: Path, student: str, results: list[NotebookResult]) -> Path:
    """Write `folder/ID.md` and `folder/ID.html` for one student; returns the Markdown path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = safe_id(student)
    write_atomic(folder / f"{name}.html", page(student, results))
    target = folder / f"{name}.md"
    write_atomic(target, markdown(student, results))
    return target
