"""Text as a monospace terminal or notebook shows it: a CJK character takes two columns.

`width` measures a string in columns, `ljust`/`rjust` pad to a width in columns, and `wrap` breaks
text into lines of at most a width in columns: at spaces, as `textwrap` does, and also between two
CJK characters (Chinese has no spaces), never before a closing mark (，。、：；）) or after an
opening one (（“). Text without wide characters is wrapped by `textwrap.wrap` itself.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata

# A line may not start with these, nor end with the opening ones (the usual Chinese line-break rule).
_NO_START = set("，。、：；！？）》」』”’】〕…%,.:;!?)]}")
_NO_END = set("（《「『“‘【〔([{")


def char_width(char: str) -> int:
    """Columns one character takes: 2 for wide and full-width characters, 0 for combining marks."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns `text` takes in a monospace font."""
    if text.isascii():
        return len(text)
    return sum(char_width(char) for char in text)


def ljust(text: str, columns: int) -> str:
    """`text` padded with spaces on the right to `columns` columns."""
    return text + " " * max(0, columns - width(text))


def rjust(text: str, columns: int) -> str:
    """`text` padded with spaces on the left to `columns` columns."""
    return " " * max(0, columns - width(text)) + text


def _is_wide(char: str) -> bool:
    return char_width(char) == 2


def _units(text: str) -> list[str]:
    """`text` cut where a line may break: runs of spaces, words, and single wide characters (with the
    closing marks that follow them and the opening marks before them kept attached)."""
    pieces = re.findall(r"\s+|[^\s]", text)
    units: list[str] = []
    for piece in pieces:
        if not units:
            units.append(piece)
            continue
        last = units[-1]
        if piece.isspace() or last.isspace():
            units.append(piece)
        elif piece in _NO_START or last[-1] in _NO_END:
            units[-1] = last + piece
        elif _is_wide(piece) or _is_wide(last[-1]):
            units.append(piece)
        else:
            units[-1] = last + piece
    return units


def wrap(text: str, columns: int, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
    """`text` in lines of at most `columns` columns (a word longer than a line is cut), spaces
    collapsed as `textwrap` does; `[]` for empty text."""
    if not any(_is_wide(char) for char in text + initial_indent + subsequent_indent):
        return textwrap.wrap(
            text,
            columns,
            initial_indent=initial_indent,
            subsequent_indent=subsequent_indent,
            break_on_hyphens=False,
        )
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    lines: list[str] = []
    line, used = initial_indent, width(initial_indent)
    fresh = True  # nothing but the indent on this line yet
    for unit in _units(text):
        if unit.isspace():
            if not fresh:
                line, used = line + " ", used + 1
            continue
        size = width(unit)
        if not fresh and used + size > columns:
            lines.append(line.rstrip())
            line = subsequent_indent
            used, fresh = width(line), True
        while used + size > columns and len(unit) > 1:  # longer than a whole line: cut it
            room = columns - used
            cut, taken = 0, 0
            while cut < len(unit) and taken + char_width(unit[cut]) <= room:
                taken += char_width(unit[cut])
                cut += 1
            cut = max(cut, 1)
            lines.append(line + unit[:cut])
            unit, size = unit[cut:], width(unit[cut:])
            line = subsequent_indent
            used = width(line)
        line, used, fresh = line + unit, used + size, False
    if not fresh:
        lines.append(line.rstrip())
    return lines
