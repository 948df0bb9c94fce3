"""Feedback for a student: one Markdown and one HTML file, readable without Jupyter.

Each notebook: its status and score, then each exercise's result, message and hint. Hidden checks
show their title and message, never their code; no traceback is ever shown. The total counts one
notebook per lesson (`gradebook.counted`): a duplicate or an invalid extra copy is listed as not
counted. Everything a submission can put in a string (ids, file names, the messages of checks
that quote the student's values) is escaped for Markdown and HTML (`text`), and each student's
files have a name no other id gives (`feedback_name`), the same in every shard.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from buflesson.grading.gradebook import GRADED, NotebookResult, counted, number, write_atomic
from buflesson.grading.text import html_text, markdown_code, markdown_text, printable
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED

LABELS = {PASSED: "passed", FAILED: "not yet", NOT_ATTEMPTED: "not attempted"}
STATUS_TEXT = {
    "graded": "graded",
    "timeout": "stopped: time limit",
    "crashed": "stopped: the notebook's process died",
    "invalid": "not graded",
    "tampered": "graded, but cells you were not meant to change were changed",
    "duplicate": "not graded: a newer copy was graded",
}
NAME_LIMIT, TEXT_LIMIT = 120, 2000  # characters shown of a name (id, file) and of a message
_PLAIN = re.compile(r"[\w@][\w.@-]{0,63}")
_RESERVED = {"con", "prn", "aux", "nul", *(f"{port}{n}" for port in ("com", "lpt") for n in range(10))}


def feedback_name(student: str) -> str:
    """The file name (without .md/.html) of a student's feedback: the id itself when it is a plain
    name (letters, digits, `_.@-`, lower case, at most 64 characters), else a readable part and a
    hash of the exact id after a `+` (which no plain name has). So two ids never share a file, not
    even on a case-insensitive disk, and every shard names a student's files alike."""
    if _PLAIN.fullmatch(student) and student == student.casefold() and student not in _RESERVED:
        return student
    readable = re.sub(r"[^\w.@-]+", "_", printable(student)).strip("._-")[:40].strip("._-")
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable or 'id'}+{digest}"


def _title(check: dict) -> str:
    name = "hidden check" if check["hidden"] else "Exercise"
    label = check["of"] if check["hidden"] else check["exercise"]
    return f"{name} {label}" + (f": {check['title']}" if check["title"] else "")


def _totals(results: list[NotebookResult]) -> tuple[list[NotebookResult], float, float]:
    counting = counted(results)
    return counting, sum(r.score for r in counting), sum(r.max_score for r in counting)


def markdown(student: str, results: list[NotebookResult]) -> str:
    """The feedback of one student as Markdown."""
    md = markdown_text
    counting, total, most = _totals(results)
    lines = [f"# Feedback for {md(student, NAME_LIMIT)}", ""]
    lines += [f"Total: **{number(total)} / {number(most)}** points.", ""]
    for result in sorted(results, key=lambda r: r.sort_key):
        counts = any(result is other for other in counting)
        score = f"{number(result.score)} / {number(result.max_score)}" if counts else "not counted"
        lines += [f"## {md(result.notebook, NAME_LIMIT)}: {score}", ""]
        status = STATUS_TEXT.get(result.status, result.status)
        lines.append(f"File {markdown_code(result.file, NAME_LIMIT)}, {md(status)}.")
        if result.error and result.status != GRADED:
            lines.append(f"Reason: {md(result.error, TEXT_LIMIT)}")
        lines.append("")
        for check in result.checks if counts else []:
            label = LABELS.get(check["status"], check["status"])
            lines.append(
                f"- **{md(_title(check), TEXT_LIMIT)}**: {md(label)} "
                f"({number(check['points'])} / {number(check['max_points'])}). "
                f"{md(check['message'], TEXT_LIMIT)}"
            )
            if check["hint"] and check["status"] != PASSED:
                lines.append(f"  Hint: {md(check['hint'], TEXT_LIMIT)}")
        if result.notes and counts:
            lines += ["", "Notes:"] + [f"- {md(note, TEXT_LIMIT)}" for note in result.notes]
        lines.append("")
    return "\n".join(lines)


def page(student: str, results: list[NotebookResult]) -> str:
    """The feedback of one student as an HTML page."""
    esc = html_text
    counting, total, most = _totals(results)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback for {esc(student, NAME_LIMIT)}</title>",
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}"
        ".passed{color:#1e7b34}.failed{color:#b3261e}.not-attempted{color:#5f6b7a}"
        "li{margin:.4em 0}.hint{font-style:italic}</style></head><body>",
        f"<h1>Feedback for {esc(student, NAME_LIMIT)}</h1>",
        f"<p>Total: <b>{number(total)} / {number(most)}</b> points.</p>",
    ]
    for result in sorted(results, key=lambda r: r.sort_key):
        counts = any(result is other for other in counting)
        score = f"{number(result.score)} / {number(result.max_score)}" if counts else "not counted"
        parts.append(f"<h2>{esc(result.notebook, NAME_LIMIT)}: {score}</h2>")
        status = esc(STATUS_TEXT.get(result.status, result.status))
        parts.append(f"<p>File <code>{esc(result.file, NAME_LIMIT)}</code>, {status}.</p>")
        if result.error and result.status != GRADED:
            parts.append(f"<p>Reason: {esc(result.error, TEXT_LIMIT)}</p>")
        if not counts:
            continue
        parts.append("<ul>")
        for check in result.checks:
            css = re.sub(r"[^a-z-]", "", str(check["status"]).replace(" ", "-"))
            hint = ""
            if check["hint"] and check["status"] != PASSED:
                hint = f'<br><span class="hint">Hint: {esc(check["hint"], TEXT_LIMIT)}</span>'
            parts.append(
                f'<li><b>{esc(_title(check), TEXT_LIMIT)}</b>: <span class="{css}">'
                f"{esc(LABELS.get(check['status'], check['status']))}</span> "
                f"({number(check['points'])} / {number(check['max_points'])}). "
                f"{esc(check['message'], TEXT_LIMIT)}{hint}</li>"
            )
        parts.append("</ul>")
        if result.notes:
            notes = "".join(f"<li>{esc(n, TEXT_LIMIT)}</li>" for n in result.notes)
            parts.append(f"<p>Notes:</p><ul>{notes}</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_feedback(folder: Path, student: str, results: list[NotebookResult]) -> Path:
    """Write `folder/NAME.md` and `folder/NAME.html` for one student (NAME: `feedback_name`);
    returns the Markdown path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = feedback_name(student)
    write_atomic(folder / f"{name}.html", page(student, results))
    target = folder / f"{name}.md"
    write_atomic(target, markdown(student, results))
    return target
