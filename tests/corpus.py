"""Answer corpora for the exercise checks: right answers written differently, and typical mistakes.

Each lesson's test module defines `RIGHT = {exercise_id: [answer, ...]}` and
`WRONG = {exercise_id: [Wrong(answer, message, hint), ...]}` and calls `verdict_tests(RIGHT, WRONG)`
to get the parametrized tests. Every answer is checked under several draws of the checks' random
sizes and inputs (`BUFLESSON_CHECK_SEED`): a right answer must pass each time, a wrong one must fail
each time with the message and hint that name its own mistake. `tests/test_corpus.py` holds every
exercise to at least 4 right answers (the answer notebook's and 3 written differently) and 6
wrong ones.
"""

from __future__ import annotations

import re
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
    """A test id that is the same in every process (pytest-xdist compares them): names for functions
    and classes, sorted items for sets and dicts, and no memory addresses."""
    name = getattr(answer, "__name__", None)
    if isinstance(name, str):
        return name
    if isinstance(answer, (tuple, list)):
        text = ", ".join(_label(item) for item in answer)
        text = f"({text})" if isinstance(answer, tuple) else f"[{text}]"
    elif isinstance(answer, (set, frozenset)):
        text = "{" + ", ".join(sorted(_label(item) for item in answer)) + "}"
    elif isinstance(answer, dict):
        text = "{" + ", ".join(sorted(f"{_label(k)}: {_label(v)}" for k, v in answer.items())) + "}"
    else:
        text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(answer))
    return text[:60]


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
