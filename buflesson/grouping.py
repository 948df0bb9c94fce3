"""Repeated blocks folded into one line: `h.{0..11}.attn.c_attn.weight` for twelve alike rows.

Rows are alike when their names differ only in numeric path parts (`h.0`, `layers[3]`)
and everything else shown about them is the same. Where the numbers form a full grid
(`layers.{0..3}.blocks.{0..1}`) one line covers them all; otherwise the first number
is fixed and the rest is folded again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Generic, TypeVar

from buflesson.i18n import render

T = TypeVar("T")

# A number that is a whole path part: `.0.`, `.12` at the end, `0.` at the start, or `[3]`.
_INDEX = re.compile(r"(?:(?<=^)|(?<=\.))(\d+)(?=\.|$)|(?<=\[)(\d+)(?=\])")
_SLOT = "\x00"


@dataclass(frozen=True)
class Group(Generic[T]):
    """Alike items under one name pattern; `name` is the item's own name when it stands alone."""

    name: str
    items: tuple[T, ...]

    @property
    def first(self) -> T:
        return self.items[0]

    @property
    def folded(self) -> bool:
        return len(self.items) > 1


def template(name: str) -> tuple[str, tuple[int, ...]]:
    """`name` with each numeric path part replaced by a slot, and the numbers."""
    numbers: list[int] = []

    def slot(match: re.Match) -> str:
        numbers.append(int(match.group(1) or match.group(2)))
        return _SLOT

    return _INDEX.sub(slot, name), tuple(numbers)


_MAX_PARTS = 8  # more parts than this and a set of numbers is shortened


def ranges(numbers: Sequence[int]) -> str:
    """`{0..11}`, `{0,2,5}`, `{0..3,8..9}`: a sorted set of numbers, short.

    Every third of 300 layers is `{0..297..3}` (start..end..step, as a shell writes it); a long
    set with no step shows its first numbers and how many more: `{0,1,5,8,13,21,…+40}`.
    """
    values = sorted(set(numbers))
    step = values[1] - values[0] if len(values) > 3 else 0
    if step > 1 and all(b - a == step for a, b in zip(values, values[1:], strict=False)):
        return "{" + f"{values[0]}..{values[-1]}..{step}" + "}"
    parts: list[str] = []
    start = previous = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous == start:
            parts.append(str(start))
        elif previous == start + 1:
            parts += [str(start), str(previous)]
        else:
            parts.append(f"{start}..{previous}")
        if value is not None:
            start = previous = value
    if len(parts) > _MAX_PARTS:
        shown = parts[: _MAX_PARTS - 2]
        hidden = len(values) - sum(_count(part) for part in shown)
        return "{" + ",".join(shown) + f",…+{hidden}" + "}"
    return "{" + ",".join(parts) + "}"


def _count(part: str) -> int:
    low, _, high = part.partition("..")
    return int(high) - int(low) + 1 if high else 1


def _fill(pattern: str, values: Sequence[str]) -> str:
    parts = pattern.split(_SLOT)
    out = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        out += [value, part]
    return "".join(out)


def _split(pattern: str, members: list[tuple[tuple[int, ...], T]]) -> list[tuple[str, list[T]]]:
    """Cover members with names that are full grids of numbers; fix the first number where they are not."""
    tuples = [numbers for numbers, _ in members]
    width = len(tuples[0])
    columns = [sorted({numbers[i] for numbers in tuples}) for i in range(width)]
    if prod(len(column) for column in columns) == len(tuples):
        shown = [str(c[0]) if len(c) == 1 else ranges(c) for c in columns]
        return [(_fill(pattern, shown), [item for _, item in members])]
    first_slot = pattern.index(_SLOT)
    out: list[tuple[str, list[T]]] = []
    for value in columns[0]:
        rest = [(numbers[1:], item) for numbers, item in members if numbers[0] == value]
        fixed = pattern[:first_slot] + str(value) + pattern[first_slot + 1 :]
        out += _split(fixed, rest)  # one number alone always forms a full grid, so this ends
    return out


def fold(items: Sequence[T], name: Callable[[T], str], key: Callable[[T], object]) -> list[Group[T]]:
    """Fold alike items into groups, each where its first item stood.

    `name` gives an item's name; `key` what else must be equal (None: never folded).
    """
    buckets: dict[tuple[str, object], list[tuple[int, tuple[int, ...], T]]] = {}
    for position, item in enumerate(items):
        pattern, numbers = template(name(item))
        extra = key(item)
        if not numbers or extra is None:
            buckets[(f"\x01{position}", None)] = [(position, (), item)]
            continue
        buckets.setdefault((pattern, extra), []).append((position, numbers, item))
    placed: list[tuple[int, Group[T]]] = []
    for (pattern, _), members in buckets.items():
        if len(members) == 1:
            position, _, item = members[0]
            placed.append((position, Group(name(item), (item,))))
            continue
        where = {id(item): position for position, _, item in members}
        for shown, group_items in _split(pattern, [(numbers, item) for _, numbers, item in members]):
            if len(group_items) == 1:
                shown = name(group_items[0])
            placed.append((min(where[id(i)] for i in group_items), Group(shown, tuple(group_items))))
    placed.sort(key=lambda pair: pair[0])
    return [group for _, group in placed]


def short_list(names: Sequence[str], limit: int = 4, mark: str = "") -> str:
    """Names folded like rows, at most `limit` shown: 'h.{0..11}.attn.bias, mask (+3 more)'."""
    groups = fold(list(names), name=lambda n: n, key=lambda n: 0)
    shown = ", ".join(f"{mark}{group.name}{mark}" for group in groups[:limit])
    if len(groups) > limit:
        hidden = sum(len(group.items) for group in groups[limit:])
        shown += render(" (+{count} more)", count=hidden)
    return shown
