"""`buflesson release`: the student handout holds no answer, and marks what students must not change."""

import json
from pathlib import Path

import nbformat
import pytest

from buflesson.authoring import answer_text
from buflesson.cli import main
from buflesson.release import LeakError, checksum, release

ROOT = Path(__file__).resolve().parent.parent
COURSES = [ROOT / "notebooks" / "answers", ROOT / "tests" / "fixtures" / "grading" / "answers"]


@pytest.fixture(scope="module", params=COURSES, ids=["lessons", "fixture"])
def released(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    assert main(["release", str(out), "--answers", str(request.param)]) == 0
    return request.param, out


def test_release_holds_the_student_notebooks_and_nothing_else(released):
    answers, out = released
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in answers.glob("*.ipynb"))


def strings(value):
    """Every string anywhere in parsed JSON (sources, outputs, metadata), joined where split in lines."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield "".join(v for v in value if isinstance(v, str))
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)


def test_no_answer_line_survives_anywhere_in_the_release(released):
    answers, out = released
    every_answer = [line for path in answers.glob("*.ipynb") for line in answer_text(nbformat.read(path, 4))]
    assert every_answer
    for path in out.iterdir():
        found = {
            line.strip()
            for text in strings(json.loads(path.read_text("utf-8")))
            for line in text.splitlines()
        }
        leaked = [line for line in every_answer if line in found]
        assert not leaked, f"{path.name}: {leaked}"


def test_outputs_are_cleared_and_protected_cells_marked(released):
    _, out = released
    for path in out.iterdir():
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["buflesson"]["lesson"] == path.stem
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
        for cell in code:
            info = cell.metadata["buflesson"]
            if info["role"] in ("given", "check"):
                assert cell.metadata["editable"] is False and cell.metadata["deletable"] is False
                assert info["protected"] and info["checksum"] == checksum(cell.source)
            else:
                assert info["role"] == "exercise" and "editable" not in cell.metadata


def test_checksum_ignores_trailing_blanks_only():
    assert checksum("x = 1\n\n") == checksum("x = 1   ")
    assert checksum("x = 1") != checksum("x = 2")


def test_release_refuses_to_publish_an_answer_shown_elsewhere(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Spoiler:\n\n    answer = 6 * 7  # SOLUTION"),
        nbformat.v4.new_code_cell("answer = 6 * 7  # SOLUTION"),
        nbformat.v4.new_code_cell('check("90.2", answer)'),
    ]
    answers = tmp_path / "answers"
    answers.mkdir()
    nbformat.write(nb, answers / "99-leaky.ipynb")
    with pytest.raises(LeakError, match="99-leaky"):
        release(answers, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_release_without_answer_notebooks_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        release(tmp_path, tmp_path / "out")


def test_release_command_misuse_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["release", str(tmp_path / "out"), "--answers", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("buflesson release: no answer notebooks") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_release_defaults_to_the_course_answers_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no notebooks/answers here
    assert main(["release", "handout"]) == 0
    course = sorted(p.name for p in (ROOT / "notebooks" / "answers").glob("*.ipynb"))
    assert sorted(p.name for p in (tmp_path / "handout").iterdir()) == course
