"""Every exercise has its corpus: at least 3 right answers besides the notebook's, and 6 wrong ones."""

import importlib.util
from pathlib import Path

import pytest

from buflesson.checks import exercises

TESTS = Path(__file__).parent


def corpus_of(lesson: str) -> tuple[dict, dict]:
    path = TESTS / f"test_exercises_lesson{int(lesson):02d}.py"
    assert path.exists(), f"{path.name} is missing: every lesson with exercises has a corpus"
    spec = importlib.util.spec_from_file_location(f"corpus_lesson{lesson}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "RIGHT", {}), getattr(module, "WRONG", {})


@pytest.mark.parametrize("exercise_id", list(exercises()))
def test_every_exercise_has_its_corpus(exercise_id):
    right, wrong = corpus_of(exercise_id.split(".")[0])
    assert len(right.get(exercise_id, [])) >= 4, f"{exercise_id}: fewer than 4 right answers"
    assert len(wrong.get(exercise_id, [])) >= 6, f"{exercise_id}: fewer than 6 wrong answers"
    assert all(case.message for case in wrong[exercise_id]), "each wrong answer names its message"


def test_no_corpus_names_an_exercise_that_does_not_exist():
    known = set(exercises())
    for path in sorted(TESTS.glob("test_exercises_lesson*.py")):
        right, wrong = corpus_of(path.stem.removeprefix("test_exercises_lesson"))
        assert set(right) | set(wrong) <= known, path.name
