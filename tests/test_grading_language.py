"""A Chinese submission (a notebook of notebooks/zh) is graded like an English one, by the same
checks, and its feedback is written in Chinese; the language is read from the notebook's data."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import nbformat
import pytest
from grading_fixture import feedback, grader, put, rows_of

from buflesson.checks import exercises
from buflesson.grading.course import GIVEN, load_course, plan
from buflesson.grading.feedback import feedback_language, markdown, page
from buflesson.grading.gradebook import NotebookResult
from buflesson.grading.text import markdown_text
from buflesson.i18n import language, render, tr, using
from buflesson.release import handout
from buflesson.translation import LANGUAGE_CELL_ID, notebook_language

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "notebooks" / "answers"
ANSWERS_ZH = ROOT / "notebooks" / "zh" / "answers"
LESSON = "03-register-buffer"


def _read(folder: Path) -> nbformat.NotebookNode:
    return nbformat.read(folder / f"{LESSON}.ipynb", as_version=4)


# --- the language, from data ------------------------------------------------------------------


def test_the_language_comes_from_the_metadata_or_the_language_cell():
    chinese = handout(_read(ANSWERS_ZH), LESSON)
    assert chinese.metadata["buflesson"]["language"] == "zh"  # the release keeps it
    assert notebook_language(chinese) == "zh"
    without_metadata = copy.deepcopy(chinese)
    del without_metadata.metadata["buflesson"]["language"]
    assert notebook_language(without_metadata) == "zh"  # the first cell: buflesson.language("zh")
    english = handout(_read(ANSWERS), LESSON)
    assert notebook_language(english) == "en"


@pytest.mark.parametrize(
    ("metadata", "cell"),
    [
        ({"language": "xx"}, None),  # no language buflesson speaks
        ({"language": ["zh"]}, None),
        ("zh", None),
        ({}, 'buflesson.language("zh")  # not the language cell: another id'),
        ({}, "print('buflesson.language(\"zh\")')"),
    ],
)
def test_anything_else_is_english(metadata, cell):
    nb = nbformat.v4.new_notebook()
    nb.metadata["buflesson"] = metadata
    if cell is not None:
        nb.cells.append(nbformat.v4.new_code_cell(cell))
        nb.cells[0].id = "other" if "another id" in cell else LANGUAGE_CELL_ID
    assert notebook_language(nb) == "en"


# --- the plan: a Chinese copy against the Chinese reference -----------------------------------


@pytest.fixture(scope="module")
def course():
    return load_course(ANSWERS)


def test_a_chinese_copy_is_not_tampered_and_runs_its_own_given_cells(course):
    lesson = course[LESSON]
    assert lesson.translations["zh"].exercises == lesson.exercises
    chinese = plan(lesson, handout(_read(ANSWERS_ZH), LESSON))
    assert chinese.tampered == []
    given = [step.source for step in chinese.steps if step.kind == GIVEN]
    assert any('buflesson.language("zh")' in source for source in given)
    english = plan(lesson, handout(_read(ANSWERS), LESSON))
    assert english.tampered == []
    assert not any("buflesson.language" in step.source for step in english.steps)
    # a Chinese copy is still held to its given cells: change one and it is reported
    changed = handout(_read(ANSWERS_ZH), LESSON)
    (cell,) = [c for c in changed.cells if c.cell_type == "code" and c.id == "set-language"]
    cell.source = 'import buflesson\n\nbuflesson.language("en")'
    assert plan(lesson, changed).tampered


# --- feedback in the student's language -------------------------------------------------------


def _result(code: str, status: str = "passed", notebook: str = LESSON) -> NotebookResult:
    title = exercises()["3.1"].title
    with using(code):
        check = {
            "exercise": "3.1",
            "of": "3.1",
            "title": tr(title),
            "status": status,
            "message": render(exercises()["3.1"].passed_message),
            "hint": "",
            "points": 1.0 if status == "passed" else 0.0,
            "max_points": 1.0,
            "hidden": False,
        }
    return NotebookResult(
        "ann", notebook, f"ann/{notebook}.ipynb", "graded", "", [check], [], 1.0, 1.0, language=code
    )


def test_feedback_is_written_in_the_notebooks_language():
    chinese = markdown("ann", [_result("zh")])
    assert chinese.startswith("# ann 的反馈\n")
    assert "总分：**1 / 1** 分。" in chinese
    assert "文件 `ann/03-register-buffer.ipynb`：已评分。" in chinese
    title = markdown_text(tr(exercises()["3.1"].title, "zh"))  # its code spans escaped
    assert f"- **练习 3.1：{title}**：通过（1 / 1 分）。" in chinese
    assert "Feedback" not in chinese and "passed" not in chinese
    html = page("ann", [_result("zh")])
    assert '<html lang="zh-CN">' in html and "<h1>ann 的反馈</h1>" in html
    assert '<span class="passed">通过</span>' in html  # the class stays English: the style needs it

    english = markdown("ann", [_result("en")])
    assert english.startswith("# Feedback for ann\n")
    assert "- **Exercise 3.1: Keep \\`mean\\` and \\`std\\` as buffers**: passed (1 / 1)." in english
    assert '<html lang="en">' in page("ann", [_result("en")])


def test_a_student_with_notebooks_in_two_languages_reads_the_language_of_most():
    assert feedback_language([_result("zh"), _result("zh", notebook="04-training"), _result("en")]) == "zh"
    assert feedback_language([_result("zh"), _result("en")]) == "en"  # a tie: English
    assert feedback_language([]) == "en"


def test_using_holds_for_its_own_thread_alone():
    seen = []
    inside, done = threading.Event(), threading.Event()

    def other():
        inside.wait(5)
        seen.append(language())
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with using("zh"):
        inside.set()
        done.wait(5)
        assert language() == "zh" and tr("PASSED") == "通过"
    thread.join()
    assert seen == ["en"] and language() == "en"


# --- a whole run: the same checks, the feedback in Chinese -------------------------------------


def test_a_chinese_answer_gets_full_marks_and_chinese_feedback(tmp_path):
    put(tmp_path / "course", f"mei/{LESSON}.ipynb", _read(ANSWERS_ZH))
    put(tmp_path / "course", f"lan/{LESSON}.ipynb", handout(_read(ANSWERS_ZH), LESSON))
    put(tmp_path / "course", f"ann/{LESSON}.ipynb", _read(ANSWERS))
    args = ["grade", "course", "--answers", str(ANSWERS), "--out", "out", "--jobs", "2"]
    run = grader(*args, "--cell-timeout", "60", cwd=tmp_path, tmp=tmp_path / "tmp")
    assert run.returncode == 0, run.stderr
    rows = {r["student"]: r for r in rows_of(tmp_path / "out")}
    assert (rows["mei"]["status"], rows["mei"]["3.1"], rows["mei"]["3.2"], rows["mei"]["score"]) == (
        "graded", "1", "1", "2",
    )  # fmt: skip
    assert (rows["lan"]["status"], rows["lan"]["score"]) == ("graded", "0")  # the blank handout
    assert rows["ann"]["score"] == "2"

    mei = feedback(tmp_path / "out", "mei")
    assert mei.startswith("# mei 的反馈") and "总分：**2 / 2** 分。" in mei
    for exercise_id in ("3.1", "3.2"):
        known = exercises()[exercise_id]
        assert f"**练习 {exercise_id}：{markdown_text(tr(known.title, 'zh'))}**：通过（1 / 1 分）。" in mei
        assert tr(known.passed_message, "zh") in mei  # the check itself answered in Chinese
    assert "尚未作答" in feedback(tmp_path / "out", "lan")
    ann = feedback(tmp_path / "out", "ann")
    assert ann.startswith("# Feedback for ann") and exercises()["3.1"].passed_message in ann
    assert not any("\u4e00" <= char <= "\u9fff" for char in ann)
    assert '<html lang="zh-CN">' in (tmp_path / "out" / "feedback" / "mei.html").read_text(encoding="utf-8")
