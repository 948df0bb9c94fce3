"""Plain data as bytes, and back: what crosses between a check and the student's code.

A check never receives an object from the student's side, only data: None, booleans, numbers,
strings, lists, tuples, dicts, sets, `...`, dtypes, devices, sizes, tensors (dense, any dtype; a
`meta` tensor travels as its shape and dtype), and `Ref`s naming an object that stays on the
student's side. The format is a JSON header plus the tensors' raw bytes: nothing is pickled, so
decoding runs no code. Sizes are bounded; anything else is refused with `WireError`.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict
from dataclasses import dataclass

import torch

MAGIC = b"BLW1"
MAX_BYTES = 256 * 2**20  # a whole message
MAX_ITEMS = 200_000  # containers' items and tensors, all together
MAX_DEPTH = 32
MAX_STRING = 2**20
MAX_HEADER = 8 * 2**20  # the JSON part of a message (the tensors' bytes are apart): parsed at once


class WireError(ValueError):
    """A value that cannot travel, or bytes that are not a valid message."""


@dataclass(frozen=True)
class Ref:
    """An object that stays on the student's side, named by its number there."""

    id: int


_DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in vars(torch).values()
    if isinstance(dtype, torch.dtype)
}


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.float32` -> "float32"."""
    return str(dtype).removeprefix("torch.")


class _Encoder:
    def __init__(self) -> None:
        self.tensors: list[dict] = []
        self.blobs: list[bytes] = []
        self.size = 0
        self.items = 0

    def count(self, n: int = 1) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            raise WireError(f"more than {MAX_ITEMS} items")

    def encode(self, value: object, depth: int = 0) -> object:
        if depth > MAX_DEPTH:
            raise WireError(f"nested deeper than {MAX_DEPTH}")
        self.count()
        if value is None or isinstance(value, bool):
            return bool(value) if value is not None else None
        if isinstance(value, int):
            return int.__index__(value)
        if isinstance(value, float):
            return {"$float": float.__repr__(float.__float__(value))}
        if isinstance(value, str):
            if str.__len__(value) > MAX_STRING:
                raise WireError(f"a string longer than {MAX_STRING} characters")
            return str.__str__(value)
        if value is Ellipsis:
            return {"$ellipsis": 1}
        if isinstance(value, Ref):
            return {"$ref": value.id}
        if isinstance(value, torch.dtype):
            return {"$dtype": dtype_name(value)}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, torch.Size):
            return {"$size": [int(n) for n in value]}
        if isinstance(value, torch.Tensor):
            return {"$tensor": self.tensor(value)}
        # Containers are read with the base classes' own methods, so that a subclass (a named tuple,
        # or a student's list with its own __iter__) is read as its items and runs no code of its own.
        if isinstance(value, list):
            return [self.encode(item, depth + 1) for item in list.__iter__(value)]
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(item, depth + 1) for item in tuple.__iter__(value)]}
        if isinstance(value, (set, frozenset)):
            base = set if isinstance(value, set) else frozenset
            return {"$set": [self.encode(item, depth + 1) for item in base.__iter__(value)]}
        if isinstance(value, dict):
            items = OrderedDict.items(value) if isinstance(value, OrderedDict) else dict.items(value)
            pairs = [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in items]
            out: dict = {"$dict": pairs}
            metadata = None
            if isinstance(value, OrderedDict):
                try:
                    metadata = object.__getattribute__(value, "_metadata")
                except AttributeError:
                    pass
            if isinstance(metadata, dict):
                out["meta"] = self.encode(dict(dict.items(metadata)), depth + 1)
            return out
        raise WireError(f"a {type(value).__name__} is not plain data")

    def tensor(self, tensor: torch.Tensor) -> int:
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise WireError(f"a {tensor.layout} tensor cannot travel")
        if type(tensor) not in (torch.Tensor, torch.nn.Parameter, torch.nn.Buffer):
            raise WireError(f"a {type(tensor).__name__} (tensor subclass) cannot travel")
        self.count(tensor.numel() // 4096)
        info = {
            "dtype": dtype_name(tensor.dtype),
            "shape": [int(n) for n in tensor.shape],
            "device": str(tensor.device),
            "requires_grad": bool(tensor.requires_grad),
            "parameter": isinstance(tensor, torch.nn.Parameter),
            "bytes": None,
        }
        if tensor.device.type != "meta":
            data = tensor.detach().to("cpu").contiguous().reshape(-1)
            raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
            self.size += len(raw)
            if self.size > MAX_BYTES:
                raise WireError(f"tensors over {MAX_BYTES} bytes")
            info["bytes"] = len(raw)
            self.blobs.append(raw)
        self.tensors.append(info)
        return len(self.tensors) - 1


def dumps(value: object) -> bytes:
    """`value` as one message; `WireError` when it is not plain data or too big."""
    encoder = _Encoder()
    tree = encoder.encode(value)
    header = json.dumps({"v": tree, "t": encoder.tensors}, separators=(",", ":")).encode()
    if len(header) > MAX_HEADER:
        raise WireError(f"a header over {MAX_HEADER} bytes")
    return MAGIC + struct.pack("<Q", len(header)) + header + b"".join(encoder.blobs)


class _Decoder:
    def __init__(self, infos: list, blob: memoryview, devices: bool) -> None:
        self.infos, self.blob, self.devices = infos, blob, devices
        self.offset = 0
        self.made: dict[int, torch.Tensor] = {}
        self.items = 0

    def decode(self, node: object, depth: int = 0) -> object:
        if depth > MAX_DEPTH:
            raise WireError("nested too deep")
        self.items += 1  # what the sender's encoder counts, so that decoding costs what encoding did
        if self.items > MAX_ITEMS:
            raise WireError(f"more than {MAX_ITEMS} items")
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if isinstance(node, list):
            return [self.decode(item, depth + 1) for item in node]
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise WireError("malformed message")
        if "$float" in node:
            return float(node["$float"])
        if "$ellipsis" in node:
            return Ellipsis
        if "$ref" in node:
            return Ref(int(node["$ref"]))
        if "$dtype" in node:
            name = node["$dtype"]
            if name not in _DTYPES:
                raise WireError(f"unknown dtype {name!r}")
            return _DTYPES[name]
        if "$device" in node:
            return torch.device(str(node["$device"]))
        if "$size" in node:
            return torch.Size([int(n) for n in node["$size"]])
        if "$tensor" in node:
            return self.tensor(int(node["$tensor"]))
        if "$tuple" in node:
            return tuple(self.decode(item, depth + 1) for item in node["$tuple"])
        if "$set" in node:
            return {self.decode(item, depth + 1) for item in node["$set"]}
        if "$dict" in node:
            out = OrderedDict() if "meta" in node else {}
            for pair in node["$dict"]:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise WireError("malformed dict")
                key = self.decode(pair[0], depth + 1)
                try:
                    out[key] = self.decode(pair[1], depth + 1)
                except TypeError:
                    raise WireError("a dict key that cannot be hashed") from None
            if "meta" in node:
                out._metadata = self.decode(node["meta"], depth + 1)
            return out
        raise WireError("malformed message")

    def tensor(self, index: int) -> torch.Tensor:
        if index in self.made:
            return self.made[index]
        if not 0 <= index < len(self.infos):
            raise WireError("a tensor index out of range")
        info = self.infos[index]
        name = info.get("dtype")
        if name not in _DTYPES:
            raise WireError(f"unknown dtype {name!r}")
        dtype, shape = _DTYPES[name], [int(n) for n in info.get("shape", [])]
        if any(n < 0 for n in shape):
            raise WireError("a negative size")
        device = torch.device(str(info.get("device", "cpu")))
        if info.get("bytes") is None:
            tensor = torch.empty(shape, dtype=dtype, device="meta")
        else:
            size = int(info["bytes"])
            numel = 1
            for n in shape:
                numel *= n
            itemsize = torch.empty((), dtype=dtype).element_size()
            if size != numel * itemsize or self.offset + size > len(self.blob):
                raise WireError("tensor bytes do not match its shape")
            raw = bytes(self.blob[self.offset : self.offset + size])
            self.offset += size
            flat = (
                torch.frombuffer(bytearray(raw), dtype=torch.uint8)
                if raw
                else torch.empty(0, dtype=torch.uint8)
            )
            tensor = flat.view(dtype).reshape(shape) if numel else torch.empty(shape, dtype=dtype)
            if self.devices and device.type != "cpu":
                tensor = _to_device(tensor, device)
        if info.get("parameter"):
            tensor = torch.nn.Parameter(tensor, requires_grad=bool(info.get("requires_grad")))
        elif info.get("requires_grad") and (tensor.is_floating_point() or tensor.is_complex()):
            tensor.requires_grad_(True)
        self.made[index] = tensor
        return tensor


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    try:
        return tensor.to(device)
    except (RuntimeError, AssertionError):  # a device this process cannot use: keep shape and dtype
        return torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")


def loads(data: bytes, *, devices: bool = True) -> object:
    """The value of one message from `dumps`; `WireError` for anything malformed or too big.

    With `devices`, tensors come back on the device they were on (the same machine); a `meta`
    tensor comes back as a `meta` tensor of the same shape and dtype.
    """
    if len(data) > MAX_BYTES + 2**24:
        raise WireError("message too big")
    if data[:4] != MAGIC or len(data) < 12:
        raise WireError("not a buflesson message")
    (length,) = struct.unpack("<Q", data[4:12])
    if length > len(data) - 12:
        raise WireError("truncated message")
    if length > MAX_HEADER:
        raise WireError(f"a header over {MAX_HEADER} bytes")
    try:
        header = json.loads(bytes(data[12 : 12 + length]))
    except ValueError:
        raise WireError("malformed header") from None
    if not isinstance(header, dict) or not isinstance(header.get("t"), list):
        raise WireError("malformed header")
    if len(header["t"]) > MAX_ITEMS:
        raise WireError("too many tensors")
    decoder = _Decoder(header["t"], memoryview(data)[12 + length :], devices)
    return decoder.decode(header.get("v"))
