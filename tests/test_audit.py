"""audit(): each bug from the wild is found on the buggy model, and nothing on its fix."""

import warnings

import pytest
import torch
from torch import nn

from buflesson import Audit, StaleStats, audit
from buflesson.audit import (
    CONVERSIONS,
    FORWARD_FAILS,
    PLAIN_TENSOR,
    STALE_REFERENCE,
    UNREGISTERED_MODULE,
    UNSAVED_STATE,
    python_path,
)

from wild_fixed import PAIRS, FreshStats


def _sample(cls):
    return torch.randn(5, 4) if "Mask" in cls.__name__ else torch.randn(5, 3)


@pytest.mark.parametrize("problem", list(PAIRS))
def test_each_bug_is_found_on_the_buggy_model_and_nothing_on_the_fix(problem):
    buggy, fixed = PAIRS[problem]
    found = audit(buggy(), _sample(buggy))
    assert set(found.problems().values()) == {problem}, str(found)
    clean = audit(fixed(), _sample(fixed))
    assert clean.ok and not clean.findings, str(clean)


def test_stale_references_are_named_with_the_buffer_they_hold():
    found = audit(StaleStats())
    assert found.problems() == {"stats[0]": STALE_REFERENCE, "stats[1]": STALE_REFERENCE}
    text = str(found)
    assert "It is the buffer 'mean' itself" in text and "read self.std" in text


def test_after_the_move_the_stale_list_is_a_plain_tensor_left_behind():
    model = StaleStats().to("meta")
    found = audit(model)
    assert found.problems() == {"stats[0]": PLAIN_TENSOR, "stats[1]": PLAIN_TENSOR}
    assert "It is on cpu while the model's parameters and buffers are on meta" in str(found)


class References(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.register_buffer("table", torch.zeros(3, 3))
        self.weights = [self.linear.weight]  # parameters keep their identity through .to() and .double()
        self.first_row = self.table[0]  # a view of a buffer goes stale like the buffer itself
        self.extra = [nn.Parameter(torch.ones(1))]  # an unregistered parameter
        self.row = self.linear.weight.detach()[0]  # a view of a parameter keeps its old memory
        self.name = "not a tensor"


def test_views_go_stale_parameter_references_do_not_and_unregistered_parameters_are_named():
    found = audit(References())
    assert found.problems() == {
        "first_row": STALE_REFERENCE,
        "extra[0]": PLAIN_TENSOR,
        "row": STALE_REFERENCE,
    }
    messages = {finding.name: finding.message for finding in found}
    assert "a view of the buffer 'table' (it shares its memory)" in messages["first_row"]
    assert "a view of the parameter 'linear.weight'" in messages["row"] and "new .data" in messages["row"]
    assert "nn.ParameterList" in str(found)


def test_a_model_that_cannot_be_copied_falls_back_to_pytorchs_rule():
    model = References()
    model.derived = model.linear.weight * 2  # not a leaf: deepcopy refuses it
    found = audit(model)
    assert found.problems() == {
        "first_row": STALE_REFERENCE,
        "extra[0]": PLAIN_TENSOR,
        "row": STALE_REFERENCE,
        "derived": PLAIN_TENSOR,
    }


def test_audit_does_not_change_the_model():
    model = StaleStats()
    mean, listed = model.mean, model.stats[0]
    audit(model, torch.randn(4, 3))
    assert model.mean is mean and model.stats[0] is listed and model.training
    peak_model = PAIRS[UNSAVED_STATE][0]()
    peak_model.eval()
    audit(peak_model, torch.full((4, 3), 5.0))
    assert torch.equal(peak_model.peak, torch.ones(3)) and not peak_model.training


def test_random_state_is_left_as_it_was():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    torch.manual_seed(0)
    audit(model, torch.randn(4, 3))
    after_audit = torch.rand(2)
    torch.manual_seed(0)
    torch.randn(4, 3)
    assert torch.equal(torch.rand(2), after_audit)


def _builtins():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            nn.LSTM(3, 4),
            nn.GRU(3, 4),
            nn.Transformer(
                d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16
            ),
            nn.MultiheadAttention(8, 2),
            nn.BatchNorm2d(3),
            nn.Embedding(5, 3),
            nn.utils.parametrizations.weight_norm(nn.Linear(3, 3)),
            nn.utils.parametrizations.spectral_norm(nn.Linear(3, 3)),
        ]


@pytest.mark.parametrize("module", _builtins(), ids=lambda m: type(m).__name__)
def test_pytorch_modules_are_clean(module):
    found = audit(module)
    assert found.ok, str(found)


def test_a_sample_that_does_not_fit_is_reported_not_raised():
    found = audit(FreshStats(), torch.randn(2, 7))
    assert found.problems() == {"(forward)": FORWARD_FAILS}
    assert "RuntimeError" in str(found)


def test_without_a_sample_non_persistent_buffers_get_a_note():
    buggy = PAIRS[UNSAVED_STATE][0]()
    found = audit(buggy)
    assert found.ok
    assert "pass audit(model, sample)" in str(found)
    assert not audit(FreshStats()).notes


def test_text_and_html():
    clean = audit(FreshStats())
    assert str(clean) == "audit(FreshStats): no state problems found in 4 tensors."
    assert "buflesson-audit" in clean._repr_html_() and "<table>" not in clean._repr_html_()
    found = Audit("M<1>", [audit(StaleStats()).findings[0]], 4, ["a <note>"])
    text = str(found)
    assert text.startswith("audit(M<1>): 1 state problem found.\n1. stats[0]: stale reference\n")
    assert "   Fix: Keep the name" in text and "Note: a <note>" in text
    html = found._repr_html_()
    assert (
        "M&lt;1&gt;" in html
        and "a &lt;note&gt;" in html
        and ">stats[0]</span>: <b>stale reference</b>" in html
    )
    assert all(len(line) <= 100 for line in text.splitlines())


def test_audit_wants_a_module_instance():
    with pytest.raises(TypeError, match="expects a torch.nn.Module instance"):
        audit(StaleStats)


# -- real library code: no false alarm ------------------------------------------------------


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torch_nn_utils_hooks_are_not_stale_or_plain():
    import torch.nn.utils.prune as prune

    pruned = nn.Sequential(nn.Linear(3, 3))
    prune.l1_unstructured(pruned[0], "weight", amount=0.5)
    for model in (
        nn.Sequential(nn.utils.weight_norm(nn.Linear(3, 3))),
        nn.Sequential(nn.utils.spectral_norm(nn.Linear(3, 3))),
        pruned,
        nn.Sequential(nn.utils.parametrizations.orthogonal(nn.Linear(3, 3))),
    ):
        found = audit(model, torch.randn(4, 3))
        assert found.ok, str(found)


class Cache(nn.Module):
    """A cache of a tensor computed from a parameter, as timm's LeViT keeps its attention biases."""

    def __init__(self, clears_itself: bool) -> None:
        super().__init__()
        self.biases = nn.Parameter(torch.ones(3))
        self.cache: dict[str, torch.Tensor] = {}
        self.clears_itself = clears_itself

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.clears_itself:
            self.cache = {}
        return self

    def forward(self, x):
        if not self.training:
            self.cache.setdefault(str(x.device), self.biases * 2)
        return x + self.cache.get(str(x.device), self.biases * 2)


def test_a_cache_the_module_clears_itself_is_no_problem_and_one_it_keeps_is():
    managed = Cache(clears_itself=True).eval()
    managed(torch.zeros(3))
    assert audit(managed).ok
    kept = Cache(clears_itself=False).eval()
    kept(torch.zeros(3))
    assert audit(kept).problems() == {"cache['cpu']": PLAIN_TENSOR}


class Layers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = [nn.Linear(3, 3), nn.BatchNorm1d(3)]
        self.by_name = {"out": nn.Linear(3, 2)}
        self.pair = (nn.Linear(3, 3),)
        self.registered = nn.Linear(3, 3)
        self.views = [self.registered]  # a registered module in a list: fine


def test_modules_kept_in_plain_containers_are_one_finding_each_with_the_container_fix():
    found = audit(Layers())
    assert found.problems() == {
        "layers": UNREGISTERED_MODULE,
        "by_name": UNREGISTERED_MODULE,
        "pair": UNREGISTERED_MODULE,
    }
    fixes = {finding.name: finding.fix for finding in found}
    assert fixes["layers"] == "Keep them in nn.ModuleList: self.layers = nn.ModuleList([...])."
    assert fixes["by_name"].startswith("Keep them in nn.ModuleDict: self.by_name = nn.ModuleDict(")
    assert "nn.ModuleList" in fixes["pair"]
    message = next(f.message for f in found if f.name == "layers")
    assert message.startswith("layers[{0,1}]: 2 modules kept in a plain list")
    assert "Their 7 tensors" in message


def test_a_nested_plain_list_is_named_by_its_full_path():
    model = nn.Sequential(nn.Linear(2, 2), Layers())
    assert set(audit(model).problems()) == {"1.layers", "1.by_name", "1.pair"}


def test_every_suggested_fix_reads_a_name_that_python_can_run():
    model = nn.Sequential(nn.Linear(3, 3))
    model[0].register_buffer("mean", torch.zeros(3))
    model.stats = [model[0].mean]
    found = audit(model)
    assert found.problems() == {"stats[0]": STALE_REFERENCE}
    fix = found.findings[0].fix
    expression = fix.split("read ")[1].split(" where")[0]
    assert expression == "self[0].mean"
    assert eval(expression, {"self": model}) is model[0].mean


def test_python_path():
    assert python_path("0.weight_orig") == "model[0].weight_orig"
    assert python_path("encoder.layers.3.attn.bias") == "model.encoder.layers[3].attn.bias"
    assert python_path("stats['mean']") == "model.stats['mean']"
    assert python_path("h.0.class.weight") == "getattr(model.h[0],'class').weight"


def test_python_path_reads_each_step_as_its_module_keeps_it():
    """ModuleDict keys are strings, a keyword or a hyphen needs getattr, a dotted module name is one
    step: every path evaluates to the very tensor."""
    model = nn.Module()
    model.d = nn.ModuleDict({"0": nn.ModuleList([nn.BatchNorm1d(2)])})
    model.pd = nn.ParameterDict({"w-1": nn.Parameter(torch.ones(1))})
    model.register_parameter("lambda", nn.Parameter(torch.ones(1)))
    model.register_buffer("running-mean", torch.zeros(1))
    setattr(model, "a.b", nn.Linear(1, 1))
    names = dict(model.named_parameters()) | dict(model.named_buffers())
    for name, tensor in names.items():
        path = python_path(name, "self", model)
        compile(path, "<fix>", "eval")
        assert eval(path, {"self": model}) is tensor, (name, path)
    assert python_path("d.0.0.running_mean", "self", model) == "self.d['0'][0].running_mean"


def test_the_conversion_rule_is_what_pytorch_does():
    """The sentence every stale-reference message quotes, checked on the pinned torch."""
    assert "a conversion that changes nothing keeps the same object" in CONVERSIONS
    model = nn.Linear(2, 2)
    model.register_buffer("b", torch.zeros(2))
    weight, buf = model.weight, model.b
    model.float()  # changes nothing
    assert model.b is buf and model.weight is weight
    model.double()
    assert model.b is not buf and model.weight is weight and weight.dtype == torch.float64
    model.to("meta")
    assert model.weight is not weight


class Scalars(nn.Module):
    """Mimi's convolutions keep 0-dim paddings as plain tensors; a step counter is state."""

    def __init__(self, counts: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("padding_total", torch.tensor(4), persistent=False)
        self.padding_right = self.padding_total // 2
        self.steps = torch.tensor(0)
        self.counts = counts

    def forward(self, x):
        if self.training and self.counts:
            self.steps = self.steps + 1
        return self.linear(x) * self.padding_right


def test_a_0_dim_cpu_tensor_is_a_number_to_pytorch_unless_it_changes():
    constant = audit(Scalars(counts=False), torch.randn(2, 3))
    assert constant.ok, str(constant)
    counting = audit(Scalars(counts=True), torch.randn(2, 3))
    assert counting.problems() == {"steps": UNSAVED_STATE}
    assert "register_buffer" in counting.findings[0].fix
    assert "plain 0-dim tensors were not run" in str(audit(Scalars(counts=True)))
    assert not audit(Layers()).notes  # num_batches_tracked of a BatchNorm in a list is no plain scalar
    # what makes it harmless: next to tensors of another device or dtype it acts as a number
    model = Scalars(counts=False).to("meta").half()
    assert model(torch.ones(2, 3, device="meta", dtype=torch.half)).dtype == torch.half
