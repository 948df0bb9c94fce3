"""CUDA's device rule, operation by operation, as PyTorch 2.13's source writes it.

`judge(func, args, kwargs)` says what a CUDA build does with one aten call whose tensor operands
sit on more than one device: refuse it (with CUDA's wording), run it, or run its composite
kernel so that the operations inside are judged. The stand-in device plays CUDA's part.

What the source says (read for torch 2.13.0; the wheel ships native_functions.yaml and torchgen,
and libtorch_cpu.so holds the messages):

1. Generated check, the default. For every operator with a CUDA kernel that
   native_functions.yaml does not mark `device_check: NoCheck`, torchgen writes
   `c10::impl::check_and_update_common_device` for each tensor argument, out arguments first,
   then the positional ones (torchgen/dest/register_dispatch_key.py, gen_device_check;
   ATen/core/op_registration/adaption.h). Every tensor must sit on the device of the first one:
   no exception for a 0-dim CPU tensor. `mm`, `addmm` (so `@` and `F.linear`), `cat`,
   `index_select` (so `embedding`), `equal`, `clamp(min=tensor)`, `nll_loss_forward` are of this kind.
2. TensorIterator, for NoCheck operators marked "# TensorIterator" (add, mul, sub, div, the
   comparisons, fill_, ...): TensorIteratorBase::compute_types (aten/src/ATen/TensorIterator.cpp)
   takes the first non-CPU device as the common one; with `allow_cpu_scalars`, which the binary and
   comparison configurations set (BINARY_OP_CONFIG, set_up_comparison_op_config) and build_ternary_op
   does not, one 0-dim CPU *input* may stay on the CPU. An output never may. Not every TensorIterator
   operator's configuration was read: one with at most two tensor inputs is taken as binary (allowed),
   one with more as ternary (refused), except `lerp`, whose meta function sets allow_cpu_scalars
   (Lerp.cpp). Foreach and fused optimizer kernels (NoCheck, "fall back to slow path") get the
   one-line rule below.
3. Operators that check for themselves (NoCheck, aten/src/ATen/native/TensorAdvancedIndexing.cpp,
   TensorCompare.cpp, cuda/Indexing.cu, Copy.cpp):
   - index (`t[idx]`): indices on the CPU or on the indexed tensor's device; a CPU tensor indexed
     with device indices is refused ("indices should be either on cpu or on the same device as the
     indexed tensor (cpu)"). A 0-dim integer index never gets here: Python indexing turns it into
     an int (ATen/TensorIndexing.h, handleDimInMultiDimIndexing).
   - _index_put_impl_ (`t[idx] = v`): indices on any device are moved to `t`'s; a 0-dim value is
     moved too; any other value must be on `t`'s device.
   - masked_fill_: the mask on the tensor's device, exactly ("expected self and mask to be on the
     same device, ..."); the value is read with item().
   - where: every 0-dim operand is moved to the common device; the others must be on it.
   - copy_ and _to_copy copy across devices: that is what `.to()` runs.
4. Composite operators without a CUDA kernel (embedding, stack, index_put_, masked_fill, ...) run
   their CompositeExplicitAutograd kernel on CUDA, so the operations they call are judged.

Operators this file cannot place (other namespaces, aten operators missing from the yaml) get the
one-line rule: one device, except 0-dim CPU tensors.

Sources: torchgen and native_functions.yaml as shipped in the torch 2.13.0 wheel, and its headers
(adaption.h, IndexingUtils.h, TensorAdvancedIndexingUtils.h, TensorIndexing.h); TensorIterator.cpp,
TensorAdvancedIndexing.cpp, TensorCompare.cpp, cuda/Indexing.cu and Lerp.cpp from pytorch/pytorch
(recent main, not the 2.13 tag); every message checked against the strings of libtorch_cpu.so 2.13.0.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

# Wording copied from PyTorch 2.13 (strings of libtorch_cpu.so; sources named above).
GENERATED = (
    "Expected all tensors to be on the same device, but got {arg} is on {device}, "
    "different from other tensors on {common}"
)
ITERATOR = (
    "Expected all tensors to be on the same device, but found at least two devices, {common} and {device}!"
)
TOO_MANY_SCALARS = "Trying to pass too many CPU scalars to non-CPU kernel!"
INDEX = "indices should be either on cpu or on the same device as the indexed tensor ({device})"
MASK = "expected self and mask to be on the same device, but got mask on {mask} and self on {device}"
VALUE = "expected device {device} but got device {value} for value tensor"

# Operators whose CUDA kernel checks nothing because they copy across devices.
COPIES = frozenset({"copy_", "_to_copy", "_copy_from", "_copy_from_and_resize", "lift_fresh_copy"})
# TensorIterator operators with three inputs that set allow_cpu_scalars themselves (Lerp.cpp).
TERNARY_WITH_CPU_SCALARS = frozenset({"lerp"})
# Used when native_functions.yaml cannot be read: operators known to have the generated check.
FALLBACK_GENERATED = frozenset(
    {"mm", "addmm", "bmm", "baddbmm", "addmv", "dot", "cat", "index_select", "equal", "nll_loss_forward"}
)


@dataclass(frozen=True)
class OpInfo:
    """What native_functions.yaml says about one operator overload."""

    no_check: bool  # `device_check: NoCheck`: no generated check, the kernel checks for itself
    cuda: bool  # a CUDA kernel (in `dispatch`, through `structured_delegate`, or a ufunc loop)
    composite: bool  # a CompositeExplicitAutograd kernel


@dataclass(frozen=True)
class Verdict:
    """What CUDA does with a call: refuse it (`error`), run its composite kernel, or run it."""

    error: str | None = None
    composite: bool = False
    rewrite: Callable[[tuple, dict], tuple[tuple, dict]] | None = None


RUN = Verdict()
COMPOSITE = Verdict(composite=True)


def native_functions_path() -> Path | None:
    """The native_functions.yaml that ships with the installed torch (in torchgen), if any."""
    spec = importlib.util.find_spec("torchgen")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "packaged" / "ATen" / "native" / "native_functions.yaml"
        if path.is_file():
            return path
    return None


def parse_native_functions(text: str) -> dict[str, OpInfo]:
    """`{"add.Tensor": OpInfo(...), "mm": ...}` from the text of native_functions.yaml.

    A line-based reading of the few keys needed, so no YAML library is required.
    """
    raw: dict[str, tuple[bool, set[str], str | None]] = {}
    for entry in re.split(r"^- func:\s*", text, flags=re.M)[1:]:
        name = entry.split("(", 1)[0].strip()
        no_check = re.search(r"^  device_check:\s*NoCheck\b", entry, re.M) is not None
        delegate = re.search(r"^  structured_delegate:\s*([\w.]+)", entry, re.M)
        keys: set[str] = set()
        if re.search(r"^  ufunc_inner_loop:", entry, re.M):
            keys |= {"CPU", "CUDA"}
        block = re.search(r"^  dispatch:[^\n]*\n((?:    .*\n?)+)", entry, re.M)
        for line in block.group(1).splitlines() if block else []:
            line = line.split("#", 1)[0]
            if ":" in line:
                keys |= {key.strip() for key in line.split(":", 1)[0].split(",")}
        raw[name] = (no_check, keys, delegate.group(1) if delegate else None)

    def keys_of(name: str, depth: int = 0) -> set[str]:
        no_check, keys, delegate = raw[name]
        if delegate in raw and depth < 4:
            keys = keys | keys_of(delegate, depth + 1)
        return keys

    table = {}
    for name, (no_check, _, _) in raw.items():
        keys = keys_of(name)
        composite = bool(keys & {"CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional"})
        table[name] = OpInfo(no_check=no_check, cuda="CUDA" in keys, composite=composite)
    return table


@functools.cache
def native_functions() -> dict[str, OpInfo]:
    """The operator table of the installed torch, or {} when its native_functions.yaml is missing."""
    path = native_functions_path()
    return parse_native_functions(path.read_text(encoding="utf-8")) if path else {}


def yaml_name(func: torch._ops.OpOverload) -> str:
    """`aten.add.Tensor` -> "add.Tensor"; `aten.mm.default` -> "mm"."""
    base = func._schema.name.split("::", 1)[-1]
    overload = func._overloadname
    return base if overload == "default" else f"{base}.{overload}"


def judge(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> Verdict:
    """What CUDA does with `func(*args, **kwargs)`, the stand-in device playing CUDA."""
    bound = _bind(func, args, kwargs)
    packet = func._schema.name.split("::", 1)[-1]
    if func.namespace != "aten":
        return _one_device_but_cpu_scalars(bound)
    if packet in COPIES:
        return RUN
    if packet in ("index", "_unsafe_index"):
        return _index(bound)
    if packet == "_index_put_impl_":
        return _index_put(bound)
    if packet == "masked_fill_":
        return _masked_fill(bound)
    if packet == "where" and func._overloadname in ("self", "self_out"):
        return _where(bound)
    table = native_functions()
    info = table.get(yaml_name(func))
    if info is None:
        if not table and packet in FALLBACK_GENERATED:
            return _generated(bound)
        return _one_device_but_cpu_scalars(bound)
    if info.cuda and not info.no_check:
        return _generated(bound)
    if info.cuda:
        if packet.startswith(("_foreach_", "_fused_")):
            return _one_device_but_cpu_scalars(bound)
        return _tensor_iterator(bound, packet)
    if info.composite and _has_composite_kernel(func):
        return COMPOSITE
    return _one_device_but_cpu_scalars(bound)


# --- binding a call to its schema ----------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    name: str
    value: object
    positional: bool
    out: bool
    written: bool  # the schema marks it mutable (`Tensor(a!)`): an output of an in-place operator


def _bind(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> list[Arg]:
    bound = []
    position = 0
    for argument in func._schema.arguments:
        if not argument.kwarg_only and position < len(args):
            value = args[position]
            position += 1
        else:
            value = kwargs.get(argument.name)
        alias = argument.alias_info
        bound.append(
            Arg(
                name=argument.name,
                value=value,
                positional=not argument.kwarg_only,
                out=argument.is_out,
                written=bool(alias is not None and alias.is_write),
            )
        )
    return bound


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, torch.Tensor):
                yield item


class Operand(NamedTuple):
    """The two facts about a tensor that the rules read."""

    device: torch.device
    ndim: int


Tensorish = torch.Tensor | Operand


def _is_cpu_scalar(tensor: Tensorish) -> bool:
    return tensor.device.type == "cpu" and tensor.ndim == 0


def _has_composite_kernel(func: torch._ops.OpOverload) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(
        func.name(), torch._C.DispatchKey.CompositeExplicitAutograd
    )


# --- the rules -----------------------------------------------------------------------------------


def _generated(bound: list[Arg]) -> Verdict:
    """torchgen's check: out arguments, then positional ones; all on the first tensor's device."""
    common = None
    for arg in [a for a in bound if a.out] + [a for a in bound if a.positional]:
        for tensor in _tensors(arg.value):
            if common is None:
                common = tensor.device
            elif tensor.device != common:
                return Verdict(GENERATED.format(arg=arg.name, device=tensor.device, common=common))
    return RUN


def _tensor_iterator(bound: list[Arg], packet: str) -> Verdict:
    outputs = [t for a in bound if a.out or a.written for t in _tensors(a.value)]
    inputs = [t for a in bound if not a.out for t in _tensors(a.value)]
    allow = len(inputs) <= 2 or packet.rstrip("_") in TERNARY_WITH_CPU_SCALARS
    error = _iterator_rule(outputs, inputs, allow_cpu_scalars=allow)
    return Verdict(error) if error else RUN


def _iterator_rule(outputs: list[Tensorish], inputs: list[Tensorish], allow_cpu_scalars: bool) -> str | None:
    """TensorIteratorBase::compute_types: the first non-CPU device is the common one."""
    common = next((t.device for t in outputs + inputs if t.device.type != "cpu"), None)
    if common is None:
        return None
    for tensor in outputs:
        if tensor.device != common:
            return ITERATOR.format(common=common, device=tensor.device)
    scalars = 0
    for tensor in inputs:
        if allow_cpu_scalars and _is_cpu_scalar(tensor):
            scalars += 1
            if scalars > 1:
                return TOO_MANY_SCALARS
        elif tensor.device != common:
            return ITERATOR.format(common=common, device=tensor.device)
    return None


def _one_device_but_cpu_scalars(bound: list[Arg]) -> Verdict:
    """The one-line rule, for operators whose source was not read: one device, 0-dim CPU aside."""
    tensors = [t for a in bound for t in _tensors(a.value) if not _is_cpu_scalar(t)]
    common = next((t.device for t in tensors if t.device.type != "cpu"), None)
    for tensor in tensors:
        if common is not None and tensor.device != common:
            return Verdict(ITERATOR.format(common=common, device=tensor.device))
    return RUN


def _index_tensors(bound: list[Arg]) -> tuple[torch.Tensor, list]:
    self = next(a.value for a in bound if a.name == "self")
    indices = next(a.value for a in bound if a.name == "indices")
    return self, list(indices)


def _expand_to(device: torch.device, indices: list) -> list:
    """IndexingUtils.h expandTensors: masks become long indices (nonzero), then move to `device`."""
    expanded: list = []
    for index in indices:
        if index is None:
            expanded.append(None)
        elif index.dtype in (torch.bool, torch.uint8) and index.device != device:
            nonzero = index.nonzero()
            expanded += [nonzero.select(1, j).to(device) for j in range(index.dim())]
        elif index.device != device:
            expanded.append(index.to(device))
        else:
            expanded.append(index)
    return expanded


def _index(bound: list[Arg]) -> Verdict:
    self, indices = _index_tensors(bound)
    for index in indices:
        if index is not None and index.device.type != "cpu" and index.device != self.device:
            return Verdict(INDEX.format(device=self.device))
    if all(index is None or index.device == self.device for index in indices):
        return RUN
    position = [a.name for a in bound].index("indices")

    def rewrite(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        args = list(args)
        args[position] = _expand_to(self.device, indices)
        return tuple(args), kwargs

    return Verdict(rewrite=rewrite)


def _index_put(bound: list[Arg]) -> Verdict:
    self, indices = _index_tensors(bound)
    value = next(a.value for a in bound if a.name == "values")
    accumulate = bool(next((a.value for a in bound if a.name == "accumulate"), False))
    masks = [i for i in indices if i is not None]
    if (
        not accumulate
        and value.numel() == 1
        and value.device.type == "cpu"
        and len(masks) == 1
        and masks[0].dtype in (torch.bool, torch.uint8)
        and masks[0].device == self.device
    ):
        return RUN  # canDispatchToMaskedFill: masked_fill_ with value.item()
    moved = Operand(value.device, value.dim())
    if value.device != self.device and value.numel() == 1 and value.dim() == 0:
        moved = Operand(self.device, 0)
    if self.device.type != "cpu" and accumulate and moved.device != self.device:
        return Verdict(VALUE.format(device=self.device, value=moved.device))
    error = _iterator_rule([Operand(self.device, self.dim())], [moved], allow_cpu_scalars=False)
    if error:
        return Verdict(error)
    if self.device.type == "cpu" and any(i is not None and i.device != self.device for i in indices):
        return RUN  # CUDA copies the indices to the CPU; the stand-in has no values to copy
    names = [a.name for a in bound]

    def rewrite(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        args = list(args)
        args[names.index("indices")] = _expand_to(self.device, indices)
        if value.device != self.device:
            args[names.index("values")] = value.to(self.device)
        return tuple(args), kwargs

    return Verdict(rewrite=rewrite)


def _masked_fill(bound: list[Arg]) -> Verdict:
    self = next(a.value for a in bound if a.name == "self")
    mask = next(a.value for a in bound if a.name == "mask")
    if mask.device != self.device:
        return Verdict(MASK.format(mask=mask.device, device=self.device))
    value = next((a.value for a in bound if a.name == "value"), None)
    if not isinstance(value, torch.Tensor) or value.device == self.device or value.dim() != 0:
        return RUN
    position = [a.name for a in bound].index("value")

    def rewrite(args: tuple, kwargs: dict) -> tuple[tuple, dict]:  # CUDA reads value.item()
        args = list(args)
        args[position] = value.to(self.device)
        return tuple(args), kwargs

    return Verdict(rewrite=rewrite)


def _where(bound: list[Arg]) -> Verdict:
    operands = {a.name: a.value for a in bound if isinstance(a.value, torch.Tensor)}
    out = operands.pop("out", None)
    common = next((t.device for t in operands.values() if t.device.type != "cpu"), None)
    if common is None:
        return RUN
    moved = {name: t for name, t in operands.items() if t.device != common and t.dim() == 0}
    rest = [t for name, t in operands.items() if name not in moved]
    error = _iterator_rule([out] if out is not None else [], rest, allow_cpu_scalars=False)
    if error:
        return Verdict(error)
    if not moved:
        return RUN
    names = [a.name for a in bound]

    def rewrite(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        args = list(args)
        for name, tensor in moved.items():
            args[names.index(name)] = tensor.to(common)
        return tuple(args), kwargs

    return Verdict(rewrite=rewrite)
