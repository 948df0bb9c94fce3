"""A GPU stand-in for machines without one: the `meta` device under CUDA's device rule.

Plain `meta` checks devices only where its kernels happen to (elementwise operations): `@`,
`mm`, `F.linear` and indexing with a CPU tensor pass there and fail on a GPU. `DeviceRule`, a
`TorchDispatchMode`, sees every aten operation and judges each one that mixes the stand-in
device with another by CUDA's rule as `buflesson.cuda_rule` writes it down: the operators whose
source was read as CUDA does, the others (TensorIterator configurations not read one by one,
foreach and fused optimizer kernels) by a simpler rule that can differ from CUDA's. A refusal
raises `StandInDeviceError`, worded like CUDA's error and naming the operation.

What the stand-in cannot do: `meta` tensors hold no values, so `.item()`, printing values,
moving back to the CPU, and indexing with a mask made on the stand-in fail (with meta's own
NotImplementedError), where a GPU would run them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack

from buflesson import cuda_rule

STANDIN = torch.device("meta")


class StandInDeviceError(RuntimeError):
    """An operation that a GPU refuses, refused by buflesson's stand-in in the same words."""


def _note(op: str) -> str:
    return f" (buflesson's GPU stand-in, which refuses {op} here as CUDA does)"


class DeviceRule(TorchDispatchMode):
    """Judge every aten operation that mixes the stand-in device with another, as CUDA does."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode wraps __torch_dispatch__ in torch._dynamo.disable unless told otherwise,
        # which imports torch._dynamo (seconds) at the first operation. Nothing here is compiled.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not _mixes_standin(args, kwargs):
            return func(*args, **kwargs)
        verdict = cuda_rule.judge(func, args, kwargs)
        if verdict.error:
            raise StandInDeviceError(verdict.error + _note(str(func)))
        if verdict.composite:
            with self:  # the operations the composite kernel calls come back here to be judged
                return func._op_dk(torch._C.DispatchKey.CompositeExplicitAutograd, *args, **kwargs)
        if verdict.rewrite:
            args, kwargs = verdict.rewrite(args, kwargs)
        return func(*args, **kwargs)


def _mixes_standin(args: tuple, kwargs: dict) -> bool:
    """True when the call's tensors sit on the stand-in device and on at least one other."""
    standin = other = False
    for value in (*args, *kwargs.values()):
        items = value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, torch.Tensor):
                if item.device.type == STANDIN.type:
                    standin = True
                else:
                    other = True
    return standin and other


_PROCESS_RULE: DeviceRule | None = None


def rule_active() -> bool:
    """True when a `DeviceRule` is on this thread's dispatch mode stack."""
    return any(isinstance(mode, DeviceRule) for mode in _get_current_dispatch_mode_stack())


def enable() -> None:
    """Turn the rule on until the end of the process (for the calling thread: a notebook's cells)."""
    global _PROCESS_RULE
    if not rule_active():
        _PROCESS_RULE = DeviceRule()
        _PROCESS_RULE.__enter__()


@contextlib.contextmanager
def device_rule() -> Iterator[torch.device]:
    """Run the block under the rule (a no-op when it is already on); yields the stand-in device."""
    if rule_active():
        yield STANDIN
        return
    with DeviceRule():
        yield STANDIN
