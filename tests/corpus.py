"""Answer corpora for the exercise checks: right answers written differently, and typical mistakes.

Each lesson's test module defines `RIGHT = {exercise_id: [answer, ...]}` and
`WRONG = {exercise_id: [Wrong(answer, message, hint), ...]}` and calls `verdict_tests(RIGHT, WRONG)`
to get the parametrized tests. Every answer is checked under several draws of the checks' random
sizes and inputs (`BUFLESSON_CHECK_SEED`): a right answer must pass each time, a wrong one must fail
each time with the message and hint that name its own mistake. `tests/test_corpus.py` holds every
exercise to at least 3 right and 6 wrong answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from buflesson import check
from buflesson.results import FAILED, PASSED

SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Wrong:
    """A wrong answer, and the words its message and hint must contain."""

    answer: object
    message: str
    hint: str = ""

    def __repr__(self) -> str:
        return getattr(self.answer, "__name__", None) or type(self.answer).__name__


def _label(answer: object) -> str:
    return getattr(answer, "__name__", None) or repr(answer)[:40]


def verdict_tests(right: dict[str, list], wrong: dict[str, list[Wrong]]):
    """Two parametrized test functions: every right answer passes, every wrong one fails as named."""
    right_cases = [(ex, answer) for ex, answers in right.items() for answer in answers]
    wrong_cases = [(ex, case) for ex, cases in wrong.items() for case in cases]

    @pytest.mark.parametrize("seed", SEEDS)
    @pytest.mark.parametrize(
        "exercise_id, answer", right_cases, ids=[f"{e}-{_label(a)}" for e, a in right_cases]
    )
    def test_right_answer_passes(exercise_id, answer, seed, monkeypatch):
        monkeypatch.setenv("BUFLESSON_CHECK_SEED", str(seed))
        result = check(exercise_id, answer)
        assert result.status == PASSED, str(result)

    @pytest.mark.parametrize("seed", SEEDS)
    @pytest.mark.parametrize(
        "exercise_id, case", wrong_cases, ids=[f"{e}-{_label(c.answer)}" for e, c in wrong_cases]
    )
    def test_wrong_answer_fails_naming_its_mistake(exercise_id, case, seed, monkeypatch):
        monkeypatch.setenv("BUFLESSON_CHECK_SEED", str(seed))
        result = check(exercise_id, case.answer)
        assert result.status == FAILED, str(result)
        assert case.message in result.message, str(result)
        assert case.hint in result.hint, str(result)

    return test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake
