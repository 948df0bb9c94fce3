"""The language of buflesson's messages: English, or a translation kept in `buflesson/locale/`.

Every message a student reads (check titles, messages, hints, table headings, audit findings) is
written in English in the code, and that English text is the key of its translation in
`locale/LANG.json`. `language("zh")` switches the process (a lesson's first cell does it in the
Chinese notebooks); `tr(text)` gives the translation of `text`, or `text` itself where there is none.

How the code marks its texts, so that `messages()` finds every one of them:

- a text shown as it is: `tr("...")` where it is shown, or `N_("...")` where it is defined (a
  constant, a dict of labels) and `tr(constant)` where it is shown;
- a text with values: `Fail(template, hint, **values)`, `Msg(template, **values)` (rendered in the
  current language whenever it is turned into a string) or `render(template, **values)` (rendered
  now); in a figure, `figures.caption(template, **values)`. Names, numbers and tensors' values are
  values; a value that is itself prose is a `Msg`.
A template is a literal (or a marked constant), never an f-string: its translation keeps its
`{placeholders}`, and the same sentence is translated once for every name and number it is used with.
"""

from __future__ import annotations

import ast
import json
import string
import threading
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

LANGUAGES = {"en": "English", "zh": "简体中文"}
_LOCALE = Path(__file__).parent / "locale"
_current = ["en"]
# `using` sets the language of one thread: the grader writes feedback in several languages at once.
_local = threading.local()
_missing: set[tuple[str, str]] = set()  # (language, English text) looked up without a translation


def language(code: str | None = None) -> str | None:
    """Set the language of buflesson's messages (`"en"` or `"zh"`); without an argument, return it."""
    if code is None:
        return _now()
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
    code = code or _now()
    if code == "en":
        return text
    found = catalog(code).get(text)
    if found is None:
        _missing.add((code, text))
        return text
    return found


def N_(text: str) -> str:  # noqa: N802 (the usual name of gettext's marker)
    """Mark a constant text as translatable where it is defined; `tr()` it where it is shown."""
    return text


def render(template: str, code: str | None = None, /, **values: object) -> str:
    """`template` in the current language (or `code`), filled with `values` (`str.format`).

    Without values the text is not formatted (its braces are its own). A value that is a `Msg` is
    rendered in the same language."""
    text = tr(template, code)
    if not values:
        return text
    if code is None or code == _now():
        return fill(text, values)
    with using(code):
        return fill(text, values)


_FORMATTER = string.Formatter()


def _cjk(char: str) -> bool:
    """A character of CJK text: a Han character or full-width punctuation (no space around it)."""
    return "\u3000" <= char <= "\u9fff" or "\uff00" <= char <= "\uffef"


def fill(template: str, values: dict[str, object]) -> str:
    """`template.format(**values)`, except that a space the template puts between a placeholder and
    CJK text is dropped when the value itself starts or ends with CJK text ("{what} 改变了" reads
    "evaluate(model, x) 改变了" but "构建模型改变了"). Text without CJK comes out as `str.format` gives it."""
    parts: list[str] = []
    is_value: list[bool] = []
    for literal, field, spec, conversion in _FORMATTER.parse(template):
        if literal:
            parts.append(literal)
            is_value.append(False)
        if field is not None:
            value, _ = _FORMATTER.get_field(field, (), values)
            value = _FORMATTER.convert_field(value, conversion)
            parts.append(_FORMATTER.format_field(value, _FORMATTER.vformat(spec or "", (), values)))
            is_value.append(True)
    return _tight(parts, is_value)


def _tight(parts: list[str], is_value: list[bool]) -> str:
    """The parts joined, less each space at the edge of a literal part that would stand between two
    CJK characters because the value next to it starts or ends with CJK text."""
    parts = list(parts)
    for i in range(len(parts) - 1):
        left, right = parts[i], parts[i + 1]
        if is_value[i] and right[:1] == " " and left[-1:] and _cjk(left[-1]) and _cjk(right[1:2] or "a"):
            parts[i + 1] = right[1:]
        elif (
            is_value[i + 1] and left[-1:] == " " and right[:1] and _cjk(right[0]) and _cjk(left[-2:-1] or "a")
        ):
            parts[i] = left[:-1]
    return "".join(parts)


class Msg:
    """A message that is rendered when it is shown: a template and its values.

    `str(msg)` (and `f"{msg}"`) gives it in the current language, so a `Msg` passed as a value of
    another message (what the student's code was doing when it raised) is translated with it."""

    __slots__ = ("template", "values")

    def __init__(self, template: str, /, **values: object) -> None:
        self.template = template
        self.values = values

    def __str__(self) -> str:
        return render(self.template, **self.values)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        shown = "".join(f", {name}={value!r}" for name, value in self.values.items())
        return f"Msg({self.template!r}{shown})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and (self.template, self.values) == (other.template, other.values)

    def __hash__(self) -> int:
        return hash((self.template, tuple(sorted((k, repr(v)) for k, v in self.values.items()))))


COMMA = N_(", ")


def listing(items: Iterable[object], separator: str = COMMA) -> str:
    """Items of a sentence joined as the current language writes a list: `a, b` or `a、b`
    (`separator` is an English separator marked with `N_`: `", "`, `" and "`, `"; "`)."""
    texts = [str(item) for item in items]
    glue = tr(separator)
    parts, is_value = texts[:1], [True] * len(texts[:1])
    for text in texts[1:]:
        parts += [glue, text]
        is_value += [False, True]
    return _tight(parts, is_value)


class Listed:
    """Items (texts, `Msg`s) shown as a list in the language current when it is shown: `a, b`."""

    __slots__ = ("items", "separator")

    def __init__(self, items: Iterable[object], separator: str = COMMA) -> None:
        self.items = list(items)
        self.separator = separator

    def __str__(self) -> str:
        return listing(self.items, self.separator)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"Listed({self.items!r}, {self.separator!r})"


def after_label(label: str) -> str:
    """The space that follows a label ending in a colon: one after `Hint:`, none after `提示：`."""
    return "" if label.endswith("：") else " "


def _now() -> str:
    """The language of this thread: a `using` block's, else the process's (`language`)."""
    return getattr(_local, "code", None) or _current[0]


class using:
    """`with using("zh"): ...` renders messages in another language for a while (the grader's
    checks and feedback for a Chinese notebook), then puts the previous language back. It holds
    for the thread it runs in, so the grader's threads can each grade a notebook of their own."""

    def __init__(self, code: str) -> None:
        if code not in LANGUAGES:
            raise ValueError(f"unknown language {code!r}; buflesson speaks {', '.join(LANGUAGES)}")
        self.code, self.previous = code, None

    def __enter__(self) -> None:
        self.previous = getattr(_local, "code", None)
        _local.code = self.code

    def __exit__(self, *exc: object) -> None:
        _local.code = self.previous


# -- finding the texts ----------------------------------------------------------------------------

# Calls whose first arguments are English texts to translate: name -> how many leading arguments.
MARKERS = {"Fail": 2, "Msg": 1, "N_": 1, "tr": 1, "render": 1, "student": 1, "caption": 1}
# `@exercise(id, title, passed=...)`: the title and the passed message.
EXERCISE = "exercise"


def _texts_in(node: ast.AST) -> Iterator[ast.AST]:
    """The literal texts an argument can evaluate to (`a if c else b` gives both), and any f-string
    or concatenation in their place (which no catalog can hold)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.IfExp):
        yield from _texts_in(node.body)
        yield from _texts_in(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _texts_in(value)
    elif isinstance(node, (ast.JoinedStr, ast.BinOp)):
        yield node


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def scan(source: str, where: str = "") -> tuple[list[str], list[str]]:
    """The translatable texts of one module's source (in order), and the places where a marked
    argument is built at run time (an f-string or a `+`), which a catalog cannot translate."""
    texts: list[tuple[int, int, str]] = []
    problems: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        arguments: list[ast.AST] = []
        if name in MARKERS:
            arguments = list(node.args[: MARKERS[name]])
            if name == "Fail":
                arguments += [kw.value for kw in node.keywords if kw.arg == "hint"]
        elif name == EXERCISE:
            arguments = list(node.args[1:2]) + [
                kw.value for kw in node.keywords if kw.arg in ("title", "passed")
            ]
        for argument in arguments:
            for found in _texts_in(argument):
                if isinstance(found, ast.Constant):
                    texts.append((found.lineno, found.col_offset, found.value))
                else:
                    problems.append(f"{where}:{found.lineno}: {name}() is given a text built at run time")
    return [text for *_, text in sorted(texts)], problems


def _sources() -> Iterator[tuple[str, str]]:
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).as_posix()
        if relative.startswith("buflesson/grading/") and relative != "buflesson/grading/feedback.py":
            continue  # the grader's own texts are the instructor's; only its feedback is the student's
        yield relative, path.read_text(encoding="utf-8")


def messages() -> list[str]:
    """Every translatable English text in buflesson, each once, in the order the modules give them."""
    found: list[str] = []
    for where, source in _sources():
        found += scan(source, where)[0]
    return list(dict.fromkeys(found))


def built_at_run_time() -> list[str]:
    """Places where a marked argument is an f-string or a concatenation (none should be)."""
    out: list[str] = []
    for where, source in _sources():
        out += scan(source, where)[1]
    return out


def missing() -> set[tuple[str, str]]:
    """(language, English text) for every text looked up since the process started that had no
    translation: what a test runs the checks for, to find texts the scan cannot see."""
    return set(_missing)
