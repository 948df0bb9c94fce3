"""The limits every notebook runs under: one definition, from which the rest follows.

Each field of `Limits` carries its command-line flag, unit, lower bound, help text and the phrase a
gradebook reason uses (`limit(...)`). `add_options` makes the `buflesson grade` options from them,
`from_options` reads them back (argparse has already validated each value), `Limits.say` words one
in a sentence, and `markdown_table` is the table in the README (a test holds the README to it).
A new limit is one field here, plus the code that enforces it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any

BYTES_PER_FILE = 16 * 2**10  # the disk limit also caps the number of files and folders: one per 16 KiB


@dataclass(frozen=True)
class Spec:
    """What the command line and the messages need to know about one limit."""

    flag: str
    unit: str  # "s", "MB", or "" for a count
    minimum: float
    help: str
    phrase: str  # "limit per cell": how a reason names it, after the value ("the 3 s limit per cell")
    enforced: str  # how it is enforced, for the README's table


def limit(default: float, *, flag: str, unit: str, minimum: float, help: str, phrase: str, enforced: str):
    """A field of `Limits` with its `Spec`."""
    return field(default=default, metadata={"spec": Spec(flag, unit, minimum, help, phrase, enforced)})


@dataclass(frozen=True)
class Limits:
    """What one notebook may use while it is graded."""

    cell_timeout: float = limit(
        60.0,
        flag="--cell-timeout",
        unit="s",
        minimum=0.1,
        help="wall time one cell may run, a check cell included",
        phrase="limit per cell",
        enforced="an alarm in the notebook's process stops the cell and the next cell runs; a cell that "
        "ignores it is killed by the judge 2 s (plus a quarter of the limit) later",
    )
    timeout: float = limit(
        300.0,
        flag="--timeout",
        unit="s",
        minimum=1,
        help="wall time a whole notebook may run",
        phrase="limit per notebook",
        enforced="the judge kills the notebook's processes; also a CPU-time limit (this plus 5 s) on each",
    )
    memory: int = limit(
        2048,
        flag="--memory",
        unit="MB",
        minimum=64,
        help="memory (address space) each process of a notebook may add to what it starts with",
        phrase="memory limit",
        enforced="RLIMIT_AS on each process: an allocation past it fails (MemoryError, or torch's "
        "out-of-memory error); files it writes to /tmp or /dev/shm count against `--disk` instead",
    )
    disk: int = limit(
        512,
        flag="--disk",
        unit="MB",
        minimum=1,
        help="what a notebook may write in all (its folder, /tmp, /var/tmp, /dev/shm); one file per 16 KiB",
        phrase="disk limit",
        enforced="with namespaces, one private tmpfs of this size holds every place it can write (a write "
        "past it fails with 'No space left on device'); without, a file-size limit and the judge's watch "
        "over its folder",
    )
    processes: int = limit(
        64,
        flag="--processes",
        unit="",
        minimum=4,
        help="processes and threads a notebook may run at once",
        phrase="process limit",
        enforced="RLIMIT_NPROC for the notebook's own uid (a fork past it fails); not enforceable for uid 0 "
        "without namespaces",
    )

    def __post_init__(self) -> None:
        for item in fields(self):
            spec: Spec = item.metadata["spec"]
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{spec.flag} takes a number, got {value!r}")
            if value < spec.minimum:
                raise ValueError(f"{spec.flag} must be at least {spec.minimum:g}{_unit(spec)}, got {value:g}")

    def say(self, name: str) -> str:
        """One limit in words, with its value: `say("cell_timeout")` -> "the 3 s limit per cell"."""
        spec = spec_of(name)
        return f"the {getattr(self, name):g}{_unit(spec)} {spec.phrase}"

    @property
    def hard_cell_timeout(self) -> float:
        """When the judge kills a cell that ignored the alarm."""
        return self.cell_timeout * 1.25 + 2.0


def _unit(spec: Spec) -> str:
    return f" {spec.unit}" if spec.unit else ""


def spec_of(name: str) -> Spec:
    """The `Spec` of the field `name`."""
    for item in fields(Limits):
        if item.name == name:
            return item.metadata["spec"]
    raise KeyError(name)


def _parser_for(item) -> Any:
    spec: Spec = item.metadata["spec"]
    kind = float if item.type in ("float", float) else int

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a{'n integer' if kind is int else ' number'}, got {text!r}"
            ) from None
        if value < spec.minimum:
            raise argparse.ArgumentTypeError(f"must be at least {spec.minimum:g}{_unit(spec)}, got {text}")
        return value

    return parse


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add one option per limit to `parser` (dest = the field's name)."""
    defaults = Limits()
    for item in fields(Limits):
        spec: Spec = item.metadata["spec"]
        metavar = {"s": "SECONDS", "MB": "MB"}.get(spec.unit, "N")
        parser.add_argument(
            spec.flag,
            dest=f"limit_{item.name}",
            type=_parser_for(item),
            default=getattr(defaults, item.name),
            metavar=metavar,
            help=f"{spec.help} (default {getattr(defaults, item.name):g}{_unit(spec)})",
        )


def from_options(args: argparse.Namespace) -> Limits:
    """The `Limits` of parsed options made by `add_options`."""
    return Limits(**{item.name: getattr(args, f"limit_{item.name}") for item in fields(Limits)})


def markdown_table() -> str:
    """The README's table of limits."""
    defaults = Limits()
    lines = ["| option | default | what it limits | how |", "|---|---|---|---|"]
    for item in fields(Limits):
        spec: Spec = item.metadata["spec"]
        value = f"{getattr(defaults, item.name):g}{_unit(spec)}"
        lines.append(f"| `{spec.flag}` | {value} | {spec.help} | {spec.enforced} |")
    return "\n".join(lines)
