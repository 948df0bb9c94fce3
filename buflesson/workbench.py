"""The student's side of a check: holds the answer and runs what the check asks for.

A check never touches the student's objects itself. It sends requests ("build the class with these
arguments", "run forward on this tensor", "what is `model.mean`?", "call `torch.save` on this"), and
the `Workbench` runs them next to the student's code and answers with plain data (`buflesson.wire`)
or with a `Ref` to an object it keeps. In a notebook both sides share one process
(`buflesson.handles.LocalLink`); in the grader the workbench lives in the child process that runs
the student's notebook, and the check in the judge, which never runs a line the student wrote.

Every request is one of a few operations (`OPERATIONS`). An error raised by the student's code is
answered as data (`{"error": ...}`), never raised here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator

import torch

from buflesson import seeding, wire
from buflesson.wire import Ref, WireError

LIBRARIES = ("torch", "buflesson")  # what `lib` may name: never the student's code


class Workbench:
    """The objects a check works on, by number, and the operations it may ask for."""

    def __init__(self, answer: object) -> None:
        self.objects: dict[int, object] = {1: answer}
        self.next_id = 2
        self.folder: str | None = None
        # What the student's calls changed and the workbench put back (`_watched`), in order:
        # global settings (`leaked`) and the inputs a check passed (`modified_inputs`).
        self.leaked: list[str] = []
        self.modified_inputs = 0

    # --- bookkeeping --------------------------------------------------------------------------

    def keep(self, value: object) -> Ref:
        ref = Ref(self.next_id)
        self.objects[ref.id] = value
        self.next_id += 1
        return ref

    def get(self, ref: object) -> object:
        if not isinstance(ref, Ref) or ref.id not in self.objects:
            raise LookupError(f"no object {ref!r} on the student's side")
        return self.objects[ref.id]

    def resolve(self, value: object) -> object:
        """`value` with every `Ref` inside replaced by the object it names."""
        if isinstance(value, Ref):
            return self.get(value)
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(item) for item in value)
        if isinstance(value, dict):
            out = type(value)((key, self.resolve(item)) for key, item in value.items())
            if hasattr(value, "_metadata"):
                out._metadata = value._metadata
            return out
        return value

    def close(self) -> None:
        """Forget every object and remove the scratch folder."""
        self.objects.clear()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    # --- the protocol -------------------------------------------------------------------------

    def handle(self, request: bytes) -> bytes:
        """Answer one request (bytes from `wire.dumps`) with one reply (bytes)."""
        try:
            message = wire.loads(request)
            op, args = message["op"], message.get("args", {})
            if op not in OPERATIONS:
                raise LookupError(f"unknown operation {op!r}")
            reply = {"value": OPERATIONS[op](self, **args)}
        except _StudentRaised as raised:
            reply = {"error": raised.info}
        except (WireError, LookupError, TypeError, KeyError) as error:
            reply = {"refused": f"{type(error).__name__}: {error}"}
        try:
            return wire.dumps(reply)
        except WireError as error:
            return wire.dumps({"refused": f"the reply cannot travel: {error}"})
        except Exception as error:  # the student's object broke while being read (a hostile subclass)
            return wire.dumps({"error": _StudentRaised(error).info})


class _StudentRaised(Exception):
    """The student's code raised: `info` says what, as plain data."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        try:
            text = str(error)
        except Exception:  # a hostile __str__
            text = ""
        self.info = {
            "type": type(error).__name__,
            "message": " ".join(text.split())[:2000],
            "not_implemented": isinstance(error, NotImplementedError),
        }


@contextlib.contextmanager
def _student_code() -> Iterator[None]:
    """Run student code: any Exception it raises becomes an answer, not a crash of the workbench."""
    try:
        yield
    except Exception as error:
        raise _StudentRaised(error) from None


# The seed a call runs under when the check gives none: a number no student writes, so that a
# `torch.manual_seed(n)` in the student's code always shows (`torch.initial_seed()` changes).
UNSEEDED = 0x5EED_B0F_1E55


def _settings() -> dict:
    """The global settings a student's call must leave as it found them, and how to put them back."""
    return {
        "grad_enabled": torch.is_grad_enabled(),
        "default_dtype": torch.get_default_dtype(),
        "default_device": torch.get_default_device(),
        "anomaly": torch.is_anomaly_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


def _put_back(key: str, value: object) -> None:
    if key == "grad_enabled":
        torch.set_grad_enabled(value)
    elif key == "default_dtype":
        torch.set_default_dtype(value)
    elif key == "default_device":
        torch.set_default_device(None if value == torch.device("cpu") else value)
    elif key == "anomaly":
        torch.set_anomaly_enabled(value)
    elif key == "deterministic":
        torch.use_deterministic_algorithms(value)


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the folder was removed
        return None


def _inputs(value: object) -> list[torch.Tensor]:
    """The tensors a check sent as data (not `Ref`s to the student's own objects), for `_watched`."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _inputs(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _inputs(item)]
    return []


@contextlib.contextmanager
def _watched(bench: Workbench, seed: int | None, inputs: list[torch.Tensor]) -> Iterator[None]:
    """Run a student's call in a forked random state seeded with `seed` (or `UNSEEDED`), and put
    back what it changed for the rest of the process: grad mode, default dtype and device, anomaly
    detection, deterministic algorithms, the working directory. What was changed is recorded in
    `bench.leaked` (a reseeded torch generator as `torch_seed`, random numbers drawn by a call made
    without a seed as `torch_rng`; a changed working directory is only put back), an input tensor
    the call changed in place in `bench.modified_inputs`."""
    start = seed if seed is not None else UNSEEDED
    settings, cwd = _settings(), _cwd()
    copies = [(t, t.detach().clone()) for t in inputs if t.device.type != "meta"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(start)
        seeding.forget()
        drawn_from = torch.get_rng_state() if seed is None else None
        try:
            yield
        finally:
            lesson = seeding.reseeded_by_lesson()
            reseeded = torch.initial_seed() != start and not lesson
            changed = ["torch_seed"] if reseeded else []
            # A call the check made without a seed ran, before, in the student's own random state:
            # the random numbers it drew are recorded as a change of that state (`torch_rng`).
            if drawn_from is not None and not (reseeded or lesson):
                if not torch.equal(torch.get_rng_state(), drawn_from):
                    changed.append("torch_rng")
            now = _settings()
            for key, value in settings.items():
                if now[key] != value:
                    changed.append(key)
                    _put_back(key, value)
            if cwd is not None and _cwd() != cwd:
                os.chdir(cwd)
            bench.leaked += [key for key in changed if key not in bench.leaked]
            if any(not _same(t, copy) for t, copy in copies):
                bench.modified_inputs += 1


def _same(tensor: torch.Tensor, copy: torch.Tensor) -> bool:
    return tensor.shape == copy.shape and tensor.dtype == copy.dtype and torch.equal(tensor.detach(), copy)


def _device_rule() -> contextlib.AbstractContextManager:
    """The stand-in's device rule (nothing to enforce on a real accelerator)."""
    from buflesson.devices import device_rule

    return device_rule()


def _answer(bench: Workbench, value: object, keep: bool = False) -> object:
    """Plain data travels as itself, anything else (or anything, with `keep`) stays here as a `Ref`."""
    if keep:
        return bench.keep(value)
    try:
        wire.dumps(value)
    except WireError:
        return bench.keep(value)
    return value


def op_describe(bench: Workbench, ref: Ref) -> dict:
    """What kind of object `ref` is, without running any of its code."""
    obj = bench.get(ref)
    kind = type(obj)
    info: dict = {"type": kind.__name__, "module": getattr(kind, "__module__", "")}
    defined_in = obj.__dict__.get("__module__") if isinstance(obj, type) else getattr(obj, "__module__", None)
    if isinstance(defined_in, str) and (isinstance(obj, type) or callable(obj)):
        info["defined_in"] = defined_in
    if obj is Ellipsis:
        info["kind"] = "placeholder"
    elif obj is None:
        info["kind"] = "none"
    elif isinstance(obj, type):
        info.update(kind="class", name=obj.__name__, module=obj.__module__)
        info["module_class"] = issubclass(obj, torch.nn.Module)
        info["bases"] = [base.__name__ for base in obj.__mro__[1:]]
    elif isinstance(obj, torch.nn.Module):
        info["kind"] = "module"
        info["training"] = bool(obj.training)
    elif isinstance(obj, torch.Tensor):
        info["kind"] = "tensor"
    elif callable(obj):
        info.update(kind="function", name=getattr(obj, "__name__", kind.__name__))
    else:
        info["kind"] = "data"
    if isinstance(obj, (tuple, list, dict, set, frozenset)):
        info["length"] = len(obj)
    return info


def op_value(bench: Workbench, ref: Ref) -> object:
    """The object as plain data (a `refused` reply when it is not plain data)."""
    return bench.get(ref)


def op_attr(bench: Workbench, ref: Ref, path: str, default: bool = False, keep: bool = False) -> object:
    """`obj.path` (dotted); with `default`, a missing attribute answers None instead of an error."""
    obj = bench.get(ref)
    with _student_code():
        for part in path.split("."):
            if default and not hasattr(obj, part):
                return None
            obj = getattr(obj, part)
    return _answer(bench, obj, keep)


def op_item(bench: Workbench, ref: Ref, key: object) -> object:
    """`obj[key]`."""
    obj = bench.get(ref)
    with _student_code():
        return _answer(bench, obj[bench.resolve(key)])


def op_call(
    bench: Workbench,
    ref: Ref,
    args: list | None = None,
    kwargs: dict | None = None,
    method: str | None = None,
    seed: int | None = None,
    device_rule: bool = False,
    grad: bool | None = None,
    keep: bool = False,
) -> object:
    """Call the object (or its `method`) with `args`; `seed` runs it in a forked, seeded random
    state; `device_rule` runs it under the stand-in's device rule; `grad` sets grad mode for it;
    `keep` keeps the result here even when it is plain data (a tensor whose graph is needed)."""
    target = bench.get(ref)
    inputs = _inputs([args, kwargs])
    args = bench.resolve(list(args or []))
    kwargs = bench.resolve(dict(kwargs or {}))
    rule = _device_rule() if device_rule else contextlib.nullcontext()
    mode = torch.set_grad_enabled(grad) if grad is not None else contextlib.nullcontext()
    with rule, mode, _watched(bench, seed, inputs), _student_code():
        if method is not None:
            target = getattr(target, method)
        result = target(*args, **kwargs)
    return _answer(bench, result, keep)


def op_keep(bench: Workbench, value: object) -> Ref:
    """Keep a value sent by the check (a tensor, a state dict) here, and answer its `Ref`."""
    return bench.keep(bench.resolve(value))


def op_lib(bench: Workbench, name: str) -> Ref:
    """A `Ref` to `module:qualname` from torch or buflesson (never from the student's code)."""
    module_name, _, qualname = name.partition(":")
    if module_name.split(".")[0] not in LIBRARIES:
        raise LookupError(f"{module_name} is not part of torch or buflesson")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split(".") if qualname else []:
        obj = getattr(obj, part)
    return bench.keep(obj)


def op_drop(bench: Workbench, refs: list) -> None:
    """Forget objects the check no longer needs (never the answer itself)."""
    for ref in refs:
        if isinstance(ref, Ref) and ref.id != 1:
            bench.objects.pop(ref.id, None)


def op_folder(bench: Workbench) -> str:
    """A scratch folder for files a check writes (removed when the check ends)."""
    if bench.folder is None:
        bench.folder = tempfile.mkdtemp(prefix="buflesson-check-")
    return bench.folder


def op_inventory(bench: Workbench, ref: Ref) -> list[dict]:
    """`inventory(module)` as plain rows (every field but the tensor itself)."""
    from buflesson.inventory import inventory

    module = bench.get(ref)
    with _student_code():
        rows = list(inventory(module))
    out = []
    for row in rows:
        fields = {}
        for field in dataclasses.fields(row):
            value = getattr(row, field.name)
            if not isinstance(value, torch.Tensor):
                fields[field.name] = value
        out.append(fields)
    return out


def _digest(state: object) -> str:
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]


def global_state() -> dict:
    """What a right answer leaves as it found it: grad mode, default dtype and device, random state."""
    default_device = getattr(torch, "get_default_device", lambda: torch.device("cpu"))()
    return {
        "grad_enabled": torch.is_grad_enabled(),
        "inference_mode": torch.is_inference_mode_enabled(),
        "default_dtype": torch.get_default_dtype(),
        "default_device": str(default_device),
        "torch_rng": hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest()[:16],
        "python_rng": _digest(random.getstate()),
        "anomaly": torch.is_anomaly_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


def file_digest(path: str) -> str | None:
    """A digest of the file at `path` (None when there is none): a check asks it through `lib` to
    see whether the student's code rewrote a file it was only meant to read."""
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return None


def op_state(bench: Workbench) -> dict:
    """`global_state()` of the process the student's code runs in, with what the student's calls
    changed and the workbench put back (`leaked`, `modified_inputs`: see `_watched`)."""
    return {**global_state(), "leaked": list(bench.leaked), "modified_inputs": bench.modified_inputs}


def op_device(bench: Workbench) -> torch.device:
    """The device a check moves models to here: an accelerator, else the stand-in (its rule is only
    on inside calls made with `device_rule`, never left on in the student's session)."""
    from buflesson.devices import checking_device

    return checking_device()


OPERATIONS: dict[str, Callable] = {
    "describe": op_describe,
    "value": op_value,
    "attr": op_attr,
    "item": op_item,
    "call": op_call,
    "keep": op_keep,
    "lib": op_lib,
    "drop": op_drop,
    "folder": op_folder,
    "inventory": op_inventory,
    "state": op_state,
    "device": op_device,
}
