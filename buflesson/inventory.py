"""`inventory(module)`: every tensor a module holds, and what PyTorch does with each."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

PARAMETER = "parameter"
BUFFER = "buffer"
NON_PERSISTENT_BUFFER = "non-persistent buffer"
NONE_BUFFER = "None buffer"
PLAIN = "plain attribute"

_MAX_DEPTH = 4  # how deep to look into lists, tuples and dicts held as attributes


@dataclass(frozen=True)
class TensorRow:
    """One tensor of a module: where it lives and how PyTorch treats it."""

    name: str
    kind: str
    in_state_dict: bool
    follows_to: bool
    stepped_by_optimizer: bool
    requires_grad: bool
    device: str
    dtype: str
    shape: tuple[int, ...] | None
    tensor: torch.Tensor | None = None

    def cells(self) -> list[str]:
        """The row as the strings shown in a table."""
        shape = "-" if self.shape is None else str(tuple(self.shape))
        return [
            self.name,
            self.kind,
            _yes(self.in_state_dict),
            _yes(self.follows_to),
            _yes(self.stepped_by_optimizer),
            _yes(self.requires_grad),
            self.device,
            self.dtype,
            shape,
        ]


COLUMNS = [
    "name",
    "kind",
    "in state_dict",
    "follows .to()",
    "stepped by optimizer",
    "requires grad",
    "device",
    "dtype",
    "shape",
]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


class Inventory:
    """The rows of `inventory`: a table in Jupyter, aligned text elsewhere."""

    def __init__(self, rows: list[TensorRow], title: str = "") -> None:
        self.rows = rows
        self.title = title

    def __iter__(self) -> Iterator[TensorRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> TensorRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no tensor named {name!r}; names: {', '.join(self.names())}")

    def __contains__(self, name: object) -> bool:
        return any(row.name == name for row in self.rows)

    def names(self, kind: str | None = None) -> list[str]:
        """Qualified names of the rows, optionally only those of one kind."""
        return [row.name for row in self.rows if kind is None or row.kind == kind]

    def __str__(self) -> str:
        table = [COLUMNS] + [row.cells() for row in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if not self.rows:
            lines.append("(no tensors)")
        if self.title:
            lines.insert(0, self.title)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in COLUMNS)
        body = []
        for row in self.rows:
            cells = "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row.cells())
            body.append(f"<tr class='buflesson-{row.kind.replace(' ', '-')}'>{cells}</tr>")
        if not self.rows:
            body.append(f"<tr><td colspan='{len(COLUMNS)}'>(no tensors)</td></tr>")
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return (
            f"<table class='buflesson-inventory'>{caption}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )


def _tensor_row(name: str, kind: str, tensor: torch.Tensor) -> TensorRow:
    tracked = kind in (PARAMETER, BUFFER, NON_PERSISTENT_BUFFER)
    return TensorRow(
        name=name,
        kind=kind,
        in_state_dict=kind in (PARAMETER, BUFFER),
        follows_to=tracked,
        stepped_by_optimizer=kind == PARAMETER and tensor.requires_grad,
        requires_grad=tensor.requires_grad,
        device=str(tensor.device),
        dtype=str(tensor.dtype).removeprefix("torch."),
        shape=tuple(tensor.shape),
        tensor=tensor,
    )


def _plain_tensors(value: object, name: str, depth: int) -> Iterator[tuple[str, torch.Tensor]]:
    """Tensors inside an attribute value, looking into lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif depth < _MAX_DEPTH and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _plain_tensors(item, f"{name}[{i}]", depth + 1)
    elif depth < _MAX_DEPTH and isinstance(value, dict):
        for key, item in value.items():
            yield from _plain_tensors(item, f"{name}[{key!r}]", depth + 1)


def _module_rows(prefix: str, module: nn.Module) -> Iterator[TensorRow]:
    for name, param in module._parameters.items():
        if param is not None:
            yield _tensor_row(prefix + name, PARAMETER, param)
    for name, buf in module._buffers.items():
        if buf is None:
            yield TensorRow(prefix + name, NONE_BUFFER, False, False, False, False, "-", "-", None)
        elif name in module._non_persistent_buffers_set:
            yield _tensor_row(prefix + name, NON_PERSISTENT_BUFFER, buf)
        else:
            yield _tensor_row(prefix + name, BUFFER, buf)
    for name, value in vars(module).items():
        if name in ("_parameters", "_buffers", "_modules"):
            continue
        for qualified, tensor in _plain_tensors(value, prefix + name, 0):
            yield _tensor_row(qualified, PLAIN, tensor)


def inventory(module: nn.Module) -> Inventory:
    """List every tensor `module` holds, in every submodule, one row each.

    Rows cover parameters, buffers (persistent, non-persistent and None) and plain
    tensor attributes that PyTorch does not track, including tensors inside lists,
    tuples and dicts held as attributes.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"inventory() expects a torch.nn.Module instance, got {type(module).__name__}. "
            "Pass the model object, e.g. inventory(model), not its class or its state_dict()."
        )
    rows: list[TensorRow] = []
    for prefix, sub in module.named_modules():
        rows.extend(_module_rows(f"{prefix}." if prefix else "", sub))
    return Inventory(rows, title=type(module).__name__)
