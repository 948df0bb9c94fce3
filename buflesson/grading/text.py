"""Submitted text made safe for where the grader shows it: a terminal, a CSV cell, Markdown, HTML.

Student ids, file names, notebook names and the messages of checks and errors all come, in part,
from submissions. Each output has its own way to be abused (escape sequences in a terminal,
formulas in a spreadsheet, raw HTML and `javascript:` links in Markdown) and its own escape here.
Every function keeps the text readable: what it changes, it shows as an escape, not a blank.
"""

from __future__ import annotations

import html
import re
import unicodedata

# Characters that reorder the text around them: they can make `gpj.exe` read as `exe.jpg`.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"), with the full-width
# forms some spreadsheets also accept, and `|` and `%` of older DDE payloads.
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
# A spreadsheet that splits lines on `;` (its list separator in many locales) starts a cell after
# every `;`, even inside quotes: a formula may not follow one either.
_AFTER_SEMICOLON = re.compile(r';(?=[\s"]*[=+\-@|%\uff1d\uff0b\uff0d\uff20])')
_SURROGATE = re.compile("[\ud800-\udfff]")
_MARKDOWN = re.compile(r"([\\`*_\[\]#~])")
_MARKDOWN_HTML = {"<": "&lt;", ">": "&gt;", "|": "&#124;"}
_AUTOLINK = re.compile(r"(?<=[A-Za-z])(?=://)|(?<=\bwww)(?=\.)", re.IGNORECASE)


def _surrogate(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def fs_text(text: str) -> str:
    """Text any encoder takes: the undecodable bytes of a file name (`os.fsdecode` makes them lone
    surrogates) shown as `\\xff`, any other lone surrogate as `\\ud800`."""
    return _SURROGATE.sub(_surrogate, text)


def printable(text: object, limit: int | None = None) -> str:
    """`text` with every control character, line break, direction override and undecodable byte
    shown as an escape (`\\x1b`, `\\u202e`, `\\xff`), cut to `limit` characters (ending in `…`)."""
    out = []
    for char in fs_text(str(text)):
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    shown = "".join(out)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(0, limit - 1)] + "…"
    return shown


def one_line(text: object, limit: int | None = None) -> str:
    """`printable`, with every run of whitespace (line breaks included) made one space first."""
    return printable(" ".join(str(text).split()), limit)


def csv_cell(value: object) -> str:
    """A gradebook cell a spreadsheet shows as text: printable, and with a `'` in front when it
    would start a formula (numbers such as `-1` stay numbers), also after a `;`. Applying it twice
    changes nothing."""
    text = _AFTER_SEMICOLON.sub(";'", printable(value))
    if not _NUMBER.fullmatch(text) and text.lstrip().startswith(_FORMULA):
        return "'" + text
    return text


def markdown_text(text: object, limit: int | None = None) -> str:
    """Text that Markdown shows as it is: one line (no heading, list or table can start), no raw
    HTML, no link, image or bare URL made a link, no emphasis; readable in the .md file itself."""
    escaped = _AUTOLINK.sub("\\\\", _MARKDOWN.sub(r"\\\1", one_line(text, limit)))
    return "".join(_MARKDOWN_HTML.get(char, char) for char in escaped)


def markdown_code(text: object, limit: int | None = None) -> str:
    """`text` as a Markdown code span (shown literally, HTML included), fenced so that no backtick
    inside can close it."""
    shown = printable(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if shown.startswith(("`", " ")) or shown.endswith(("`", " ")) else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def html_text(text: object, limit: int | None = None) -> str:
    """Text for an HTML page: printable and escaped (quotes too, so it is safe in attributes)."""
    return html.escape(printable(text, limit), quote=True)
