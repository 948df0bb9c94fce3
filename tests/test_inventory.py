"""inventory(): every tensor of any module, with what PyTorch does with it."""

import pytest
import torch
from torch import nn

from buflesson import inventory
from buflesson.inventory import (
    BUFFER,
    COMPUTED,
    EXTRA_STATE,
    NON_PERSISTENT_BUFFER,
    NONE_BUFFER,
    PARAMETER,
    PLAIN,
    REFERENCE,
)


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


def test_shared_submodule_is_listed_once_with_its_second_names():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    table = inventory(model)
    assert table.names() == ["0.weight", "0.bias"]
    assert [row.aliases for row in table] == [("2.weight",), ("2.bias",)]
    assert table["2.weight"] is table["0.weight"] and "2.bias" in table
    assert all(row.in_state_dict for row in table)


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


def test_empty_module_says_so():
    assert "(no tensors)" in str(inventory(nn.ReLU()))


@pytest.mark.parametrize("bad", [nn.Linear, {"w": torch.ones(1)}, torch.ones(2), None])
def test_non_module_argument_raises_type_error_that_says_what_was_expected(bad):
    with pytest.raises(TypeError, match="expects a torch.nn.Module instance"):
        inventory(bad)


def test_unknown_name_lookup_lists_the_names():
    with pytest.raises(KeyError, match="linear.weight"):
        inventory(Mixed())["nope"]
    with pytest.raises(KeyError, match=r"did you mean blocks\.\d\.0\.weight.*\(\+39 more\)"):
        inventory(Stack())["blocks.0.weight"]


# -- one tensor, several names --------------------------------------------------------------


class TiedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


def test_a_tied_weight_is_one_row_that_names_the_other_name_and_is_counted_once():
    table = inventory(TiedHead())
    assert table.names() == ["embed.weight"]
    row = table["head.weight"]
    assert row.name == "embed.weight" and row.aliases == ("head.weight",)
    assert row.elements == 40 and row.nbytes == 160
    text = str(table)
    assert "also head.weight" in text
    assert "`embed.weight` = `head.weight`" in text
    assert text.splitlines()[0] == "TiedHead: 1 tensor PyTorch tracks, 40 elements, 160 B, on cpu"


# -- what PyTorch does not track ------------------------------------------------------------


class PlainLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(2, 2)
        self.layers = [nn.Linear(2, 2), nn.BatchNorm1d(2)]
        self.alias = [self.stem]  # a registered module in a plain list: nothing hidden


def test_modules_in_a_plain_list_are_found_and_their_tensors_are_untracked():
    table = inventory(PlainLayers())
    hidden = [row for row in table if row.unregistered_in is not None]
    assert [row.name for row in hidden] == [
        "layers[0].weight",
        "layers[0].bias",
        "layers[1].weight",
        "layers[1].bias",
        "layers[1].running_mean",
        "layers[1].running_var",
        "layers[1].num_batches_tracked",
    ]
    assert {row.unregistered_in for row in hidden} == {"layers[0]", "layers[1]"}
    for row in hidden:
        assert row.kind == PLAIN
        assert not (row.in_state_dict or row.follows_to or row.stepped_by_optimizer), row.name
    assert "a buffer of a BatchNorm1d kept in a plain list" in table["layers[1].running_var"].note
    assert table.names(PARAMETER) == ["stem.weight", "stem.bias"]


def test_what_inventory_says_of_untracked_tensors_is_what_pytorch_does():
    model = PlainLayers()
    table = inventory(model)
    assert not any(row.name.startswith("layers") for row in table if row.in_state_dict)
    assert set(model.state_dict()) == {name for row in table if row.in_state_dict for name in row.names}
    model.to(torch.float64)
    assert model.layers[0].weight.dtype == torch.float32 and model.stem.weight.dtype == torch.float64


class Holders(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("table", torch.zeros(3, 3))
        self.weights = [self.linear.weight]  # the parameter itself
        self.first = self.table[0]  # a view of a buffer
        self.by_name = {"table": self.table}  # the buffer itself
        self.row = self.linear.weight.detach()[1]  # a view of a parameter


def test_a_plain_attribute_that_holds_a_registered_tensor_is_named_on_its_row():
    table = inventory(Holders())
    assert table["linear.weight"].held_by == ("weights[0]",)
    assert table["table"].held_by == ("by_name['table']",)
    assert table["weights[0]"] is table["linear.weight"]
    assert len(table) == 5  # linear.weight, linear.bias, table, and the two views
    assert "held by the plain attribute weights[0] too" in str(table)


def test_a_plain_attribute_that_holds_a_view_is_a_reference_row():
    table = inventory(Holders())
    assert table.names(REFERENCE) == ["first", "row"]
    assert table["first"].refers_to == "table"
    assert table["first"].note == "a view of the buffer table (shares its memory)"
    assert table["row"].refers_to == "linear.weight"
    assert not table.names(PLAIN)


def test_reference_columns_say_what_a_conversion_and_an_optimizer_step_do_to_a_view():
    model = Holders()
    claimed = {row.name: row for row in inventory(model) if row.kind == REFERENCE}
    before = {name: row.tensor.clone() for name, row in claimed.items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model.linear(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    views = {"first": lambda: model.first, "row": lambda: model.row}
    stepped = {name: not torch.equal(view(), before[name]) for name, view in views.items()}
    assert stepped == {name: row.stepped_by_optimizer for name, row in claimed.items()}
    assert stepped == {"first": False, "row": True}
    model.double()
    moved = {name: view().dtype == torch.float64 for name, view in views.items()}
    assert moved == {name: row.follows_to for name, row in claimed.items()} == {"first": False, "row": False}


def test_lstm_flat_weights_are_its_parameters_one_row_each():
    table = inventory(nn.LSTM(3, 4))
    assert len(table) == 4 and len(table.names(PARAMETER)) == 4
    held = {name: row.name for row in table for name in row.held_by}
    assert held == {
        "_flat_weights[0]": "weight_ih_l0",
        "_flat_weights[1]": "weight_hh_l0",
        "_flat_weights[2]": "bias_ih_l0",
        "_flat_weights[3]": "bias_hh_l0",
    }


def test_the_same_untracked_tensor_in_two_attributes_is_one_row():
    model = nn.Module()
    model.cache = torch.zeros(2)
    model.copies = [model.cache]
    table = inventory(model)
    assert [(row.name, row.aliases) for row in table] == [("cache", ("copies[0]",))]


# -- computed, lazy, quantized, extra state --------------------------------------------------


def test_a_parametrized_weight_is_computed_from_its_originals_without_touching_the_model():
    model = nn.utils.parametrizations.spectral_norm(nn.Linear(3, 4))
    u_before = model.parametrizations.weight[0]._u.clone()
    table = inventory(model)
    row = table["weight"]
    assert row.kind == COMPUTED and row.shape == (4, 3) and row.dtype == "float32"
    assert row.sources == ("parametrizations.weight.original",)
    assert not row.in_state_dict and row.follows_to and not row.stepped_by_optimizer
    assert torch.equal(model.parametrizations.weight[0]._u, u_before)  # no power iteration ran
    assert table["parametrizations.weight.0._u"].kind == BUFFER


def test_weight_norm_with_two_originals():
    row = inventory(nn.utils.parametrizations.weight_norm(nn.Linear(3, 4)))["weight"]
    assert row.sources == ("parametrizations.weight.original0", "parametrizations.weight.original1")
    assert row.note.startswith("computed on access from parametrizations.weight.original0")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_legacy_hooks_recompute_a_plain_attribute():
    import torch.nn.utils.prune as prune

    weight_norm = inventory(nn.utils.weight_norm(nn.Linear(3, 4)))["weight"]
    assert (weight_norm.kind, weight_norm.sources) == (COMPUTED, ("weight_g", "weight_v"))
    assert "before each forward by the weight_norm hook" in weight_norm.note
    spectral = inventory(nn.utils.spectral_norm(nn.Linear(3, 4)))["weight"]
    assert (spectral.kind, spectral.sources) == (COMPUTED, ("weight_orig", "weight_u", "weight_v"))
    pruned = nn.Linear(3, 4)
    prune.l1_unstructured(pruned, "weight", amount=0.5)
    row = inventory(pruned)["weight"]
    assert (row.kind, row.sources) == (COMPUTED, ("weight_orig", "weight_mask"))
    assert "prune" in row.note


def test_lazy_modules_have_uninitialized_shapes():
    table = inventory(nn.Sequential(nn.LazyLinear(3), nn.LazyBatchNorm1d()))
    row = table["0.weight"]
    assert (row.shape, row.elements, row.shape_text()) == (None, None, "uninitialized")
    assert row.in_state_dict and row.kind == PARAMETER
    assert table["1.num_batches_tracked"].shape == ()
    assert (
        str(table).splitlines()[0]
        == "Sequential: 7 tensors PyTorch tracks, 1 element, 8 B (6 uninitialized), on cpu"
    )


@pytest.mark.filterwarnings("ignore")
def test_dynamic_quantization_names_its_packed_state():
    model = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(3, 4)), {nn.Linear}, torch.qint8)
    table = inventory(model)
    assert set(model.state_dict()) == {name for row in table for name in row.names}
    packed = table["0._packed_params._packed_params"]
    assert packed.kind == EXTRA_STATE and packed.in_state_dict
    assert packed.note.startswith(
        "packed weights (qint8 (4, 3) and float32 (4,)) written by LinearPackedParams"
    )
    assert packed.elements == 16
    assert "(no tensors)" not in str(table)


def test_extra_state_gets_a_row():
    class Counter(nn.Module):
        def get_extra_state(self):
            return {"calls": 3}

        def set_extra_state(self, state):
            pass

    row = inventory(nn.Sequential(Counter()))["0._extra_state"]
    assert row.kind == EXTRA_STATE and row.note.startswith("returned by Counter.get_extra_state()")


# -- display: summary, folding, filter, width -------------------------------------------------


class Stack(nn.Module):
    def __init__(self, depth: int = 12) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)) for _ in range(depth)])
        self.register_buffer("mask", torch.ones(4), persistent=False)
        self.head = nn.Linear(4, 2)


def test_repeated_blocks_are_folded_and_expand_lists_every_row():
    table = inventory(Stack())
    text = str(table)
    assert "blocks.{0..11}.0.weight" in text and "blocks.3.0.weight" not in text
    assert "blocks.{0..11}.1.bias" in text  # a LayerNorm's bias is not folded with a Linear's
    assert table["blocks.0.1.bias"].module == "LayerNorm"
    assert "51 rows shown as 7: repeated blocks folded (expand=True lists each)." in text
    assert "12 alike" in table._repr_html_()
    expanded = str(inventory(Stack(), expand=True))
    assert "blocks.3.0.weight" in expanded and "{0..11}" not in expanded
    assert len(table) == 51


def test_rows_that_differ_are_not_folded():
    model = Stack(3)
    model.blocks[1][0] = nn.Linear(4, 4, bias=False).double()
    text = str(inventory(model))
    assert "blocks.{0,2}.0.weight" in text and "blocks.1.0.weight" in text


def test_a_kind_filter_keeps_the_summary_of_the_whole_model():
    table = inventory(Stack(), kind="non-persistent buffer")
    assert table.names() == ["mask"]
    text = str(table)
    assert "Showing non-persistent buffer rows only: 1 of 51." in text
    assert "parameter" in text.split("\n\n")[0]
    html = table._repr_html_()
    assert html.count("<tr class=") == 1 + 2  # the row, and the summary's two kinds
    assert inventory(Stack()).only(BUFFER, NON_PERSISTENT_BUFFER).names() == ["mask"]
    with pytest.raises(ValueError, match="unknown kind 'buffers'; kinds: parameter, buffer"):
        inventory(Stack(), kind="buffers")


def test_the_summary_counts_kinds_and_names_what_to_look_at():
    text = str(inventory(Outer()))
    summary = text.split("\n\n")[0].splitlines()
    assert summary[0] == "Outer: 10 tensors PyTorch tracks, 25 elements, 92 B, on cpu"
    assert summary[1].split() == ["kind", "rows", "elements", "bytes"]
    assert summary[2].split() == ["parameter", "5", "14", "56", "B"]
    assert summary[6].split() == ["plain", "attribute", "4", "6", "24", "B"]
    assert "None: 1 buffer slot (`inner.later`) holding None" in text
    labels = [
        line.split(":")[0].strip() for line in summary[1:] if ":" in line and not line.startswith("    ")
    ]
    assert labels == ["plain", "not saved", "None", "frozen"]


def test_text_lines_fit_100_columns_and_long_names_get_a_line_of_their_own():
    model = nn.Module()
    model.a_rather_long_submodule_name = nn.Module()
    model.a_rather_long_submodule_name.with_an_even_longer_child_name = nn.Linear(2, 2)
    text = str(inventory(model))
    assert max(len(line) for line in text.splitlines()) <= 100
    lines = text.splitlines()
    at = lines.index("a_rather_long_submodule_name.with_an_even_longer_child_name.weight")
    assert lines[at + 1].split() == ["parameter", "yes", "yes", "yes", "yes", "cpu", "float32", "(2,", "2)"]


def test_html_is_one_styled_block_with_a_row_per_line_and_escaped_names():
    table = inventory(Mixed())
    html = table._repr_html_()
    assert html.startswith("<div class='bl-inv'><style>") and html.endswith("</table></div></div>")
    rows = html.split("<tbody>")[-1]
    assert rows.count("<tr") == len(table)
    assert "cache<wbr>[1]<wbr>[&#x27;scale&#x27;]" in html
    for kind in ("parameter", "buffer", "non-persistent-buffer", "none-buffer", "plain-attribute"):
        assert f"tr class='bl-{kind}'" in rows
    assert "var(--jp-ui-font-color1" in html and "var(--jp-code-font-family" in html
    assert "<th class='bl-flag'>in state_dict</th>" in html


def test_the_table_does_not_change_the_model():
    model = Stack(2)
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    str(inventory(model))
    inventory(model)._repr_html_()
    assert all(torch.equal(state[name], tensor) for name, tensor in model.state_dict().items())
