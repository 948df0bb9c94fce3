"""inventory(): every tensor of any module, with what PyTorch does with it."""

import pytest
import torch
from torch import nn

from buflesson import inventory
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PARAMETER, PLAIN


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.frozen = nn.Parameter(torch.zeros(2), requires_grad=False)
        self.register_buffer("saved", torch.ones(2))
        self.register_buffer("mask", torch.ones(2, 2, dtype=torch.bool), persistent=False)
        self.register_buffer("later", None)
        self.plain = torch.full((2,), 3.0)
        self.cache = [torch.zeros(1), {"scale": torch.ones(1), "name": "not a tensor"}]
        self.pair = (torch.zeros(2), 5)


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Mixed()
        self.blocks = nn.ModuleList([nn.BatchNorm1d(2)])


def test_every_kind_of_tensor_gets_one_row_with_its_kind():
    table = inventory(Mixed())
    kinds = {row.name: row.kind for row in table}
    assert kinds == {
        "linear.weight": PARAMETER,
        "linear.bias": PARAMETER,
        "frozen": PARAMETER,
        "saved": BUFFER,
        "mask": NON_PERSISTENT_BUFFER,
        "later": NONE_BUFFER,
        "plain": PLAIN,
        "cache[0]": PLAIN,
        "cache[1]['scale']": PLAIN,
        "pair[0]": PLAIN,
    }


def test_in_state_dict_column_matches_state_dict():
    model = Mixed()
    table = inventory(model)
    saved = {row.name for row in table if row.in_state_dict}
    assert saved == set(model.state_dict())


def test_follows_to_column_matches_what_to_moves():
    model = Mixed()
    before = {row.name: row.tensor for row in inventory(model) if row.tensor is not None}
    claimed = {row.name: row.follows_to for row in inventory(model)}
    model.to("meta")
    after = {row.name: row for row in inventory(model)}
    for name in before:
        moved = after[name].device == "meta"
        assert moved == claimed[name], name


def test_stepped_by_optimizer_matches_an_sgd_step():
    model = Mixed()
    table = inventory(model)
    before = {row.name: row.tensor.detach().clone() for row in table if row.tensor is not None}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model.linear(torch.ones(1, 3)).sum().add(model.frozen.sum()).backward()
    optimizer.step()
    after = {row.name: row.tensor for row in inventory(model) if row.tensor is not None}
    for row in table:
        if row.tensor is None:
            continue
        changed = not torch.equal(before[row.name], after[row.name])
        assert changed == row.stepped_by_optimizer, row.name


def test_nested_modules_get_qualified_names():
    names = inventory(Outer()).names()
    assert "inner.saved" in names
    assert "inner.cache[1]['scale']" in names
    assert "blocks.0.running_mean" in names
    assert inventory(Outer())["blocks.0.num_batches_tracked"].dtype == "int64"


def test_shared_submodule_is_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, shared)
    assert inventory(model).names() == ["0.weight", "0.bias"]


def test_device_dtype_shape_and_requires_grad_columns():
    row = inventory(Mixed().double())["linear.weight"]
    assert (row.device, row.dtype, row.shape, row.requires_grad) == ("cpu", "float64", (2, 3), True)
    none_row = inventory(Mixed())["later"]
    assert (none_row.device, none_row.shape, none_row.in_state_dict) == ("-", None, False)


def test_works_on_a_real_torch_model():
    torch.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2)
    table = inventory(model)
    assert {row.name for row in table if row.kind == PARAMETER} == {n for n, _ in model.named_parameters()}
    assert len(table) >= len(list(model.parameters()))


def test_text_table_is_aligned_and_html_is_a_table():
    table = inventory(Mixed())
    lines = str(table).splitlines()
    assert lines[0] == "Mixed"
    header, rule = lines[1], lines[2]
    assert header.startswith("name") and "in state_dict" in header
    assert rule.split("  ")[0] == "-" * len("cache[1]['scale']")
    html = table._repr_html_()
    assert html.startswith("<table") and html.count("<tr") == len(table) + 1
    assert "cache[1][&#x27;scale&#x27;]" in html


def test_empty_module_says_so():
    assert "(no tensors)" in str(inventory(nn.ReLU()))


@pytest.mark.parametrize("bad", [nn.Linear, {"w": torch.ones(1)}, torch.ones(2), None])
def test_non_module_argument_raises_type_error_that_says_what_was_expected(bad):
    with pytest.raises(TypeError, match="expects a torch.nn.Module instance"):
        inventory(bad)


def test_unknown_name_lookup_lists_the_names():
    with pytest.raises(KeyError, match="linear.weight"):
        inventory(Mixed())["nope"]
