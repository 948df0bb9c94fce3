"""audit(): each bug from the wild is found on the buggy model, and nothing on its fix."""

import warnings

import pytest
import torch
from torch import nn

from buflesson import Audit, FreshStats, StaleStats, audit
from buflesson.audit import FORWARD_FAILS, PLAIN_TENSOR, STALE_REFERENCE, UNSAVED_STATE
from buflesson.wild import PAIRS


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
    text = str(found)
    assert "a view of the buffer 'table' (it shares its memory)" in text
    assert "a view of the parameter 'linear.weight'" in text and "a new .data" in text
    assert "nn.ParameterList" in text


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
    assert "M&lt;1&gt;" in html and "a &lt;note&gt;" in html and "<td><code>stats[0]</code></td>" in html


def test_audit_wants_a_module_instance():
    with pytest.raises(TypeError, match="expects a torch.nn.Module instance"):
        audit(StaleStats)
