"""wire: plain data and tensors cross as bytes; nothing else does, and nothing malformed gets in."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from buflesson import wire
from buflesson.wire import Ref, WireError


def roundtrip(value):
    return wire.loads(wire.dumps(value))


def test_plain_values_come_back_equal():
    value = {
        "none": None,
        "flag": True,
        "int": 2**70,
        "float": -0.0,
        "nan": float("nan"),
        "text": "Zoë",
        "list": [1, [2, 3]],
        "tuple": (1, "a"),
        "set": {1, 2},
        (1, 2): "tuple key",
        "dots": ...,
        "dtype": torch.bfloat16,
        "device": torch.device("meta"),
        "size": torch.Size([2, 3]),
        "ref": Ref(7),
    }
    back = roundtrip(value)
    assert back.keys() == value.keys()
    for key in value:
        if key != "nan":
            assert back[key] == value[key] and type(back[key]) is type(value[key])
    assert back["nan"] != back["nan"]
    assert str(back["float"]) == "-0.0"


@pytest.mark.parametrize(
    "dtype",
    [
        torch.float32,
        torch.float64,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.bool,
        torch.uint8,
        torch.complex64,
    ],
)
def test_tensors_keep_values_dtype_shape(dtype):
    tensor = (torch.arange(12).reshape(3, 4) % 3).to(dtype)
    back = roundtrip(tensor)
    assert back.dtype == dtype and back.shape == tensor.shape and torch.equal(back, tensor)


def test_views_zero_dim_and_empty_tensors():
    base = torch.arange(10.0)
    for tensor in (base[::3], base.reshape(2, 5).t(), torch.tensor(3.5), torch.empty(0, 4)):
        back = roundtrip(tensor)
        assert back.shape == tensor.shape and torch.equal(back, tensor)


def test_meta_tensors_travel_as_shape_and_dtype():
    back = roundtrip(torch.empty(2, 3, dtype=torch.float16, device="meta"))
    assert back.device.type == "meta" and back.shape == (2, 3) and back.dtype == torch.float16


def test_parameters_and_requires_grad_are_kept_but_not_the_graph():
    param = nn.Parameter(torch.ones(2), requires_grad=False)
    leaf = torch.ones(2, requires_grad=True)
    back_param, back_leaf, back_out = roundtrip([param, leaf, leaf * 2])
    assert isinstance(back_param, nn.Parameter) and not back_param.requires_grad
    assert back_leaf.requires_grad and back_leaf.grad_fn is None
    assert back_out.requires_grad and back_out.grad_fn is None


def test_a_state_dict_keeps_its_version_metadata():
    state = nn.Sequential(nn.BatchNorm1d(2)).state_dict()
    back = roundtrip(state)
    assert isinstance(back, OrderedDict) and list(back) == list(state)
    assert back._metadata == state._metadata


def test_the_same_tensor_twice_stays_one_tensor():
    tensor = torch.ones(2)
    first, second = roundtrip([tensor, tensor])
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    "value",
    [object(), nn.Linear(2, 2), lambda: 1, b"bytes", torch.ones(2).to_sparse(), torch.ones(2).numpy()],
    ids=["object", "module", "function", "bytes", "sparse", "numpy"],
)
def test_anything_else_is_refused(value):
    with pytest.raises(WireError):
        wire.dumps(value)


def test_too_deep_or_too_many_items_is_refused():
    deep: list = []
    for _ in range(wire.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(WireError):
        wire.dumps(deep)
    with pytest.raises(WireError):
        wire.dumps(list(range(wire.MAX_ITEMS + 1)))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"BLW1",
        b"NOPE" + bytes(20),
        wire.MAGIC + (10**9).to_bytes(8, "little") + b"{}",
        wire.MAGIC + (2).to_bytes(8, "little") + b"{]",
        wire.MAGIC + (9).to_bytes(8, "little") + b'{"v":1}xx',
    ],
)
def test_malformed_messages_are_refused(data):
    with pytest.raises(WireError):
        wire.loads(data)


def test_tensor_bytes_must_match_the_shape():
    message = bytearray(wire.dumps(torch.ones(4)))
    with pytest.raises(WireError):
        wire.loads(bytes(message[:-4]))


def test_decoding_runs_no_code():
    # A pickle payload inside a message is just bytes: loads never unpickles anything.
    import pickle

    evil = pickle.dumps(print)
    with pytest.raises(WireError):
        wire.loads(wire.MAGIC + len(evil).to_bytes(8, "little") + evil)


def test_container_subclasses_are_read_as_their_items_without_their_own_methods():
    class Hostile(list):
        def __iter__(self):
            raise RuntimeError("my own __iter__ ran")

    class Named(tuple):
        def __iter__(self):
            raise RuntimeError("my own __iter__ ran")

    assert roundtrip(Hostile([1, 2])) == [1, 2]
    assert roundtrip(Named((1, 2))) == (1, 2)
