"""Lesson 6: non-persistent buffers for derived constants; nn.Buffer and what assignment keeps."""

from __future__ import annotations

from collections import OrderedDict

import torch

from buflesson.checks import Fail, exercise
from buflesson.handles import Remote
from buflesson.i18n import N_, Msg
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PARAMETER, PLAIN
from buflesson.probes import (
    FORWARD,
    Draw,
    as_msg,
    build,
    close,
    code,
    expect_follows_double,
    expect_fresh_output,
    expect_kind,
    expect_module_class,
    expect_own_tensors,
    expect_runs_on_device,
    forward,
    leaves_global_state,
    load_strict,
    move,
    rounded,
    rows,
    same,
    save_and_reload,
    save_file,
    shown,
    state_dict,
    student,
    tensor,
)

# --- 6.1 ---------------------------------------------------------------------------------------


def _tril(length: int) -> torch.Tensor:
    return torch.ones(length, length, dtype=torch.bool).tril()


def _masked(scores: torch.Tensor) -> torch.Tensor:
    """The scores with -inf where a position looks at a later one."""
    length = scores.shape[-1]
    return scores.masked_fill(~_tril(length).to(scores.device), float("-inf"))


def _expect_mask(mask: torch.Tensor, max_len: int) -> None:
    """`mask` is (max_len, max_len) and nonzero (True) exactly on and below the diagonal."""
    if tuple(mask.shape) != (max_len, max_len):
        raise Fail(
            "For CausalMask({max_len}), mask has shape {shape}; it should be ({max_len}, {max_len}).",
            "Build it from the argument: torch.ones(max_len, max_len, dtype=torch.bool).tril(), never a "
            "fixed size.",
            max_len=max_len,
            shape=tuple(mask.shape),
        )
    allowed = mask != 0
    tril = _tril(max_len)
    if torch.equal(allowed, tril):
        return
    if torch.equal(allowed, tril.T):
        raise Fail(
            "mask is True on and above the diagonal: it lets each position see the later ones.",
            "Position i may look at positions j <= i: use .tril(), not .triu().",
        )
    if torch.equal(allowed, ~tril):
        raise Fail(
            "mask is True above the diagonal, on the positions to hide; the exercise's mask is True "
            "where a position may look.",
            "Make it True on and below the diagonal: torch.ones(max_len, max_len, dtype=torch.bool).tril().",
        )
    raise Fail(
        "mask is not True exactly on and below the diagonal.",
        "Build it as torch.ones(max_len, max_len, dtype=torch.bool).tril(): the diagonal is included.",
    )


def _expect_masks_scores(
    model: Remote, scores: torch.Tensor, what: str | Msg, device_rule: bool = False
) -> None:
    """forward(scores) gives the scores with -inf above the diagonal (`what` names the step)."""
    what = as_msg(what)
    mask = tensor(model, "mask")
    try:
        out = forward(model, scores, what=what, device_rule=device_rule)
    except Fail:
        if mask.dtype != torch.bool:
            raise Fail(
                "{what} raised an error: mask is {dtype}, and the given forward uses it as a bool mask "
                "(~mask and masked_fill take True/False).",
                "Register the mask with dtype=torch.bool, or change forward to test self.mask[:T, :T] == 0.",
                what=what,
                dtype=str(mask.dtype),
            ) from None
        if scores.shape[-1] < mask.shape[-1]:
            raise Fail(
                "{what} raised an error for a sequence of length {length}, shorter than max_len = {max_len}.",
                "Cut the mask to the input's length T = scores.shape[-1]: self.mask[:T, :T].",
                what=what,
                length=scores.shape[-1],
                max_len=mask.shape[-1],
            ) from None
        raise
    if out.device.type == "meta" or scores.device.type == "meta":
        if tuple(out.shape) != tuple(scores.shape):
            raise Fail(
                "{what} returned shape {got} for scores of shape {shape}.",
                "Keep the given forward: it returns the scores, masked.",
                what=what,
                got=tuple(out.shape),
                shape=tuple(scores.shape),
            )
        return
    expected = _masked(scores)
    if close(out, expected):
        return
    if close(out, scores.masked_fill(~_tril(scores.shape[-1]), 0.0)):
        raise Fail(
            "{what} puts 0 above the diagonal, not -inf: after softmax a 0 still gets weight.",
            "Fill with float('-inf'): scores.masked_fill(~mask, float('-inf')).",
            what=what,
        )
    raise Fail(
        "{what} does not give the scores with -inf above the diagonal (for sequences of length {length}).",
        "Keep the given forward: scores.masked_fill(~self.mask[:T, :T], float('-inf')), with T the "
        "input's length.",
        what=what,
        length=scores.shape[-1],
    )


@exercise(
    "6.1",
    "A causal mask as a non-persistent buffer",
    passed="mask moves with the model, stays out of state_dict(), and old checkpoints still load.",
)
def causal_mask(answer: Remote) -> None:
    expect_module_class(answer, "CausalMask")
    draw = Draw()
    session = answer.session
    before_state = session.state()
    for max_len in draw.sizes_and_a_large_one(2, 3, 10):
        full = draw.randn(draw.integer(1, 3), max_len, max_len)
        shorter = draw.randn(draw.integer(1, 3), draw.integer(1, 3), *(2 * [draw.integer(1, max_len - 1)]))
        model = build(answer, max_len, seed=draw.seed())
        expect_kind(answer, model, "mask", NON_PERSISTENT_BUFFER, sample=full, args=(max_len,))
        expect_own_tensors(answer, ("mask",), args=(max_len,))
        _expect_mask(tensor(model, "mask"), max_len)
        _expect_masks_scores(model, full, FORWARD)
        expect_fresh_output(model, full, forward(model, full))
        _expect_masks_scores(model, 1.0 - 0.5 * full, N_("forward on a second input"))
        _expect_masks_scores(model, shorter, N_("forward on a sequence shorter than max_len"))

        # A checkpoint from before the mask existed, and the model's own: both load strictly, the
        # second even into a model built for longer sequences (the mask is not in it).
        old = OrderedDict((key, value) for key, value in state_dict(model).items() if key != "mask")
        old._metadata = OrderedDict({"": {"version": 1}})
        empty = save_file(session, old, "before-the-mask.pt")
        fresh = build(answer, max_len, seed=draw.seed())
        load_strict(
            fresh,
            empty,
            N_("Loading a checkpoint saved before the mask existed (no 'mask' key)"),
            N_("Keep mask out of the state: register it with persistent=False, and keep the given code."),
        )
        _expect_masks_scores(fresh, full, N_("After loading an old checkpoint, forward"))
        longer = max_len + draw.integer(1, 4)
        reloaded = save_and_reload(model, lambda n=longer: build(answer, n, seed=draw.seed()))
        _expect_mask(tensor(reloaded, "mask"), longer)
        _expect_masks_scores(
            reloaded,
            draw.randn(1, longer, longer),
            N_("After loading into a model with a larger max_len, forward"),
        )

        on_device = expect_runs_on_device(answer, shorter, ("mask",), args=(max_len,))
        device = session.device()
        _expect_masks_scores(
            on_device,
            full.to(device),
            Msg("After model.to({device!r}), forward", device=str(device)),
            device_rule=True,
        )
        doubled = expect_follows_double(answer, full, ("mask",), args=(max_len,))
        _expect_masks_scores(doubled, full.double(), N_("After model.double(), forward"))
    leaves_global_state(before_state, session.state(), N_("Building and running your model"))


# --- 6.2 ---------------------------------------------------------------------------------------

KEEP_LIKE_BUFFER = N_(
    "put the new values into the buffer itself, self.{name}.copy_(x.{name}(0)), or assign a tensor "
    "made like it, self.{name} = x.{name}(0).to(self.{name})"
)


def _keep(name: str) -> Msg:
    """How to set buffer `name` in fit and keep it a buffer (a clause: `{keep}` in a hint)."""
    return Msg(KEEP_LIKE_BUFFER, name=name)


_KIND_AFTER_FIT = {
    PARAMETER: (
        N_("After fit(), {name!r} is a parameter: fit() assigned an nn.Parameter to it."),
        N_("A plain tensor assigned to a buffer's name stays a buffer: {keep}."),
    ),
    NON_PERSISTENT_BUFFER: (
        N_("After fit(), {name!r} is a non-persistent buffer, so the fitted value is not saved."),
        N_(
            "Assigning nn.Buffer(...) registers the buffer anew, with that call's persistent flag "
            "(False here). Instead {keep}."
        ),
    ),
    PLAIN: (
        N_("After fit(), {name!r} is a plain attribute, so the fitted value is not saved."),
        N_("Do not delete the buffer: {keep}."),
    ),
    NONE_BUFFER: (
        N_("After fit(), {name!r} holds None."),
        N_("Keep a tensor there: {keep}."),
    ),
}


def _expect_start(model: Remote, features: int) -> None:
    for name, start, word, filled in (
        ("mean", torch.zeros(features), "zeros", N_("zeros")),
        ("std", torch.ones(features), "ones", N_("ones")),
    ):
        value = tensor(model, name)
        if tuple(value.shape) != (features,):
            raise Fail(
                "For Normalizer({features}), {name} has shape {shape}; it needs one value per feature, "
                "shape ({features},).",
                N_("Build it from the argument: nn.Buffer(torch.{word}(features)), never a fixed size.")
                if value.numel() != features
                else N_(
                    "Keep one dimension: torch.{word}(features) has shape ({features},); an extra dimension "
                    "of size 1 changes the shape that state_dict() saves and that every later use must carry."
                ),
                features=features,
                name=name,
                shape=tuple(value.shape),
                word=word,
            )
        if not same(value, start):
            raise Fail(
                "Before fit(), {name} is {got}; it should be {filled}, so that an unfitted model leaves x "
                "unchanged.",
                "Start with nn.Buffer(torch.zeros(features)) for mean and nn.Buffer(torch.ones(features)) "
                "for std.",
                name=name,
                got=rounded(value),
                filled=Msg(filled),
            )
        if value.dtype != torch.float32:
            raise Fail(
                "Before fit(), {name} is {dtype}; a model's tensors are torch.float32 until .double() "
                "converts them.",
                "torch.{word}(features) gives float32; leave out the dtype.",
                name=name,
                dtype=str(value.dtype),
                word=word,
            )


def _fit(model: Remote, data: torch.Tensor, what: str | Msg) -> None:
    if model.attr_or_none("fit") is None:
        raise Fail("The model has no fit() method.", "Define def fit(self, x): ... in the class.")
    with student(what):
        model.method("fit", data)


def _expect_fitted(model: Remote, data: torch.Tensor, conversion: str = "") -> None:
    """After fit(data): mean and std are still persistent buffers holding data.mean(0), data.std(0)
    (`conversion`: the model's conversion before the fit, `double()` or `to('cuda')`, if any)."""
    found = rows(model)
    for name in ("mean", "std"):
        row = found.get(name)
        if row is None:
            raise Fail("After fit(), the model has no tensor named {name!r}.", name=name)
        if row["kind"] in _KIND_AFTER_FIT:
            message, hint = _KIND_AFTER_FIT[row["kind"]]
            raise Fail(message, hint, name=name, keep=_keep(name))
        if row["requires_grad"]:
            raise Fail(
                "After fit(), {name} requires grad.",
                "Fit from the data's values only: x.{name}(0) of data that does not require grad, "
                "or under torch.no_grad().",
                name=name,
            )
    for name, expected in (("mean", data.mean(0)), ("std", data.std(0))):
        value = tensor(model, name)
        if tuple(value.shape) != tuple(expected.shape):
            raise Fail(
                "After fit() on data of shape {data}, {name} has shape {shape}, not {expected}.",
                "Compute it over the rows, one value per feature: x.{name}(0).",
                data=tuple(data.shape),
                name=name,
                shape=tuple(value.shape),
                expected=tuple(expected.shape),
            )
    for name, expected, start in (("mean", data.mean(0), 0.0), ("std", data.std(0), 1.0)):
        value = tensor(model, name)
        # Tight: x.std(0) + 1e-5 is not x.std(0); other formulas for the same value are within it.
        if value.device.type == "meta" or close(value, expected, atol=1e-6, rtol=2e-6):
            continue
        if same(value, torch.full_like(expected, start)):
            raise Fail(
                "fit() left {name} as it was in __init__.",
                "Set both buffers in fit: {keep}.",
                name=name,
                keep=_keep(name),
            )
        for low in (torch.float16, torch.bfloat16):
            if close(value, expected.to(low).to(expected.dtype), atol=1e-6, rtol=2e-6):
                raise Fail(
                    "After fit(), {name} holds x.{name}(0) rounded to {low}: {got}, expected {expected}.",
                    "Keep full precision: compute x.{name}(0) in the data's dtype and store it in the "
                    "buffer's own dtype, with no {low} step in between.",
                    name=name,
                    low=str(low),
                    got=rounded(value),
                    expected=rounded(expected),
                )
        if name == "std" and close(value, data.std(0, correction=0)):
            raise Fail(
                "std uses the population formula (correction=0).",
                "Use PyTorch's default, x.std(0), as the exercise says.",
            )
        raise Fail(
            "After fit() after model.{conversion}, {name} is {got}, expected x.{name}(0) = {expected}."
            if conversion
            else "After fit(), {name} is {got}, expected x.{name}(0) = {expected}.",
            "Compute it over the rows, one value per feature: x.{name}(0).",
            conversion=conversion,
            name=name,
            got=rounded(value),
            expected=rounded(expected),
        )


def _expect_normalizes(
    model: Remote, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, what: str | Msg
) -> None:
    what = as_msg(what)
    out = forward(model, x, what=what)
    if not close(out, (x - mean) / std):
        raise Fail(
            "{what} gives other values than (x - mean) / std.",
            "Keep the given forward: return (x - self.mean) / self.std.",
            what=what,
        )


def _expect_kept(model: Remote, target: str, wanted: object, data: torch.Tensor) -> None:
    """After a conversion to `wanted` (a dtype or a device type) and a fit on float32 CPU data, the
    buffers still have the model's dtype and device."""
    for name in ("mean", "std"):
        value = tensor(model, name)
        by_dtype = isinstance(wanted, torch.dtype)
        found = value.dtype if by_dtype else value.device.type
        if found != wanted:
            raise Fail(
                "After model.{target}, fit(x) on {data} data left {name} as {where}: the fit replaced the "
                "buffer's tensor with a new one that has the data's dtype and device, undoing {target}."
                if by_dtype
                else "After model.{target}, fit(x) on {data} data left {name} on {where}: the fit replaced "
                "the buffer's tensor with a new one that has the data's dtype and device, undoing {target}.",
                "Keep the buffer's dtype and device: {keep}.",
                target=target,
                data=f"{str(data.dtype).removeprefix('torch.')} {data.device.type.upper()}",
                name=name,
                where=str(value.dtype if by_dtype else value.device),
                keep=_keep(name),
            )


@exercise(
    "6.2",
    "A normalizer with `nn.Buffer` and `fit()`",
    passed="mean and std stayed buffers through fit(), kept the model's dtype and device, and the fitted "
    "values are saved and reloaded.",
)
def normalizer(answer: Remote) -> None:
    expect_module_class(answer, "Normalizer")
    draw = Draw()
    session = answer.session
    before_state = session.state()
    feature_counts = draw.sizes_and_a_large_one(2, 2, 7)
    for features in feature_counts:
        # Row counts never equal the feature count: statistics over the wrong dimension must show.
        data = 3.0 + 2.0 * draw.randn(draw.integer(5, 12, avoid=(features,)), features)
        x = 3.0 + 2.0 * draw.randn(draw.integer(2, 9, avoid=(features,)), features)
        model = build(answer, features, seed=draw.seed())
        for name in ("mean", "std"):
            expect_kind(answer, model, name, BUFFER, sample=x, args=(features,))
        expect_own_tensors(answer, ("mean", "std"), args=(features,))
        _expect_start(model, features)
        _expect_normalizes(model, x, torch.zeros(features), torch.ones(features), N_("Before fit(), forward"))

        _fit(model, data, code("fit(x)"))
        _expect_fitted(model, data)
        other = 1.0 - 0.5 * data  # a second fit, on other data, sets the statistics again
        _fit(model, other, N_("A second fit(x), on other data"))
        if close(tensor(model, "mean"), data.mean(0)) and close(tensor(model, "std"), data.std(0)):
            raise Fail(
                "A second fit() on other data left mean and std as the first fit() set them.",
                "fit sets the statistics from the data it is given, every time it is called: keep nothing "
                "that skips a later fit.",
            )
        _expect_fitted(model, other)
        _fit(model, data, code("fit(x)"))
        mean, std = data.mean(0), data.std(0)
        _expect_normalizes(model, x, mean, std, N_("After fit(), forward"))

        fresh = save_and_reload(model, lambda f=features: build(answer, f, seed=draw.seed()))
        for name, value in (("mean", mean), ("std", std)):
            if not close(tensor(fresh, name), value):
                raise Fail(
                    "The fitted {name} was lost in a save/load round trip through a file: it came back "
                    "as {got}.",
                    "Keep mean and std persistent buffers, so state_dict() holds the fitted values.",
                    name=name,
                    got=shown(tensor(fresh, name)),
                )
        _expect_normalizes(fresh, x, mean, std, N_("After loading the fitted state, forward"))

    features = feature_counts[0]
    data = 3.0 + 2.0 * draw.randn(draw.integer(5, 12, avoid=(features,)), features)
    x = 3.0 + 2.0 * draw.randn(draw.integer(2, 9, avoid=(features,)), features)

    doubled = expect_follows_double(answer, x, ("mean", "std"), args=(features,))
    _fit(doubled, data, N_("After model.double(), fit(x)"))
    _expect_kept(doubled, "double()", torch.float64, data)
    _expect_fitted(doubled, data, "double()")
    out = forward(doubled, x.double(), what=N_("After model.double() and fit(), forward"))
    if out.dtype != torch.float64 or not close(out, (x.double() - data.mean(0)) / data.std(0)):
        raise Fail(
            "After model.double() and fit(), forward on a float64 input gave {dtype} values other than "
            "(x - mean) / std.",
            "Keep the given forward, and keep the buffers float64 through fit().",
            dtype=str(out.dtype),
        )

    device = session.device()
    expect_runs_on_device(answer, x, ("mean", "std"), args=(features,))
    moved = move(build(answer, features, seed=draw.seed()), device)
    _fit(moved, data, Msg("After model.to({device!r}), fit(x) on CPU data", device=str(device)))
    _expect_kept(moved, f"to({str(device)!r})", device.type, data)
    _expect_fitted(moved, data, f"to({str(device)!r})")
    out = forward(
        moved,
        x.to(device),
        what=Msg("After model.to({device!r}) and fit(), forward", device=str(device)),
        device_rule=True,
    )
    if out.device.type != device.type:
        raise Fail(
            "After model.to({device!r}) and fit(), forward returned a tensor on {where}.",
            "Keep the given forward, and keep the buffers on the model's device through fit().",
            device=str(device),
            where=str(out.device),
        )
    leaves_global_state(before_state, session.state(), N_("Building, fitting and running your model"))
