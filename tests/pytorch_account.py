"""PyTorch's own account of a model's tensors, compared with what `inventory` says.

`mismatches(model)` lists every disagreement; an empty list means inventory covers
every name PyTorch gives a tensor exactly once, folds tied tensors into one row,
counts each tensor once, and reports the device, dtype, shape and flags PyTorch does.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn
from torch.nn.utils import parametrize

from buflesson import inventory
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PARAMETER, PLAIN

_UNINITIALIZED = torch.nn.parameter.UninitializedTensorMixin


def _names(row) -> tuple[str, ...]:
    return (row.name, *getattr(row, "aliases", ()))


def _storage(tensor: torch.Tensor):
    if tensor.device.type == "meta" or isinstance(tensor, _UNINITIALIZED):
        return None
    try:
        pointer = tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None
    return (str(tensor.device), pointer) if pointer else None


def mismatches(model: nn.Module) -> list[str]:
    """Every way `inventory(model)` differs from PyTorch's own account (empty: they agree)."""
    rows = list(inventory(model))
    found: list[str] = []
    counts = Counter(name for row in rows for name in _names(row))
    found += [f"{name!r} is named by {count} rows" for name, count in counts.items() if count > 1]
    by_name = {name: row for row in rows for name in _names(row)}

    params = list(model.named_parameters(remove_duplicate=False))
    buffers = list(model.named_buffers(remove_duplicate=False))
    param_names = {name for name, _ in params}
    persistent = {}
    empty = []
    for path, module in model.named_modules(remove_duplicate=False):
        prefix = f"{path}." if path else ""
        for key, buf in module._buffers.items():
            persistent[prefix + key] = key not in module._non_persistent_buffers_set
            if buf is None:
                empty.append(prefix + key)
    for name, tensor in params + buffers:
        row = by_name.get(name)
        if row is None:
            found.append(f"{name!r}: no row")
            continue
        if name in param_names:
            kind = PARAMETER
        else:
            kind = BUFFER if persistent.get(name, True) else NON_PERSISTENT_BUFFER
        if row.kind != kind:
            found.append(f"{name!r}: kind {row.kind!r}, PyTorch says {kind!r}")
        if row.tensor is not tensor:
            found.append(f"{name!r}: the row holds another tensor")
        found += _columns(name, row, tensor)
    for name in empty:
        row = by_name.get(name)
        if row is None or row.kind != NONE_BUFFER:
            found.append(f"{name!r}: a None buffer, inventory says {row.kind if row else 'nothing'}")

    unique_params = list(model.parameters())
    unique_buffers = list(model.buffers())
    rows_of = Counter(row.kind for row in rows)
    if rows_of[PARAMETER] != len(unique_params):
        found.append(f"{rows_of[PARAMETER]} parameter rows, {len(unique_params)} parameters")
    tracked_buffers = rows_of[BUFFER] + rows_of[NON_PERSISTENT_BUFFER]
    if tracked_buffers != len(unique_buffers):
        found.append(f"{tracked_buffers} buffer rows, {len(unique_buffers)} buffers")
    sized = [p for p in unique_params if not isinstance(p, _UNINITIALIZED)]
    counted = sum(_elements(row) for row in rows if row.kind == PARAMETER)
    if counted != sum(p.numel() for p in sized):
        found.append(f"parameter elements {counted}, PyTorch {sum(p.numel() for p in sized)}")

    state = model.state_dict()
    for key in state:
        row = by_name.get(key)
        if row is None:
            found.append(f"state_dict key {key!r}: no row")
        elif not row.in_state_dict:
            found.append(f"state_dict key {key!r}: its row says not in state_dict")
    for row in rows:
        if row.in_state_dict and not any(name in state for name in _names(row)):
            found.append(f"{row.name!r}: says in state_dict, no such key")

    registered = {id(t) for _, t in params + buffers}
    storages = {_storage(t) for _, t in params + buffers} - {None}
    for row in rows:
        if row.kind == PLAIN and row.tensor is not None:
            if id(row.tensor) in registered:
                found.append(f"{row.name!r}: a plain row for a registered tensor")
            elif _storage(row.tensor) in storages:
                found.append(f"{row.name!r}: a plain row for a view of a registered tensor")

    for path, module in model.named_modules():
        if parametrize.is_parametrized(module):
            prefix = f"{path}." if path else ""
            for tensor_name in module.parametrizations:
                row = by_name.get(prefix + tensor_name)
                if row is None:
                    found.append(f"{prefix + tensor_name!r}: parametrized, no row")
                elif not set(getattr(row, "sources", ())) & set(by_name):
                    found.append(f"{prefix + tensor_name!r}: not linked to its originals")
    return found


def _elements(row) -> int:
    if isinstance(row.tensor, _UNINITIALIZED):
        return 0
    return row.elements if getattr(row, "elements", None) is not None else row.tensor.numel()


def _columns(name: str, row, tensor: torch.Tensor) -> list[str]:
    found = []
    if row.device != str(tensor.device):
        found.append(f"{name!r}: device {row.device}, PyTorch {tensor.device}")
    if row.dtype != str(tensor.dtype).removeprefix("torch."):
        found.append(f"{name!r}: dtype {row.dtype}, PyTorch {tensor.dtype}")
    if not isinstance(tensor, _UNINITIALIZED) and row.shape != tuple(tensor.shape):
        found.append(f"{name!r}: shape {row.shape}, PyTorch {tuple(tensor.shape)}")
    if row.requires_grad != tensor.requires_grad:
        found.append(f"{name!r}: requires_grad {row.requires_grad}, PyTorch {tensor.requires_grad}")
    trained = isinstance(tensor, nn.Parameter) and tensor.requires_grad and row.kind == PARAMETER
    if row.stepped_by_optimizer != trained:
        found.append(f"{name!r}: stepped_by_optimizer {row.stepped_by_optimizer}, expected {trained}")
    if not row.follows_to:
        found.append(f"{name!r}: a registered tensor that does not follow .to()")
    return found
