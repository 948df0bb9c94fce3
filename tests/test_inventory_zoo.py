"""A zoo of models with unusual state, each row checked against PyTorch's own account.

For every model: each name `named_parameters()` / `named_buffers()` (remove_duplicate=False)
and `state_dict()` give is on exactly one row, that row holds the very tensor and says its
kind per name (`kind_of`), what `state_dict()` saves, and one tensor is one row. Plain
tensors reachable from a module's attributes are found (an independent walk), and every
fix `audit` suggests compiles; a fix that reads a tensor reads the very one.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import warnings
from typing import NamedTuple

import pytest
import torch
from torch import nn

from buflesson import audit, inventory
from buflesson.audit import BROKEN_TIE, DOTTED_NAME, PLAIN_TENSOR, STALE_REFERENCE, UNREGISTERED_MODULE
from buflesson.rows import REGISTERED

# -- the models ---------------------------------------------------------------------------------


class Holder(nn.Module):
    def __init__(self, table: torch.Tensor, persistent: bool) -> None:
        super().__init__()
        self.register_buffer("table", table, persistent=persistent)


def shared_buffer_mixed_persistence() -> nn.Module:
    table = torch.linspace(0, 1, 5)
    return nn.ModuleDict({"first": Holder(table, False), "second": Holder(table, True)})


class ParameterAlsoBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.side = nn.Module()  # comes first: .to() converts its buffer before the parameter
        self.proj = nn.Linear(3, 3)
        self.side.register_buffer("w", self.proj.weight)


class Histogram(nn.Module):
    """Saves a plain tensor through get_extra_state (as Transformer Engine does with fp8 metadata)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(2, 2)
        self.counts = torch.zeros(6)

    def get_extra_state(self) -> torch.Tensor:
        return self.counts

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.counts = state


class ExtraHoldsParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def get_extra_state(self) -> dict:
        return {"scale": self.scale, "version": 2}

    def set_extra_state(self, state: dict) -> None:
        pass


def extra_state() -> nn.Module:
    return nn.Sequential(Histogram(), ExtraHoldsParameter())


class DottedName(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Module()
        self.enc.out = nn.Linear(2, 2)
        setattr(self, "enc.out", nn.Linear(2, 2))


def jit_traced() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).eval()
    return torch.jit.trace(model, torch.zeros(1, 1, 6, 6))


def fx_traced() -> nn.Module:
    return torch.fx.symbolic_trace(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)))


def quantized_cells(dtype: torch.dtype = torch.qint8) -> nn.Module:
    cells = nn.ModuleDict({"lstm": nn.LSTMCell(3, 2), "gru": nn.GRUCell(3, 2), "rnn": nn.RNNCell(3, 2)})
    return torch.ao.quantization.quantize_dynamic(cells, {nn.LSTMCell, nn.GRUCell, nn.RNNCell}, dtype=dtype)


def parametrized_lstm() -> nn.Module:
    lstm = nn.LSTM(2, 2)
    nn.utils.parametrizations.orthogonal(lstm, "weight_hh_l0")
    return nn.Sequential(lstm)


class CachingChild(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 3)
        self.cached = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cached is None:
            self.cached = self.proj.weight.detach().t()
        return x @ self.cached


class ClearsChildCache(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = CachingChild()

    def train(self, mode: bool = True) -> ClearsChildCache:
        super().train(mode)
        self.inner.cached = None
        return self

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202
        self.inner.cached = None
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def parent_clears_cache() -> nn.Module:
    model = ClearsChildCache().eval()
    model(torch.ones(1, 3))
    return model


class NamedHook:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, module: nn.Module, args: tuple) -> None:
        return None


class HookedMask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(2, 2)
        self.gate = torch.ones(2)
        self.register_forward_pre_hook(NamedHook("gate"))


@dataclasses.dataclass
class Moments:
    mean: torch.Tensor
    var: torch.Tensor


class Pair(NamedTuple):
    low: torch.Tensor
    high: torch.Tensor


class HiddenEverywhere(nn.Module):
    shared = torch.arange(3.0)  # a class attribute

    __slots__ = ("slotted",)

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 3)
        self.deep = {"a": [{"b": ({"c": [[torch.ones(2)]]},)}]}
        self.moments = Moments(torch.zeros(3), torch.ones(3))
        self.history = collections.deque([torch.zeros(1)], maxlen=4)
        self.bounds = Pair(torch.zeros(1), torch.ones(1))
        object.__setattr__(self, "slotted", torch.full((2,), 7.0))


class OddNames(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("running-mean", torch.zeros(3))
        self.register_parameter("lambda", nn.Parameter(torch.ones(4)))
        self.pd = nn.ParameterDict({"w-1": nn.Parameter(torch.ones(2))})
        self.stages = nn.ModuleDict({"0": nn.ModuleList([nn.BatchNorm1d(2), nn.BatchNorm1d(2)])})
        self.by_name = {"mean": getattr(self, "running-mean")}
        self.head = getattr(self, "lambda").detach()[:2]
        self.pd_view = self.pd["w-1"].detach()[:1]
        self.stats = [self.stages["0"][1].running_var]
        setattr(self, "extra blocks", [nn.Linear(2, 2)])
        setattr(self, "blocks.more", [nn.Linear(2, 2)])


class NestedContainers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = [{"cls": nn.Linear(2, 2)}, {"box": nn.Linear(2, 4)}]
        self.stages = ([nn.Conv1d(1, 1, 1)], [nn.BatchNorm1d(1)])


class KeepsComputedWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 3)
        nn.utils.parametrizations.orthogonal(self.proj)
        self.w = self.proj.weight


class ClassLevelMask(nn.Module):
    mask = torch.ones(2)

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(2, 2)


def weight_normed() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nn.Sequential(nn.utils.weight_norm(nn.Linear(2, 2)), nn.utils.spectral_norm(nn.Linear(2, 2)))


ZOO = {
    "shared buffer, persistent under one name": (shared_buffer_mixed_persistence, {}),
    "parameter also a buffer": (ParameterAlsoBuffer, {"side.w": BROKEN_TIE}),
    "extra state holding tensors": (extra_state, {}),
    "module name with a dot": (DottedName, {"enc.out": DOTTED_NAME}),
    "torch.jit.trace": (jit_traced, {}),
    "torch.fx.symbolic_trace": (fx_traced, {}),
    "dynamically quantized cells, qint8": (quantized_cells, {}),
    "dynamically quantized cells, float16": (lambda: quantized_cells(torch.float16), {}),
    "parametrized LSTM": (parametrized_lstm, {}),
    "cache a parent clears": (parent_clears_cache, {}),
    "hook with a name": (HookedMask, {"gate": PLAIN_TENSOR}),
    "plain tensors everywhere": (
        HiddenEverywhere,
        {
            "shared": PLAIN_TENSOR,
            "slotted": PLAIN_TENSOR,
            "deep['a'][0]['b'][0]['c'][0][0]": PLAIN_TENSOR,
            "moments.mean": PLAIN_TENSOR,
            "moments.var": PLAIN_TENSOR,
            "history[0]": PLAIN_TENSOR,
            "bounds.low": PLAIN_TENSOR,
            "bounds.high": PLAIN_TENSOR,
        },
    ),
    "names Python cannot read": (
        OddNames,
        {
            "by_name['mean']": STALE_REFERENCE,
            "head": STALE_REFERENCE,
            "pd_view": STALE_REFERENCE,
            "stats[0]": STALE_REFERENCE,
            "extra blocks": UNREGISTERED_MODULE,
            "blocks.more": UNREGISTERED_MODULE,
        },
    ),
    "containers of containers": (
        NestedContainers,
        {"heads": UNREGISTERED_MODULE, "stages": UNREGISTERED_MODULE},
    ),
    "computed weight kept": (KeepsComputedWeight, {"w": PLAIN_TENSOR}),
    "class attribute": (ClassLevelMask, {"mask": PLAIN_TENSOR}),
    "weight_norm and spectral_norm": (weight_normed, {}),
}


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ZOO[name][0]()


# -- PyTorch's own account ------------------------------------------------------------------------


def pytorch_names(model: nn.Module) -> dict[str, tuple[torch.Tensor, str]]:
    """name -> (tensor, kind) for every registered name, as PyTorch gives them."""
    names = {}
    for path, module in model.named_modules(remove_duplicate=False):
        prefix = f"{path}." if path else ""
        for key, tensor in module._parameters.items():
            if tensor is not None:
                names.setdefault(prefix + key, (tensor, "parameter"))
        for key, tensor in module._buffers.items():
            if tensor is not None:
                kind = "non-persistent buffer" if key in module._non_persistent_buffers_set else "buffer"
                names.setdefault(prefix + key, (tensor, kind))
    return names


def independent_plain_tensors(model: nn.Module) -> dict[int, str]:
    """Every tensor reachable from a module's own attributes, class attributes and slots."""
    registered = {id(t) for t in (*model.parameters(), *model.buffers())}
    internal = set(vars(nn.Module()))
    found: dict[int, str] = {}

    def walk(value: object, name: str, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            found.setdefault(id(value), name)
        elif depth > 8 or isinstance(value, (nn.Module, str, bytes, type)):
            return
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}[{key!r}]", depth + 1)
        elif isinstance(value, (list, tuple, set, collections.deque)):
            for index, item in enumerate(value):
                walk(item, f"{name}[{index}]", depth + 1)
        elif dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name), f"{name}.{field.name}", depth + 1)

    for path, module in model.named_modules():
        if isinstance(module, torch.jit.ScriptModule):
            continue
        prefix = f"{path}." if path else ""
        for key, value in vars(module).items():
            if key not in internal:
                walk(value, prefix + key, 0)
        for klass in type(module).__mro__:
            if klass.__module__.startswith("torch.") or klass is object:
                continue
            for key, value in vars(klass).items():
                if isinstance(value, torch.Tensor):
                    walk(value, prefix + key, 0)
            for slot in vars(klass).get("__slots__", ()):
                if hasattr(module, slot):
                    walk(getattr(module, slot), prefix + slot, 0)
    return {key: name for key, name in found.items() if key not in registered}


# -- the checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ZOO))
def test_rows_are_pytorchs_account(name):
    model = build(name)
    table = inventory(model)
    rows = list(table)
    registered = pytorch_names(model)
    state = model.state_dict(keep_vars=True)
    cover = collections.Counter(n for row in rows for n in row.names)
    collided = name == "module name with a dot"  # PyTorch itself gives two tensors one name
    for key in [*registered, *state]:
        assert cover[key] >= 1, f"{key} has no row"
        assert collided or cover[key] == 1, f"{key} is on {cover[key]} rows"
    for key, (tensor, kind) in registered.items():
        row = next(r for r in rows if key in r.names and (r.tensor is tensor or not collided))
        assert row.tensor is tensor, key
        assert row.kind_of(key) == kind, (key, row.kind_of(key), kind)
        assert row.shape == tuple(tensor.shape) and row.dtype == str(tensor.dtype).removeprefix("torch.")
    by_tensor = collections.defaultdict(set)
    for row in rows:
        if row.kind in REGISTERED:
            by_tensor[id(row.tensor)].add(row.name)
    assert all(len(names) == 1 for names in by_tensor.values()), "one tensor on several rows"
    unique = {id(t) for t in (*model.parameters(), *model.buffers())}
    assert len([r for r in rows if r.kind in REGISTERED]) == len(unique)
    for row in rows:
        if not collided:
            assert row.in_state_dict == any(n in state for n in row.names), row.name
        assert set(row.unsaved) == {n for n in row.names if n not in state} if row.unsaved else True
    held = {id(r.tensor) for r in rows if r.tensor is not None}
    missing = [n for key, n in independent_plain_tensors(model).items() if key not in held]
    assert not missing, f"plain tensors with no row: {missing}"
    str(table), table._repr_html_()  # both render


def snippets(fix: str) -> list[str]:
    """The Python in a fix: `read X where`, an assignment, a register_buffer call."""
    found = re.findall(r"read (\S+) where you need it", fix)
    found += re.findall(r"((?:self\.\w+|setattr\(.*?\)) = .*?)(?:\.$|\.\s| \(keys)", fix)
    found += re.findall(r"((?:self\.)?register_buffer\([^)]*\))", fix)
    return found


@pytest.mark.parametrize("name", list(ZOO))
def test_audit_finds_what_is_wrong_and_nothing_else(name):
    model = build(name)
    found = audit(model)
    assert found.problems() == ZOO[name][1], str(found)
    modules = dict(model.named_modules(remove_duplicate=False))
    for finding in found:
        code = snippets(finding.fix)
        assert code or "in forward()" in finding.fix, finding.fix
        for snippet in code:
            compile(snippet, "<fix>", "exec")
        for expression in re.findall(r"read (\S+) where you need it", finding.fix):
            head = re.sub(r"\[[^\]]*\]", "", finding.name).split(".")
            owner = next(
                (
                    ".".join(head[:cut])
                    for cut in range(len(head) - 1, 0, -1)
                    if ".".join(head[:cut]) in modules
                ),
                "",
            )
            value = eval(expression, {"self": modules[owner], "model": model})  # noqa: S307
            target = re.search(r"the (?:parameter|buffer) '([^']+)'", finding.message)
            if target:
                assert value is pytorch_names(model)[target.group(1)][0], expression


def test_fixes_for_containers_of_containers_build():
    """Following the suggested container literally works: nn.ModuleDict inside nn.ModuleList."""
    fixes = {f.name: f.fix for f in audit(NestedContainers())}
    assert "nn.ModuleList([nn.ModuleDict({...}), ...])" in fixes["heads"]
    assert "nn.ModuleList([nn.ModuleList([...]), ...])" in fixes["stages"]
    model = NestedContainers()
    model.heads = nn.ModuleList([nn.ModuleDict(d) for d in model.heads])
    model.stages = nn.ModuleList([nn.ModuleList(s) for s in model.stages])
    assert audit(model).ok


def test_tie_really_breaks_and_the_fix_names_the_parameter():
    model = ParameterAlsoBuffer()
    row = inventory(model)["proj.weight"]
    assert row.kind == "parameter" and row.kind_of("side.w") == "buffer" and row.stepped_by_optimizer
    fix = audit(model).findings[0].fix
    assert "model.proj.weight" in fix
    model.double()
    assert model.side.w is not model.proj.weight  # what the finding says happens


def test_extra_state_tensor_is_one_row_saved_through_get_extra_state():
    model = extra_state()
    table = inventory(model)
    row = table["0._extra_state"]
    assert table["0.counts"] is row and row.tensor is model[0].counts and row.in_state_dict
    assert row.held_by == ("0.counts",)
    assert table["1._extra_state"].elements is None  # the parameter in it is counted on its own row
    assert "1.scale" in table["1._extra_state"].note


def test_state_dict_error_is_said():
    class Broken(nn.Module):
        def get_extra_state(self) -> None:
            raise RuntimeError("not ready")

        def set_extra_state(self, state: object) -> None:
            pass

    table = inventory(nn.Sequential(Broken(), nn.Linear(1, 1)))
    assert table.state_dict_error == "RuntimeError: not ready"
    assert "not ready" in str(table) and "not ready" in table._repr_html_()


def test_hook_computed_rows_do_not_follow_to_until_the_next_forward():
    table = inventory(weight_normed())
    assert not table["0.weight"].follows_to  # weight_norm's hook: recomputed at the next forward
    lstm = inventory(parametrized_lstm())
    assert lstm["0.weight_hh_l0"].follows_to  # a parametrization: recomputed on each access


def test_a_long_fold_reads_with_a_step():
    model = nn.Sequential(*[nn.Linear(3 + i % 2, 3 + (i + 1) % 2) for i in range(200)])
    text = str(inventory(model))
    assert "{0..198..2}.weight" in text and "{1..199..2}.bias" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_a_tensor_put_on_a_library_module_is_still_reported():
    """Only attributes PyTorch's own class assigns are PyTorch's to look after."""
    model = nn.Sequential(nn.Linear(2, 2))
    model[0].mask = torch.ones(2)
    assert audit(model).problems() == {"0.mask": PLAIN_TENSOR}
    assert audit(quantized_cells()).ok
