"""The rows of `inventory`: the kinds of tensor a module holds, and one row per tensor."""

from __future__ import annotations

from dataclasses import dataclass

import torch

PARAMETER = "parameter"
BUFFER = "buffer"
NON_PERSISTENT_BUFFER = "non-persistent buffer"
NONE_BUFFER = "None buffer"
PLAIN = "plain attribute"
REFERENCE = "reference"
COMPUTED = "computed"
EXTRA_STATE = "extra state"

KINDS = (PARAMETER, BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PLAIN, REFERENCE, COMPUTED, EXTRA_STATE)
"""Every kind, in the order the summary lists them."""

REGISTERED = (PARAMETER, BUFFER, NON_PERSISTENT_BUFFER)
"""Kinds whose tensor PyTorch itself tracks: `named_parameters()` and `named_buffers()` list them."""

KIND_MEANINGS = {
    PARAMETER: "registered with nn.Parameter: saved, moved, handed to the optimizer",
    BUFFER: "registered with register_buffer: saved and moved, not trained",
    NON_PERSISTENT_BUFFER: "register_buffer(..., persistent=False): moved, not saved",
    NONE_BUFFER: "a buffer slot that holds None: nothing to save or move",
    PLAIN: "a tensor PyTorch does not track: not saved, not moved, not trained",
    REFERENCE: "a plain attribute that holds a view of a registered tensor (it shares its memory)",
    COMPUTED: "recomputed from registered tensors (parametrizations, weight_norm, pruning)",
    EXTRA_STATE: "a state_dict() entry the module writes itself (packed quantized weights, extra state)",
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

    @property
    def names(self) -> tuple[str, ...]:
        """Every name of the tensor: `name` first, then `aliases`."""
        return (self.name, *self.aliases)

    @property
    def frozen(self) -> bool:
        """A parameter with requires_grad=False."""
        return self.kind == PARAMETER and not self.requires_grad

    def shape_text(self) -> str:
        """The shape as shown in a table: `(2, 3)`, `()`, or why there is none."""
        if self.shape is not None:
            return str(tuple(self.shape))
        if "uninitialized" in self.note:
            return "uninitialized"
        return "?" if self.kind == COMPUTED else "-"

    def cells(self) -> list[str]:
        """The row as the strings shown in a table, in the order of `COLUMNS`."""
        return [
            self.name,
            self.kind,
            yes(self.in_state_dict),
            yes(self.follows_to),
            yes(self.stepped_by_optimizer),
            yes(self.requires_grad),
            self.device,
            self.dtype,
            self.shape_text(),
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


def yes(flag: bool) -> str:
    """'yes' or 'no'."""
    return "yes" if flag else "no"


def is_uninitialized(tensor: torch.Tensor) -> bool:
    """True for the placeholder tensors of lazy modules (`nn.LazyLinear` before its first forward)."""
    return isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin)


def describe(tensor: torch.Tensor) -> dict:
    """Device, dtype, shape, elements and bytes of `tensor`; None where it has none (lazy modules)."""
    info = {
        "device": str(tensor.device),
        "dtype": str(tensor.dtype).removeprefix("torch."),
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
