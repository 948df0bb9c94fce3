"""Feedback for a student: one Markdown and one HTML file, readable without Jupyter.

Each notebook: its status and score, then each exercise's result, message and hint. Hidden checks
show their title and message, never their code; no traceback is ever shown. The total counts one
notebook per lesson (`gradebook.counted`): a duplicate or an invalid extra copy is listed as not
counted. Everything a submission can put in a string (ids, file names, the messages of checks
that quote the student's values) is escaped for Markdown and HTML (`text`), and each student's
files have a name no other id gives (`feedback_name`), the same in every shard. A student whose
notebooks are Chinese reads it in Chinese: its own texts are marked for `buflesson/locale/`, and
the checks' messages were written in the notebook's language when they ran.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from buflesson.grading.gradebook import GRADED, NotebookResult, counted, number, write_atomic
from buflesson.grading.text import html_text, markdown_code, markdown_text, printable
from buflesson.i18n import N_, render, tr, using
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED

LABELS = {PASSED: N_("passed"), FAILED: N_("not yet"), NOT_ATTEMPTED: N_("not attempted")}
STATUS_TEXT = {
    "graded": N_("graded"),
    "timeout": N_("stopped: time limit"),
    "crashed": N_("stopped: the notebook's process died"),
    "invalid": N_("not graded"),
    "tampered": N_("graded, but cells you were not meant to change were changed"),
    "duplicate": N_("not graded: a newer copy was graded"),
}
HTML_LANG = {"zh": "zh-CN"}  # the `lang` of a feedback page
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


def feedback_language(results: list[NotebookResult]) -> str:
    """The language a student's feedback is written in: that of their notebooks (read from each
    notebook's data when it was found); where they differ, that of most of them, English on a tie."""
    languages = [getattr(result, "language", "en") for result in results] or ["en"]
    return max(sorted(set(languages), key=lambda code: code != "en"), key=languages.count)


def _title(check: dict) -> str:
    if check["hidden"]:
        name = render("hidden check {label}", label=check["of"])
    else:
        name = render("Exercise {label}", label=check["exercise"])
    return render("{name}: {title}", name=name, title=check["title"]) if check["title"] else name


def _label(table: dict[str, str], key: str) -> str:
    return tr(table[key]) if key in table else key


def _totals(results: list[NotebookResult]) -> tuple[list[NotebookResult], float, float]:
    counting = counted(results)
    return counting, sum(r.score for r in counting), sum(r.max_score for r in counting)


def markdown(student: str, results: list[NotebookResult]) -> str:
    """The feedback of one student as Markdown, in their language (`feedback_language`)."""
    with using(feedback_language(results)):
        return _markdown(student, results)


def _markdown(student: str, results: list[NotebookResult]) -> str:
    md = markdown_text
    counting, total, most = _totals(results)
    lines = ["# " + render("Feedback for {student}", student=md(student, NAME_LIMIT)), ""]
    lines += [render("Total: **{total} / {most}** points.", total=number(total), most=number(most)), ""]
    for result in sorted(results, key=lambda r: r.sort_key):
        counts = any(result is other for other in counting)
        score = f"{number(result.score)} / {number(result.max_score)}" if counts else tr("not counted")
        lines += [f"## {md(result.notebook, NAME_LIMIT)}: {score}", ""]
        status = md(_label(STATUS_TEXT, result.status))
        lines.append(
            render("File {file}, {status}.", file=markdown_code(result.file, NAME_LIMIT), status=status)
        )
        if result.error and result.status != GRADED:
            lines.append(render("Reason: {reason}", reason=md(result.error, TEXT_LIMIT)))
        lines.append("")
        for check in result.checks if counts else []:
            lines.append(
                "- "
                + render(
                    "**{title}**: {label} ({points} / {most}). {message}",
                    title=md(_title(check), TEXT_LIMIT),
                    label=md(_label(LABELS, check["status"])),
                    points=number(check["points"]),
                    most=number(check["max_points"]),
                    message=md(check["message"], TEXT_LIMIT),
                )
            )
            if check["hint"] and check["status"] != PASSED:
                lines.append("  " + render("Hint: {hint}", hint=md(check["hint"], TEXT_LIMIT)))
        if result.notes and counts:
            lines += ["", tr("Notes:")] + [f"- {md(note, TEXT_LIMIT)}" for note in result.notes]
        lines.append("")
    return "\n".join(lines)


def page(student: str, results: list[NotebookResult]) -> str:
    """The feedback of one student as an HTML page, in their language (`feedback_language`)."""
    code = feedback_language(results)
    with using(code):
        return _page(student, results, code)


def _page(student: str, results: list[NotebookResult], code: str) -> str:
    esc = html_text
    counting, total, most = _totals(results)
    heading = render("Feedback for {student}", student=esc(student, NAME_LIMIT))
    parts = [
        "<!doctype html>",
        f'<html lang="{HTML_LANG.get(code, code)}"><head><meta charset="utf-8">',
        f"<title>{heading}</title>",
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}"
        ".passed{color:#1e7b34}.failed{color:#b3261e}.not-attempted{color:#5f6b7a}"
        "li{margin:.4em 0}.hint{font-style:italic}</style></head><body>",
        f"<h1>{heading}</h1>",
        "<p>"
        + render("Total: <b>{total} / {most}</b> points.", total=number(total), most=number(most))
        + "</p>",
    ]
    for result in sorted(results, key=lambda r: r.sort_key):
        counts = any(result is other for other in counting)
        score = f"{number(result.score)} / {number(result.max_score)}" if counts else esc(tr("not counted"))
        parts.append(f"<h2>{esc(result.notebook, NAME_LIMIT)}: {score}</h2>")
        status = esc(_label(STATUS_TEXT, result.status))
        file = f"<code>{esc(result.file, NAME_LIMIT)}</code>"
        parts.append("<p>" + render("File {file}, {status}.", file=file, status=status) + "</p>")
        if result.error and result.status != GRADED:
            parts.append("<p>" + render("Reason: {reason}", reason=esc(result.error, TEXT_LIMIT)) + "</p>")
        if not counts:
            continue
        parts.append("<ul>")
        for check in result.checks:
            css = re.sub(r"[^a-z-]", "", str(check["status"]).replace(" ", "-"))
            hint = ""
            if check["hint"] and check["status"] != PASSED:
                shown = render("Hint: {hint}", hint=esc(check["hint"], TEXT_LIMIT))
                hint = f'<br><span class="hint">{shown}</span>'
            line = render(
                "<b>{title}</b>: {label} ({points} / {most}). {message}",
                title=esc(_title(check), TEXT_LIMIT),
                label=f'<span class="{css}">{esc(_label(LABELS, check["status"]))}</span>',
                points=number(check["points"]),
                most=number(check["max_points"]),
                message=esc(check["message"], TEXT_LIMIT),
            )
            parts.append(f"<li>{line}{hint}</li>")
        parts.append("</ul>")
        if result.notes:
            notes = "".join(f"<li>{esc(n, TEXT_LIMIT)}</li>" for n in result.notes)
            parts.append(f"<p>{esc(tr('Notes:'))}</p><ul>{notes}</ul>")
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


def parts_feedback(parts: list[Path]) -> dict[str, str]:
    """The feedback files (name -> text) of shard output folders, for `gradebook merge`. Each
    student's files are in one shard, so a name two parts hold with different texts means parts of
    different runs: a ValueError, whatever their order. Links, folders and temporary files (a
    leading dot) are not taken."""
    found: dict[str, tuple[str, Path]] = {}
    for part in map(Path, parts):
        folder = part / "feedback"
        if not folder.is_dir():
            continue
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            handle = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with open(handle, "rb") as file:
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    continue
                text = file.read().decode("utf-8", "replace")
            if entry.name in found and found[entry.name][0] != text:
                raise ValueError(
                    f"{found[entry.name][1]} and {part} both hold feedback/{entry.name}, with different "
                    "texts: merge the shards of one run"
                )
            found[entry.name] = (text, part)
    return {name: text for name, (text, _part) in found.items()}
