"""`inventory(module)`: every tensor a module holds, and what PyTorch does with each.

The account is PyTorch's own: every name `named_parameters()`, `named_buffers()`
(both with `remove_duplicate=False`) and `state_dict()` give is covered, a tensor
registered under several names is one row that lists its other names, and the plain
attributes PyTorch does not track are added (see `buflesson.state_walk`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from torch import nn

from buflesson import inventory_view
from buflesson.i18n import N_, render, tr
from buflesson.rows import (
    BUFFER,
    COLUMNS,
    COMPUTED,
    EXTRA_STATE,
    KINDS,
    NON_PERSISTENT_BUFFER,
    NONE_BUFFER,
    PARAMETER,
    PLAIN,
    REFERENCE,
    REGISTERED,
    TensorRow,
)
from buflesson.state_walk import Walk

__all__ = [
    "BUFFER",
    "COLUMNS",
    "COMPUTED",
    "EXTRA_STATE",
    "KINDS",
    "NON_PERSISTENT_BUFFER",
    "NONE_BUFFER",
    "PARAMETER",
    "PLAIN",
    "REFERENCE",
    "REGISTERED",
    "Inventory",
    "TensorRow",
    "inventory",
]


class Inventory:
    """The rows of `inventory`: a summary and a table in Jupyter, aligned text elsewhere.

    Iterating gives every row (one per tensor); the display folds repeated blocks
    unless `expand` is set. `model_rows` are all the model's rows, `rows` the ones
    kept by a kind filter.
    """

    def __init__(
        self,
        rows: list[TensorRow],
        title: str = "",
        *,
        expand: bool = False,
        model_rows: list[TensorRow] | None = None,
        kinds: tuple[str, ...] = (),
        state_dict_error: str | None = None,
    ) -> None:
        self.rows = rows
        self.state_dict_error = state_dict_error
        """Why `state_dict()` raised, when it did: then `in_state_dict` is what the kinds predict."""
        self.title = title
        self.expand = expand
        self.model_rows = model_rows if model_rows is not None else rows
        self.kinds = kinds
        self._index: dict[str, TensorRow] | None = None

    def __iter__(self) -> Iterator[TensorRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _names(self) -> dict[str, TensorRow]:
        if self._index is None:
            self._index = {}
            for row in self.rows:
                for name in (*row.names, *row.held_by):
                    self._index.setdefault(name, row)
        return self._index

    def __getitem__(self, name: str) -> TensorRow:
        """The row of the tensor called `name`: by its first name, another name, or a plain attribute
        that holds it."""
        row = self._names().get(name)
        if row is None:
            close = difflib.get_close_matches(str(name), list(self._names()), n=3)
            names = self.names()
            shown = ", ".join(names[:12]) + (
                render(" (+{count} more)", count=len(names) - 12) if len(names) > 12 else ""
            )
            if close:
                raise KeyError(
                    render(
                        "no tensor named {name!r}; did you mean {close}? Names: {names}",
                        name=name,
                        close=", ".join(close),
                        names=shown,
                    )
                )
            raise KeyError(render("no tensor named {name!r} Names: {names}", name=name, names=shown))
        return row

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._names()

    def names(self, kind: str | None = None) -> list[str]:
        """First names of the rows, optionally only those of one kind."""
        return [row.name for row in self.rows if kind is None or row.kind == kind]

    def only(self, *kinds: str) -> Inventory:
        """The same inventory showing only rows of these kinds (the summary still covers every row)."""
        wanted = _kinds(kinds)
        rows = [row for row in self.rows if row.kind in wanted]
        ordered = tuple(kind for kind in KINDS if kind in wanted)
        return Inventory(
            rows,
            self.title,
            expand=self.expand,
            model_rows=self.model_rows,
            kinds=ordered,
            state_dict_error=self.state_dict_error,
        )

    def expanded(self) -> Inventory:
        """The same inventory listing every row, repeated blocks not folded."""
        return Inventory(
            self.rows,
            self.title,
            expand=True,
            model_rows=self.model_rows,
            kinds=self.kinds,
            state_dict_error=self.state_dict_error,
        )

    def _extra(self) -> list[tuple[str, str]]:
        if self.state_dict_error is None:
            return []
        return [
            (
                tr(N_("state_dict() fails")),
                render(
                    "model.state_dict() raises {error}; the saved column shows what each kind would "
                    "give, and no checkpoint can be written until it works.",
                    error=self.state_dict_error,
                ),
            )
        ]

    def __str__(self) -> str:
        return inventory_view.to_text(
            self.title, self.model_rows, self.rows, self.expand, self.kinds, self._extra()
        )

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return inventory_view.to_html(
            self.title, self.model_rows, self.rows, self.expand, self.kinds, self._extra()
        )


def _kinds(kinds: Iterable[str]) -> set[str]:
    wanted = set()
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(
                render("unknown kind {kind!r}; kinds: {kinds}", kind=kind, kinds=", ".join(KINDS))
            )
        wanted.add(kind)
    return wanted


def inventory(
    module: nn.Module, *, expand: bool = False, kind: str | Iterable[str] | None = None
) -> Inventory:
    """List every tensor `module` holds, in every submodule, one row each.

    Rows cover parameters, buffers (persistent, non-persistent and None), state_dict
    entries that are no registered tensor (extra state, packed quantized weights),
    tensors computed from registered ones (parametrizations, weight_norm), plain tensor
    attributes (also inside lists, tuples, dicts, deques, dataclasses and other objects,
    `__slots__` and class attributes, and the tensors of modules kept there), and plain
    attributes that refer to registered tensors. One tensor registered under several names
    is one row; `row.kind_of(name)` gives each name's own kind where they differ.

    Repeated blocks are shown folded (`h.{0..11}.attn.c_attn.weight`); `expand=True`
    shows every row. `kind` keeps only rows of that kind (or kinds), e.g. `"buffer"`.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            render(
                "inventory() expects a torch.nn.Module instance, got {type}. Pass the model object, e.g. "
                "inventory(model), not its class or its state_dict().",
                type=type(module).__name__,
            )
        )
    walk = Walk(module)
    rows = walk.rows()
    table = Inventory(
        rows, title=type(module).__name__, expand=expand, state_dict_error=walk.state_dict_error
    )
    if kind is not None:
        table = table.only(*([kind] if isinstance(kind, str) else kind))
    return table
