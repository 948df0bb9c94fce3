"""The seed buflesson's own demo models set: told apart from a seed the student's code sets.

The lessons' seeded models (`buffer_offset_model()`, `everything_model()`, ...) call
`torch.manual_seed` so that a lesson prints the same numbers on every run. A check that watches
an answer for a reseeded generator (`buflesson.workbench`) must not blame the student for
calling one of them, so they seed through `lesson_seed`, which remembers the seed it set.
"""

from __future__ import annotations

import torch

_last: list[int | None] = [None]


def lesson_seed(seed: int) -> None:
    """`torch.manual_seed(seed)`, remembered as buflesson's own."""
    torch.manual_seed(seed)
    _last[0] = torch.initial_seed()


def forget() -> None:
    """Start watching afresh (before a student's call)."""
    _last[0] = None


def reseeded_by_lesson() -> bool:
    """True when the generator's seed is the last one `lesson_seed` set since `forget()`."""
    return _last[0] is not None and torch.initial_seed() == _last[0]
