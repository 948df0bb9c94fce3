"""The rows of `inventory`: the kinds of tensor a module holds, and one row per tensor.

The kinds, column names and yes/no are English data (`row.kind == "buffer"`); a table shows them
in the current language (`cells()`, `buflesson.i18n`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from buflesson.i18n import N_, tr

PARAMETER = N_("parameter")
BUFFER = N_("buffer")
NON_PERSISTENT_BUFFER = N_("non-persistent buffer")
NONE_BUFFER = N_("None buffer")
PLAIN = N_("plain attribute")
REFERENCE = N_("reference")
COMPUTED = N_("computed")
EXTRA_STATE = N_("extra state")

KINDS = (PARAMETER, BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PLAIN, REFERENCE, COMPUTED, EXTRA_STATE)
"""Every kind, in the order the summary lists them."""

REGISTERED = (PARAMETER, BUFFER, NON_PERSISTENT_BUFFER)
"""Kinds whose tensor PyTorch itself tracks: `named_parameters()` and `named_buffers()` list them."""

KIND_MEANINGS = {
    PARAMETER: N_("registered with nn.Parameter: saved, moved, handed to the optimizer"),
    BUFFER: N_("registered with register_buffer: saved and moved, not trained"),
    NON_PERSISTENT_BUFFER: N_("register_buffer(..., persistent=False): moved, not saved"),
    NONE_BUFFER: N_("a buffer slot that holds None: nothing to save or move"),
    PLAIN: N_("a tensor PyTorch does not track: not saved, not moved, not trained"),
    REFERENCE: N_("a plain attribute that holds a view of a registered tensor (it shares its memory)"),
    COMPUTED: N_("recomputed from registered tensors (parametrizations, weight_norm, pruning)"),
    EXTRA_STATE: N_("a state_dict() entry the module writes itself (packed quantized weights, extra state)"),
}


@dataclass(frozen=True)
class TensorRow:
    """One tensor of a module: where it lives and how PyTorch treats it.

    `name` is the first name PyTorch gives it (the name `named_parameters()` uses);
    `aliases` are its other names when one tensor is registered under several
    (tied weights, a module used twice). `in_state_dict` says whether one of these
    names is a key of `state_dict()`; `follows_to` whether the attribute holds a
    converted tensor after `.to()`; `stepped_by_optimizer` whether `optimizer.step()`
    on `model.parameters()` changes its values. `refers_to` names the registered
    tensor a reference points at, `sources` those a computed tensor comes from, and
    `unregistered_in` the module, kept in a plain attribute, that holds a tensor
    PyTorch never sees; `module` is the type name of the module that holds the tensor;
    `held_by` the plain attributes that hold this very tensor (`nn.LSTM`'s `_flat_weights`).
    `name_kinds` gives each registered name its own kind where they differ (`kind_of`), `unsaved`
    the names of a tied tensor that are no `state_dict()` key, and `places` where each plain
    attribute name lives: (name, owner module's path, attribute of that module).
    """

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
    aliases: tuple[str, ...] = ()
    note: str = ""
    refers_to: str | None = None
    sources: tuple[str, ...] = ()
    elements: int | None = None
    nbytes: int | None = None
    unregistered_in: str | None = None
    module: str = ""
    held_by: tuple[str, ...] = ()
    name_kinds: tuple[tuple[str, str], ...] = ()
    unsaved: tuple[str, ...] = ()
    places: tuple[tuple[str, str, str], ...] = ()

    def kind_of(self, name: str) -> str:
        """The kind PyTorch gives one of the row's names (one tensor may be a parameter under one
        name and a buffer under another, or a buffer both persistent and not)."""
        return dict(self.name_kinds).get(name, self.kind)

    def place(self, name: str) -> tuple[str, str] | None:
        """For a plain attribute's name (the row's own, or one in `held_by`): the path of the module
        whose attribute holds it and that attribute's name; None for a registered name."""
        for plain, owner, attribute in self.places:
            if plain == name:
                return owner, attribute
        return None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name of the tensor: `name` first, then `aliases`."""
        return (self.name, *self.aliases)

    @property
    def frozen(self) -> bool:
        """A parameter with requires_grad=False."""
        return self.kind == PARAMETER and not self.requires_grad

    @property
    def lazy(self) -> bool:
        """A lazy module's tensor before its first forward (no shape yet)."""
        return self.tensor is not None and is_uninitialized(self.tensor)

    def shape_text(self) -> str:
        """The shape as shown in a table: `(2, 3)`, `()`, or why there is none."""
        if self.shape is not None:
            return str(tuple(self.shape))
        if self.lazy:
            return tr(N_("uninitialized"))
        return "?" if self.kind == COMPUTED else "-"

    def cells(self) -> list[str]:
        """The row as the strings shown in a table (in the current language), in the order of `COLUMNS`."""
        return [
            self.name,
            tr(self.kind),
            yes(self.in_state_dict),
            yes(self.follows_to),
            yes(self.stepped_by_optimizer),
            yes(self.requires_grad),
            self.device,
            self.dtype,
            self.shape_text(),
        ]


_DEFAULTS: dict[str, object] = {}


def make_row(**fields: object) -> TensorRow:
    """`TensorRow(**fields)` without the frozen dataclass's per-field `object.__setattr__` (an
    inventory of GPT-2 builds 148 rows of 25 fields): the same object, built in one update."""
    if not _DEFAULTS:
        _DEFAULTS.update(
            {f.name: f.default for f in dataclasses.fields(TensorRow) if f.default is not dataclasses.MISSING}
        )
    row = object.__new__(TensorRow)
    row.__dict__.update(_DEFAULTS)
    row.__dict__.update(fields)
    return row


COLUMNS = [
    N_("name"),
    N_("kind"),
    N_("in state_dict"),
    N_("follows .to()"),
    N_("stepped by optimizer"),
    N_("requires grad"),
    N_("device"),
    N_("dtype"),
    N_("shape"),
]


def yes(flag: bool) -> str:
    """'yes' or 'no', in the current language."""
    return tr(N_("yes")) if flag else tr(N_("no"))


def is_uninitialized(tensor: torch.Tensor) -> bool:
    """True for the placeholder tensors of lazy modules (`nn.LazyLinear` before its first forward)."""
    return isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin)


_DTYPES: dict[torch.dtype, str] = {}


def describe(tensor: torch.Tensor) -> dict:
    """Device, dtype, shape, elements and bytes of `tensor`; None where it has none (lazy modules)."""
    dtype = tensor.dtype
    info = {
        "device": str(tensor.device),
        "dtype": _DTYPES.get(dtype) or _DTYPES.setdefault(dtype, str(dtype).removeprefix("torch.")),
        "requires_grad": bool(tensor.requires_grad),
    }
    if is_uninitialized(tensor):
        return {**info, "shape": None, "elements": None, "nbytes": None}
    try:
        elements = tensor.numel()
        nbytes = elements * tensor.element_size()
        shape = tuple(tensor.shape)
    except (RuntimeError, NotImplementedError, TypeError):
        return {**info, "shape": None, "elements": None, "nbytes": None}
    return {**info, "shape": shape, "elements": elements, "nbytes": nbytes}
