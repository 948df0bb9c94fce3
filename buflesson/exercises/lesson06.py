"""Lesson 6: non-persistent buffers for derived constants; nn.Buffer and what assignment keeps."""

from __future__ import annotations

import torch
from torch import nn

from buflesson.checks import Fail
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PARAMETER, PLAIN
from buflesson.legacy_probes import (
    build_isolated,
    call_student,
    expect_kind,
    kind_of,
    legacy_exercise,
    move,
    same,
    save_and_reload,
)
from buflesson.running_stats import seeded_batches

MAX_LEN = 6


def _scores(length: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, length, length, generator=generator)


def _masked(scores: torch.Tensor) -> torch.Tensor:
    length = scores.shape[-1]
    allowed = torch.ones(length, length, dtype=torch.bool, device=scores.device).tril()
    return scores.masked_fill(~allowed, float("-inf"))


def _forward_matches(model: nn.Module, scores: torch.Tensor, what: str) -> bool:
    out = call_student(model, scores, what=what)
    return isinstance(out, torch.Tensor) and same(out, _masked(scores))


@legacy_exercise(
    "6.1",
    "A causal mask as a non-persistent buffer",
    passed="mask moves with the model, stays out of state_dict(), and old checkpoints still load.",
)
def causal_mask(answer: object) -> None:
    short, full = _scores(4, seed=6), _scores(MAX_LEN, seed=7)
    model = build_isolated(answer, MAX_LEN)
    expect_kind(model, "mask", NON_PERSISTENT_BUFFER, sample=short)
    tril = torch.ones(MAX_LEN, MAX_LEN, dtype=torch.bool).tril()
    mask = model.mask
    if tuple(mask.shape) != (MAX_LEN, MAX_LEN):
        raise Fail(
            f"mask has shape {tuple(mask.shape)}; for max_len={MAX_LEN} it should be ({MAX_LEN}, {MAX_LEN}).",
            "Build it from max_len: torch.ones(max_len, max_len, dtype=torch.bool).tril().",
        )
    if not torch.equal(mask != 0, tril):
        if torch.equal(mask != 0, tril.T):
            raise Fail(
                "mask lets each position see the later ones: it is the upper triangle.",
                "Position i may look at positions j <= i: use .tril(), not .triu().",
            )
        raise Fail(
            "mask is not the lower triangle of ones.",
            "Build it as torch.ones(max_len, max_len, dtype=torch.bool).tril().",
        )
    if not _forward_matches(model, full, "forward"):
        raise Fail(
            "forward does not give the scores with -inf above the diagonal.",
            "Return scores.masked_fill(~mask, float('-inf')), where mask is True on and below the diagonal.",
        )
    try:
        shorter_works = _forward_matches(model, short, "forward on a sequence shorter than max_len")
    except Fail:  # typically a shape error from the uncut mask
        shorter_works = False
    if not shorter_works:
        raise Fail(
            "forward fails for a sequence shorter than max_len.",
            "Cut the mask to the input's length T = scores.shape[-1]: self.mask[:T, :T].",
        )

    # A checkpoint holds no mask: it loads strictly, even into a model built for longer sequences.
    longer = save_and_reload(model, lambda: build_isolated(answer, MAX_LEN + 2))
    if not _forward_matches(longer, _scores(MAX_LEN + 2, seed=8), "After load_state_dict, forward"):
        raise Fail("After loading a checkpoint, forward gives other values.")

    on_meta = move(build_isolated(answer, MAX_LEN), torch.device("meta"))
    if on_meta.mask.device.type != "meta":
        raise Fail("After .to('meta'), mask stayed behind.")
    out = call_student(on_meta, short.to("meta"), what="After .to('meta'), forward")
    if out.device.type != "meta":
        raise Fail(
            f"After .to('meta'), forward returned a tensor on {out.device}.",
            "Use the buffer self.mask in forward, not a tensor made there.",
        )
    doubled = move(build_isolated(answer, MAX_LEN), torch.float64)
    if not _forward_matches(doubled, short.double(), "After .double(), forward"):
        raise Fail("After .double(), forward gives other values.")


_KIND_AFTER_FIT = {
    PARAMETER: (
        "{name!r} became a parameter when fit() assigned an nn.Parameter to it.",
        "Assign the plain tensor: self.{name} = x.{name}(0). A plain tensor assigned to a buffer's "
        "name stays a buffer.",
    ),
    NON_PERSISTENT_BUFFER: (
        "After fit(), {name!r} is a non-persistent buffer, so the fitted value is not saved.",
        "Assigning nn.Buffer(...) again registers it anew, with that call's persistent flag. Assign "
        "the plain tensor instead: self.{name} = x.{name}(0).",
    ),
    PLAIN: (
        "After fit(), {name!r} is a plain attribute, so the fitted value is not saved.",
        "Do not delete the buffer before assigning: self.{name} = x.{name}(0) on the buffer's name "
        "keeps it a buffer.",
    ),
    NONE_BUFFER: (
        "After fit(), {name!r} holds None.",
        "Assign the tensor you computed: self.{name} = x.{name}(0).",
    ),
}


def _expect_fitted(model: nn.Module, data: torch.Tensor) -> None:
    for name in ("mean", "std"):
        kind = kind_of(model, name)
        if kind in _KIND_AFTER_FIT:
            message, hint = _KIND_AFTER_FIT[kind]
            raise Fail(message.format(name=name), hint.format(name=name))
        if kind is None:
            raise Fail(f"After fit(), the model has no tensor named {name!r}.")
    if model.mean.requires_grad or model.std.requires_grad:
        raise Fail("After fit(), mean or std requires grad.", "Assign plain tensors: x.mean(0), x.std(0).")
    if not torch.allclose(model.mean, data.mean(0)):
        raise Fail(f"After fit(), mean is {model.mean.tolist()}.", "Use the mean over the batch: x.mean(0).")
    if not torch.allclose(model.std, data.std(0)):
        if torch.allclose(model.std, data.std(0, correction=0)):
            raise Fail(
                "std uses the population formula (correction=0).",
                "Use PyTorch's default, x.std(0), as the lesson does.",
            )
        raise Fail(f"After fit(), std is {model.std.tolist()}.", "Use the std over the batch: x.std(0).")


@legacy_exercise(
    "6.2",
    "A normalizer with `nn.Buffer` and `fit()`",
    passed="mean and std stayed buffers through fit(): the fitted values are saved, reloaded and moved.",
)
def normalizer(answer: object) -> None:
    data = seeded_batches(steps=1, batch_size=10, features=3, seed=9)[0]
    x = seeded_batches(steps=1, batch_size=4, features=3, seed=10)[0]
    model = build_isolated(answer, 3)
    for name in ("mean", "std"):
        expect_kind(model, name, BUFFER, sample=x)
    if not (same(model.mean, torch.zeros(3)) and same(model.std, torch.ones(3))):
        raise Fail(
            "Before fit(), mean should be zeros and std ones, so forward leaves x unchanged.",
            "Start with nn.Buffer(torch.zeros(features)) and nn.Buffer(torch.ones(features)).",
        )
    fit = getattr(model, "fit", None)
    if not callable(fit):
        raise Fail("The model has no fit() method.", "Define def fit(self, x): ... in the class.")
    call_student(fit, data, what="fit(x)")
    _expect_fitted(model, data)
    out = call_student(model, x, what="forward")
    expected = (x - data.mean(0)) / data.std(0)
    if not isinstance(out, torch.Tensor) or not torch.allclose(out, expected):
        raise Fail("forward gives other values than (x - mean) / std.", "Return (x - self.mean) / self.std.")

    fresh = save_and_reload(model, lambda: build_isolated(answer, 3))
    if not (same(fresh.mean, model.mean) and same(fresh.std, model.std)):
        raise Fail("The fitted mean and std were lost in a save/load round trip through a file.")

    doubled = move(fresh, torch.float64)
    if doubled.mean.dtype != torch.float64 or doubled.std.dtype != torch.float64:
        raise Fail("After .double(), mean and std are not float64.")
    out = call_student(doubled, x.double(), what="After .double(), forward")
    if out.dtype != torch.float64:
        raise Fail(f"After .double(), forward returned {out.dtype}.")
    on_meta = move(doubled, torch.device("meta"))
    if on_meta.mean.device.type != "meta" or on_meta.std.device.type != "meta":
        raise Fail("After .to('meta'), mean or std stayed behind.")
