"""The limits a notebook runs under are one definition: options, validation, wording and the
README's table all follow from `buflesson.grading.limits.Limits`."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from buflesson.cli import parser
from buflesson.grading.limits import Limits, add_options, from_options, markdown_table, spec_of

README = Path(__file__).resolve().parent.parent / "README.md"


def grade_args(*extra: str) -> argparse.Namespace:
    return parser().parse_args(["grade", "subs", "--out", "o", *extra])


def test_every_limit_is_an_option_of_grade_with_its_default():
    args = grade_args()
    assert from_options(args) == Limits()
    flags = {spec_of(f.name).flag for f in fields(Limits)}
    help_text = parser()._subparsers._group_actions[0].choices["grade"].format_help()
    for flag in flags:
        assert flag in help_text
    assert {"--cell-timeout", "--timeout", "--memory", "--disk", "--processes"} <= flags


def test_options_are_read_into_limits():
    args = grade_args(
        "--cell-timeout", "2.5", "--timeout", "9", "--memory", "300", "--disk", "7", "--processes", "8"
    )
    assert from_options(args) == Limits(cell_timeout=2.5, timeout=9, memory=300, disk=7, processes=8)


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--disk", "0", "must be at least 1 MB"),
        ("--memory", "12", "must be at least 64 MB"),
        ("--processes", "x", "expected an integer"),
        ("--cell-timeout", "-1", "must be at least 0.1 s"),
        ("--timeout", "soon", "expected a number"),
    ],
)
def test_a_bad_value_is_refused_with_its_reason(capsys, option, value, words):
    with pytest.raises(SystemExit):
        grade_args(option, value)
    err = capsys.readouterr().err
    assert option in err and words in err


def test_limits_check_themselves_when_made_in_code():
    with pytest.raises(ValueError, match="--disk must be at least 1 MB"):
        Limits(disk=0)
    with pytest.raises(TypeError, match="--memory takes a number"):
        Limits(memory="lots")


def test_a_limit_is_worded_from_its_definition():
    limits = Limits(cell_timeout=3, timeout=8, disk=16)
    assert limits.say("cell_timeout") == "the 3 s limit per cell"
    assert limits.say("timeout") == "the 8 s limit per notebook"
    assert limits.say("disk") == "the 16 MB disk limit"
    assert limits.hard_cell_timeout > limits.cell_timeout


def test_a_new_field_becomes_an_option_without_more_code():
    class More(argparse.ArgumentParser):
        pass

    made = More()
    add_options(made)
    dests = {action.dest for action in made._actions if action.dest != "help"}
    assert dests == {f"limit_{f.name}" for f in fields(Limits)}


def test_the_readme_table_is_the_definition():
    text = README.read_text(encoding="utf-8")
    assert markdown_table() in text
