"""check(): dispatch, placeholders, and results that never raise for a wrong answer."""

import re
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from buflesson import check, checks
from buflesson.checks import Fail, exercise, exercises
from buflesson.probes import build, expect_kind, expect_module_class, save_and_reload, tensor
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED, CheckResult

ANSWERS = Path(__file__).resolve().parent.parent / "notebooks" / "answers"


def test_unknown_exercise_raises_key_error_listing_valid_ids():
    with pytest.raises(KeyError) as info:
        check("no-such-exercise", object())
    for exercise_id in exercises():
        assert exercise_id in str(info.value)


def test_each_exercise_heading_in_the_lessons_names_its_check_title():
    """The student reads the heading, then the check's box: both say the same thing."""
    headings = {}
    for path in sorted(ANSWERS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for match in re.finditer(r"^### Exercise (\S+) · (.+)$", cell.source, flags=re.MULTILINE):
                headings[match[1]] = match[2].strip()
    titles = {exercise_id: ex.title for exercise_id, ex in exercises().items()}
    assert headings == titles


def test_every_lesson_has_at_least_two_exercises():
    per_lesson: dict[str, int] = {}
    for exercise_id in exercises():
        lesson = exercise_id.split(".")[0]
        per_lesson[lesson] = per_lesson.get(lesson, 0) + 1
    assert per_lesson, "no exercises registered"
    assert all(count >= 2 for count in per_lesson.values()), per_lesson


@pytest.mark.parametrize("exercise_id", list(exercises()))
def test_placeholder_reads_not_attempted_for_every_exercise(exercise_id):
    result = check(exercise_id, ...)
    assert result.status == NOT_ATTEMPTED
    assert not result
    assert "Not attempted yet" in str(result)


class _NotYet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        raise NotImplementedError


@pytest.mark.parametrize("exercise_id", list(exercises()))
@pytest.mark.parametrize("bad", [None, 42, "text", torch.ones(2), _NotYet])
def test_wrong_answers_never_raise(exercise_id, bad):
    result = check(exercise_id, bad)
    assert isinstance(result, CheckResult)
    assert result.status in (FAILED, NOT_ATTEMPTED)
    assert "Traceback" not in str(result)


# A test-only exercise shows how check() turns each outcome into a result.
def _scale_is_saved_buffer(answer):
    expect_module_class(answer, "Scale")
    model = build(answer)
    expect_kind(answer, model, "scale", "buffer", sample=torch.ones(1, 2))
    fresh = save_and_reload(model, lambda: build(answer))
    if not torch.equal(tensor(fresh, "scale"), tensor(model, "scale")):
        raise Fail("scale changed in the round trip.")


class _Good(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.full((2,), 2.0))

    def forward(self, x):
        return x * self.scale


class _Plain(_Good):
    def __init__(self) -> None:
        super().__init__()
        del self.scale
        self.scale = torch.full((2,), 2.0)


class _InForward(nn.Module):
    def forward(self, x):
        if not hasattr(self, "scale"):
            self.register_buffer("scale", torch.full((2,), 2.0))
        return x * self.scale


class _Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        raise ValueError("boom in init")


@pytest.fixture
def test_exercise():
    exercises()  # load the lessons' exercises first
    exercise("test.buffer", "Keep `scale` as a saved buffer", passed="scale is a saved buffer.")(
        _scale_is_saved_buffer
    )
    yield "test.buffer"
    checks._REGISTRY.pop("test.buffer")


def test_test_exercise_outcomes(test_exercise):
    assert check("test.buffer", _Good).status == PASSED
    plain = check("test.buffer", _Plain)
    assert plain.status == FAILED and "register_buffer" in plain.hint
    assert "created inside forward" in check("test.buffer", _InForward).message
    broken = check("test.buffer", _Broken)
    assert broken.status == FAILED and "ValueError: boom in init" in broken.message
    assert "Creating _Broken()" in broken.message and "PyTorch" not in broken.hint
    assert check("test.buffer", _NotYet).status == NOT_ATTEMPTED
    assert "not the class" in check("test.buffer", _Good()).message


def test_result_renders_as_text_and_html_and_is_truthy_only_when_passed():
    passed = CheckResult("1.1", "Title", PASSED, "All good.")
    failed = CheckResult("1.1", "Title <b>", FAILED, "Bad & wrong.", "Try <this>.")
    assert passed and not failed
    assert str(passed).startswith("[PASSED] Exercise 1.1: Title")
    assert "Hint: Try <this>." in str(failed)
    html = failed._repr_html_()
    assert "buflesson-check buflesson-failed" in html
    assert "Title &lt;b&gt;" in html and "Bad &amp; wrong." in html and "<b>Hint:</b>" in html
    assert failed.to_dict()["hint"] == "Try <this>."
