"""The grader's parts, in process: reading and finding submissions, plans and tampering,
gradebooks, feedback and misuse. `test_grading_cli.py` runs the whole command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from buflesson.cli import main
from buflesson.grading import GradeError, Progress, Shard, grade
from buflesson.grading.course import CHECK, GIVEN, STUDENT, load_lesson, plan
from buflesson.grading.feedback import markdown, page
from buflesson.grading.gradebook import NotebookResult, ResultStore, merge, write_atomic, write_gradebook
from buflesson.grading.hidden import load_hidden
from buflesson.grading.submissions import InvalidNotebook, find, read_notebook, shard_of
from buflesson.release import handout

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
ANSWER = FIXTURES / "answers" / "90-fixture.ipynb"
LESSON = "90-fixture"


def answer_nb():
    return nbformat.read(ANSWER, as_version=4)


def blank_nb():
    return handout(answer_nb(), LESSON)


# --- reading and finding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b'{"cells": [', "not valid JSON"),
        (b"[1, 2]", "no nbformat"),
        (b'{"nbformat": 5, "cells": []}', "nbformat 5 is not supported"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "cells": 3, "metadata": {}}', "not a readable notebook"),
    ],
)
def test_unreadable_files_say_why(data, reason):
    with pytest.raises(InvalidNotebook, match=reason):
        read_notebook(data)


def test_nbformat_3_is_converted():
    v3 = nbformat.writes(nbformat.convert(answer_nb(), 3), version=3).encode()
    nb = read_notebook(v3)
    assert nb.nbformat == 4 and [c.source for c in nb.cells] == [c.source for c in answer_nb().cells]


def write(path: Path, nb=None, text: str | None = None, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else nbformat.writes(nb or blank_nb()), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_who_and_which_lesson(tmp_path):
    write(tmp_path / "course" / "alice" / f"{LESSON}.ipynb")
    write(tmp_path / "course" / "bob" / "work" / f"my {LESSON} final.ipynb")
    write(tmp_path / "course" / f"carl_{LESSON}.ipynb")
    named = blank_nb()
    named.metadata["buflesson"]["student"] = "dora"
    write(tmp_path / "course" / "renamed-by-lms.ipynb", named)
    write(tmp_path / "course" / ".ipynb_checkpoints" / f"{LESSON}-checkpoint.ipynb")
    write(tmp_path / "eve" / f"{LESSON}.ipynb")
    found = find([tmp_path / "course", tmp_path / "eve" / f"{LESSON}.ipynb"], [LESSON, "91-other"])
    assert {(s.student, s.lesson, s.status) for s in found} == {
        ("alice", LESSON, ""),
        ("bob", LESSON, ""),
        ("carl", LESSON, ""),
        ("dora", LESSON, ""),
        ("eve", LESSON, ""),
    }
    shown = {s.student: s.file for s in found}
    assert shown["bob"] == f"course/bob/work/my {LESSON} final.ipynb"
    folders = {s.student: s.folder for s in found}
    assert folders["alice"] == tmp_path / "course" / "alice" and folders["carl"] is None


def test_unknown_lesson_and_duplicates(tmp_path):
    write(tmp_path / "s" / "ann" / "notes.ipynb", nbformat.v4.new_notebook())
    write(tmp_path / "s" / "ann" / f"{LESSON}.ipynb", mtime=1_000)
    write(tmp_path / "s" / "ann" / f"{LESSON} (1).ipynb", mtime=2_000)
    write(tmp_path / "s" / "ann" / f"{LESSON} (2).ipynb", text="", mtime=3_000)
    by_file = {s.path.name: s for s in find([tmp_path / "s"], [LESSON])}
    assert by_file["notes.ipynb"].status == "invalid"
    assert "not a notebook of this course" in by_file["notes.ipynb"].problem
    assert by_file[f"{LESSON} (1).ipynb"].ok  # the newest readable copy
    assert by_file[f"{LESSON}.ipynb"].status == "duplicate"
    assert f"{LESSON} (1).ipynb" in by_file[f"{LESSON}.ipynb"].problem
    assert by_file[f"{LESSON} (2).ipynb"].problem == "the file is empty"


def test_shards_partition_submissions_by_student(tmp_path):
    for student in "abcdefghij":
        write(tmp_path / "c" / student / f"{LESSON}.ipynb")
        write(tmp_path / "c" / student / f"{LESSON} (1).ipynb")
    subs = find([tmp_path / "c"], [LESSON])
    parts = [{s.file for s in subs if shard_of(s, 3) == i} for i in range(3)]
    assert set().union(*parts) == {s.file for s in subs} and sum(map(len, parts)) == len(subs)
    for sub in subs:
        assert shard_of(sub, 3) == shard_of(next(s for s in subs if s.student == sub.student), 3)
    assert Shard.parse("2/3") == Shard(2, 3)
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(GradeError):
            Shard.parse(bad)


# --- plans and tampering ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lesson():
    return load_lesson(ANSWER)


def kinds(result):
    return [step.kind for step in result.steps]


def test_untouched_and_answered_notebooks_are_not_tampered(lesson):
    for nb in (blank_nb(), answer_nb()):
        result = plan(lesson, nb)
        assert result.tampered == []
        assert kinds(result) == [GIVEN, STUDENT, CHECK, GIVEN, STUDENT, CHECK]
    assert lesson.exercises == ["90.1", "90.2"] and "torch" in lesson.imports


def test_changed_and_deleted_protected_cells_are_flagged_and_the_original_runs(lesson):
    nb = blank_nb()
    nb.cells[3].source = "print('PASSED')"  # the check of 90.1
    del nb.cells[1]  # the imports
    nb.cells.insert(2, nbformat.v4.new_code_cell("scratch = 1"))
    result = plan(lesson, nb)
    assert result.tampered == [
        "given cell 2 of the lesson was deleted (restored)",
        "check cell 4 was changed (the original was run)",
    ]
    assert kinds(result) == [GIVEN, STUDENT, STUDENT, CHECK, GIVEN, STUDENT, CHECK]
    assert result.steps[0].source.startswith("import torch")
    assert result.steps[3].source == 'check("90.1", Scale)' and result.steps[3].exercises == ("90.1",)


def test_whitespace_a_pasted_back_cell_and_a_copied_check_are_not_tampering(lesson):
    nb = blank_nb()
    nb.cells[4].source += "\n\n"
    pasted = nbformat.v4.new_code_cell(nb.cells[1].source)  # deleted, then pasted back: new id
    nb.cells[1] = pasted
    nb.cells.append(nbformat.v4.new_code_cell(nb.cells[6].source))
    nb.cells[-1].id = nb.cells[6].id  # a copy keeps the id
    result = plan(lesson, nb)
    assert result.tampered == []
    assert kinds(result) == [GIVEN, STUDENT, CHECK, GIVEN, STUDENT, CHECK, STUDENT]


def test_cell_ids_another_tool_rewrote_are_not_tampering(lesson):
    nb = answer_nb()
    ids = [cell.id for cell in nb.cells]
    for cell, other in zip(nb.cells, ids[1:] + ids[:1], strict=True):  # each id names another cell
        cell.id = other
    result = plan(lesson, nb)
    assert result.tampered == []
    assert kinds(result) == [GIVEN, STUDENT, CHECK, GIVEN, STUDENT, CHECK]
    assert [step.source for step in result.steps if step.kind == STUDENT] == [
        cell.source for cell in answer_nb().cells if cell.cell_type == "code"
    ][1::3]


def test_a_check_cell_turned_into_markdown_is_tampering(lesson):
    nb = blank_nb()
    old_id = nb.cells[6].id
    nb.cells[6] = nbformat.v4.new_markdown_cell(nb.cells[6].source)
    nb.cells[6].id = old_id
    result = plan(lesson, nb)
    assert result.tampered == ["check cell 7 was changed (the original was run)"]
    assert kinds(result)[-1] == CHECK


# --- gradebook, feedback ---------------------------------------------------------------------------


def result(student="ann", status="graded", score=1.0, file=None, error=""):
    check = {
        "exercise": "90.1",
        "of": "90.1",
        "title": "T <b>",
        "status": "passed" if score else "failed",
        "message": "msg & more",
        "hint": "hint <i>",
        "points": score,
        "max_points": 1.0,
        "hidden": False,
    }
    file = file or f"c/{student}/{LESSON}.ipynb"
    return NotebookResult(student, LESSON, file, status, error, [check], [], score, 1.0, "ab")


def test_gradebook_rows_are_sorted_and_merge_joins_parts(tmp_path):
    write_gradebook(tmp_path / "a.csv", [result("zed"), result("ann", score=0.0)], ["90.1", "90.2"])
    write_gradebook(
        tmp_path / "b.csv", [result("bea", "crashed", 0.0, error="died, badly")], ["90.1", "90.2"]
    )
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[0] == '"student","notebook","status","90.1","90.2","score","max_score","error","file"'
    assert lines[1].startswith('"ann","90-fixture","graded","0","","0","1","",')
    assert merge([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "m.csv") == 3
    write_gradebook(
        tmp_path / "all.csv",
        [result("zed"), result("ann", score=0.0), result("bea", "crashed", 0.0, error="died, badly")],
        ["90.1", "90.2"],
    )  # noqa: E501
    assert (tmp_path / "m.csv").read_text() == (tmp_path / "all.csv").read_text()
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a buflesson gradebook"):
        merge([tmp_path / "x.csv"], tmp_path / "m2.csv")


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "gradebook.csv"
    write_atomic(target, "old\n")

    def boom(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["gradebook.csv"]


def test_result_store_depends_on_file_content_and_settings(tmp_path):
    store = ResultStore(tmp_path / "r", "settings-1")
    store.put(result())
    assert store.get(f"c/ann/{LESSON}.ipynb", "ab") == result()
    assert store.get(f"c/ann/{LESSON}.ipynb", "changed") is None
    assert ResultStore(tmp_path / "r", "settings-2").get(f"c/ann/{LESSON}.ipynb", "ab") is None


def test_feedback_escapes_everything_a_student_controls():
    hostile = result("<script>alert(1)</script>", file="c/<img src=x>.ipynb")
    html = page(hostile.student, [hostile])
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert "T &lt;b&gt;" in html and "msg &amp; more" in html
    text = markdown("ann", [result(score=0.0)])
    assert "Exercise 90.1: T &lt;b&gt;**: not yet (0 / 1). msg & more" in text
    assert "Hint: hint &lt;i&gt;" in text


def test_progress_bar_only_on_a_terminal(capsys):
    quiet, loud = Progress(2, enabled=False), Progress(2, enabled=True)
    for bar in (quiet, loud):
        bar.step(result())
    err = capsys.readouterr().err
    assert err.count("\r[") == 1 and "1/2" in err


# --- hidden checks and misuse ----------------------------------------------------------------------


def test_hidden_checks_file_defines_checks(tmp_path):
    (found,) = load_hidden(FIXTURES / "hidden_checks.py")
    assert (found.exercise, found.id, found.points) == ("90.1", "90.1+factor_follows_double", 2.0)
    empty = tmp_path / "none.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ValueError, match="no @hidden check"):
        load_hidden(empty)


def test_hidden_check_for_an_unknown_exercise_is_misuse(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text(
        "from buflesson.grading.hidden import hidden\n@hidden('77.7', 't')\ndef t(a):\n    pass\n"
    )
    write(tmp_path / "s" / "ann" / f"{LESSON}.ipynb")
    with pytest.raises(GradeError, match="77.7"):
        grade([tmp_path / "s"], tmp_path / "out", answers=ANSWER.parent, hidden=stray)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grade", "{tmp}/nothing-here", "--out", "{tmp}/o"], "no such file or folder"),
        (["grade", "{tmp}/empty", "--out", "{tmp}/o"], "no submissions"),
        (["grade", "{tmp}/s", "--out", "{tmp}/blocked/o"], "cannot write"),
        (["grade", "{tmp}/s", "--out", "{tmp}/o", "--shard", "3/3"], "I must be 0..2"),
        (["grade", "{tmp}/s", "--out", "{tmp}/o", "--answers", "{tmp}/empty"], "no answer notebooks"),
        (["gradebook", "merge", "{tmp}/blocked", "--out", "{tmp}/m"], "cannot merge"),
    ],
)
def test_misuse_exits_non_zero_with_a_message(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "blocked").write_text("a file, not a folder")
    write(tmp_path / "s" / "ann" / f"{LESSON}.ipynb")
    argv = [a.format(tmp=tmp_path) for a in args]
    if argv[0] == "grade" and "--answers" not in argv:
        argv += ["--answers", str(ANSWER.parent)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_points_option_must_be_id_equals_number(capsys):
    with pytest.raises(SystemExit):
        main(["grade", "x", "--out", "o", "--points", "1.1"])
    assert "expected ID=POINTS" in capsys.readouterr().err


def test_results_json_is_plain_data(tmp_path):
    store = ResultStore(tmp_path, "s")
    store.put(result())
    (path,) = tmp_path.glob("*.json")
    assert json.loads(path.read_text())["checks"][0]["exercise"] == "90.1"
