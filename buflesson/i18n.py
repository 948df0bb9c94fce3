"""The language of buflesson's messages: English, or a translation kept in `buflesson/locale/`.

Every message a student reads (check titles, messages, hints, table headings, audit findings) is
written in English in the code, and that English text is the key of its translation in
`locale/LANG.json`. `language("zh")` switches the process (a lesson's first cell does it in the
Chinese notebooks); `tr(text)` gives the translation of `text`, or `text` itself where there is none.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = {"en": "English", "zh": "简体中文"}
_LOCALE = Path(__file__).parent / "locale"
_current = ["en"]


def language(code: str | None = None) -> str | None:
    """Set the language of buflesson's messages (`"en"` or `"zh"`); without an argument, return it."""
    if code is None:
        return _current[0]
    if code not in LANGUAGES:
        raise ValueError(f"unknown language {code!r}; buflesson speaks {', '.join(LANGUAGES)}")
    _current[0] = code
    return None


@cache
def catalog(code: str) -> dict[str, str]:
    """English text -> its translation, for language `code` (empty for English)."""
    path = _LOCALE / f"{code}.json"
    if code == "en" or not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def tr(text: str, code: str | None = None) -> str:
    """`text` in the current language (or `code`), falling back to the English text."""
    return catalog(code or _current[0]).get(text, text)


class using:
    """`with using("zh"): ...` renders messages in another language for a while (the grader's
    feedback for a Chinese notebook), then puts the previous language back."""

    def __init__(self, code: str) -> None:
        self.code, self.previous = code, None

    def __enter__(self) -> None:
        self.previous = _current[0]
        language(self.code)

    def __exit__(self, *exc: object) -> None:
        _current[0] = self.previous or "en"
