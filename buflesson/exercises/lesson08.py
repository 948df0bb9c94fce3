"""Lesson 8: fixes for three state bugs reported in the wild, judged by what the fixed model does.

Each bug shows in behaviour, so each check runs it: a stale reference gives the values from before a
conversion once new ones are loaded; a pinned tensor stays behind when the model moves (and the
device refuses it); unsaved state comes back from a checkpoint as it started. `forward` runs before
and after every conversion and load, at sizes drawn for each run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from buflesson.checks import Fail, exercise
from buflesson.handles import Remote, StudentError
from buflesson.i18n import N_, Msg
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER, NONE_BUFFER, PLAIN
from buflesson.probes import (
    Draw,
    as_msg,
    attempt,
    build,
    choose_weights,
    close,
    code,
    convert,
    expect_kind,
    expect_module_class,
    expect_own_tensors,
    expect_plain_forward,
    expect_start,
    fail_on_device,
    forward,
    kind_fail,
    kind_of,
    leaves_global_state,
    load,
    rounded,
    rows,
    same,
    save_and_reload,
    state_dict,
    tensor,
)

LAYER = ("linear.weight", "linear.bias")
TOL32, TOL64 = 1e-4, 1e-6


def _on_device(model: Remote, x: torch.Tensor, device: torch.device, where: Msg, moved=None) -> torch.Tensor:
    """Move `model` (which has run already) to `device`, let `moved(model, where, kinds, device)` look
    at it (`kinds`: each tensor's kind before the move), and run it there under CUDA's device rule; a
    refusal gets the hint for what the model keeps that does not move."""
    plain = ", ".join(row["name"] for row in rows(model).values() if row["kind"] == PLAIN)
    if plain:
        hint = N_(
            "The model keeps {plain} as plain attributes, which .to() leaves where they are: register a "
            "tensor that forward uses as a buffer, and make any tensor forward creates on x.device."
        )
    else:
        hint = N_(
            "A tensor made inside forward lands on the default device (the CPU) unless you say otherwise: "
            "read the model's parameters and buffers through self, and make any other tensor on x.device."
        )
    found = {row["name"]: row["kind"] for row in rows(model).values()}
    convert(model, "to", device)
    if moved is not None:
        moved(model, where, found, device)
    out = attempt(model, x.to(device), device_rule=True)
    if isinstance(out, StudentError):
        raise fail_on_device(out, where, hint, plain=plain)
    if out.device.type != device.type:
        raise Fail(
            "{where}, forward returned a tensor on {found}.",
            hint,
            where=where,
            found=str(out.device),
            plain=plain,
        )
    return out


def _expect_layer(state: dict, shapes: dict[str, tuple[int, ...]], hint: str) -> None:
    found = {name: tuple(state[name].shape) for name in shapes if name in state}
    if found != shapes:
        missing = [name for name in shapes if found.get(name) != shapes[name]]
        raise Fail(
            "The model has no {missing} of shape {shape}.", hint, missing=missing[0], shape=shapes[missing[0]]
        )


def _expect_keys(model: Remote, keys: tuple[str, ...], what: str) -> dict:
    """`state_dict()` holds exactly `keys` (the checkpoints the lesson's models write: `what` is the
    model's class name)."""
    state = state_dict(model)
    extra = [name for name in state if name not in keys]
    if extra:
        raise Fail(
            "state_dict() also holds {extra}: the checkpoints of {what} hold {keys} only, so a strict load "
            "of one fails.",
            "Keep everything else out of state_dict(): a tensor derived from the arguments is a buffer "
            "with persistent=False, a Python value a plain attribute.",
            extra=", ".join(extra),
            what=what,
            keys=", ".join(keys),
        )
    return state


# --- 8.1 ----------------------------------------------------------------------------------------

STATS_KEYS = ("linear.weight", "linear.bias", "mean", "std")


def _normalized(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """linear((x - mean) / std), computed here in float64."""
    weight, bias, mean, std = (stats[name].double() for name in STATS_KEYS)
    return F.linear((x.double() - mean) / std, weight, bias)


# What a typical wrong forward computes instead, and how to say so.
_FORMULA_MISTAKES = (
    (
        lambda x, s: F.linear(x - s["mean"], s["linear.weight"], s["linear.bias"]),
        N_(
            "forward computes linear(x - mean) with the loaded mean: it does not divide by the loaded std "
            "(it divides by nothing, or by a value of std from before the load)."
        ),
    ),
    (
        lambda x, s: F.linear(x / s["std"], s["linear.weight"], s["linear.bias"]),
        N_(
            "forward computes linear(x / std) with the loaded std: it does not subtract the loaded mean (it "
            "subtracts nothing, or a value of mean from before the load)."
        ),
    ),
    (
        lambda x, s: F.linear((x - s["mean"]) * s["std"], s["linear.weight"], s["linear.bias"]),
        N_("forward computes linear((x - mean) * std): it multiplies by std instead of dividing."),
    ),
)


def _stats(draw: Draw) -> dict[str, torch.Tensor]:
    """Trained statistics, far from zeros and ones, and a trained layer."""
    return {
        "linear.weight": draw.randn(2, 3),
        "linear.bias": draw.randn(2),
        "mean": 20.0 + draw.randn(3),
        "std": draw.uniform(3, low=0.5, high=4.0),
    }


def _with(stats: dict, old: dict) -> dict:
    """`stats`' layer with `old`'s mean and std: what a forward that reads old tensors computes."""
    return {**stats, "mean": old["mean"], "std": old["std"]}


def _other_values(what: str | Msg) -> Fail:
    return Fail(
        "After {what}, forward gives other values than linear((x - mean) / std) with the loaded mean "
        "and std.",
        "Compute linear((x - self.mean) / self.std) in forward, reading the buffers by name.",
        what=as_msg(what),
    )


def _not_the_loaded_stats(model: Remote, what: str | Msg) -> Fail:
    plain = [row["name"] for row in rows(model).values() if row["kind"] == PLAIN]
    if plain:
        hint = N_(
            "The model keeps {plain} as plain attributes, which load_state_dict never fills: read self.mean "
            "and self.std in forward."
        )
    else:
        hint = N_("Compute linear((x - self.mean) / self.std) in forward, reading the buffers by name.")
    return Fail(
        "After {what}, forward does not use the mean and std the model now holds: it gives what the old "
        "ones give.",
        hint,
        what=as_msg(what),
        plain=", ".join(plain),
    )


@exercise(
    "8.1",
    "Read the statistics by name, not through a list",
    passed="mean and std are read by name: after every load, before and after .double(), forward uses the "
    "loaded values, and the model runs on the device.",
)
def fresh_statistics(answer: Remote) -> None:
    expect_module_class(answer, "NormalizedLinear")
    draw = Draw()
    before = answer.session.state()
    rows_a, rows_b = draw.sizes(2, 2, 9)
    x = 20.0 + 3.0 * draw.randn(rows_a, 3)
    model = build(answer, seed=draw.seed())
    for name in ("mean", "std"):
        expect_kind(answer, model, name, BUFFER, sample=x)
    expect_own_tensors(answer, ("mean", "std"))
    start = {
        "mean": expect_start(model, "mean", torch.zeros(3), "torch.zeros(3)"),
        "std": expect_start(model, "std", torch.ones(3), "torch.ones(3)"),
    }
    state = _expect_keys(model, STATS_KEYS, "StaleStats")
    _expect_layer(
        state,
        {"linear.weight": (2, 3), "linear.bias": (2,)},
        N_("Keep the given self.linear = nn.Linear(3, 2)."),
    )
    expect_plain_forward(answer, x)

    # Before any load: the statistics of __init__.
    out = forward(model, x)
    if not close(out, _normalized(x, state), TOL32, TOL32):
        raise Fail(
            "forward gives other values than linear((x - mean) / std).",
            "Compute linear((x - self.mean) / self.std) in forward, reading the buffers by name.",
        )
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))

    # A load into the float32 model.
    trained = _stats(draw)
    load(model, trained, N_("load_state_dict(trained statistics)"))
    out = forward(model, x, what=N_("After load_state_dict, forward"))
    if not close(out, _normalized(x, trained), TOL32, TOL32):
        if close(out, _normalized(x, _with(trained, start)), TOL32, TOL32):
            raise _not_the_loaded_stats(model, code("load_state_dict(...)"))
        for formula, message in _FORMULA_MISTAKES:
            if close(out, formula(x.double(), {k: v.double() for k, v in trained.items()}), TOL32, TOL32):
                raise Fail(
                    message,
                    N_(
                        "Compute linear((x - self.mean) / self.std) in forward, reading both buffers there "
                        "at each call: a value computed from them earlier misses every later load."
                    ),
                )
        raise _other_values(code("load_state_dict(...)"))

    # .double(), then forward, then a second load.
    convert(model, "double")
    x64 = x.double()
    out = forward(model, x64, what=N_("After model.double(), forward"))
    if out.dtype != torch.float64 or not close(out, _normalized(x, trained), TOL64, TOL64):
        raise Fail(
            "After model.double(), forward gives {dtype} values other than before.",
            "Compute linear((x - self.mean) / self.std) in forward, reading the buffers by name.",
            dtype=str(out.dtype),
        )
    retrained = _stats(draw)
    load(model, retrained, N_("load_state_dict(other statistics) after model.double()"))
    out = forward(model, x64, what=N_("After model.double() and load_state_dict, forward"))
    if not close(out, _normalized(x, retrained), TOL64, TOL64):
        if close(out, _normalized(x, _with(retrained, trained)), TOL64, TOL64):
            raise Fail(
                "After model.double() and load_state_dict(...), forward still uses the mean and std loaded "
                "before .double(): it reads tensors that .double() replaced.",
                "Read self.mean and self.std in forward each time: .double() replaces each buffer with a "
                "new tensor, so a list, dict or attribute that kept the old one misses every later load.",
            )
        raise _other_values(N_("model.double() and load_state_dict(...)"))

    # A round trip through a file, into a new model that has not run yet.
    fresh = save_and_reload(model, lambda: build(answer, seed=draw.seed()))
    y = 20.0 + 3.0 * draw.randn(rows_b, 3)
    out = forward(fresh, y, what=N_("After a save and a load, forward"))
    if not close(out, _normalized(y, retrained), TOL32, TOL32):
        if close(out, _normalized(y, _with(retrained, start)), TOL32, TOL32):
            raise _not_the_loaded_stats(fresh, N_("a save and a load through a file"))
        raise _other_values(N_("a save and a load through a file"))

    # The device: the model that ran, loaded and converted, moved under CUDA's device rule.
    device = answer.session.device()
    where = Msg("After model.to({device!r})", device=str(device))
    out = _on_device(model, x64, device, where)
    if out.shape != (rows_a, 2) or (
        device.type != "meta" and not close(out, _normalized(x, retrained), 1e-3, 1e-3)
    ):
        raise Fail(
            "{where}, forward gives other values than on the cpu.",
            "Compute linear((x - self.mean) / self.std) in forward, reading the buffers by name.",
            where=where,
        )
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))


# --- 8.2 ----------------------------------------------------------------------------------------

LESSON_SIZE = 4  # CausalLinear's default: never the only size checked


def _causal(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """PinnedMask's forward, computed here in float64."""
    size = weight.shape[0]
    mask = torch.tril(torch.ones(size, size, dtype=torch.float64))
    return F.linear(x.double(), weight.double() * mask, bias.double())


def _expect_mask(model: Remote, size: int) -> None:
    found = kind_of(model, "mask")
    if found == NONE_BUFFER:
        raise kind_fail("mask", NON_PERSISTENT_BUFFER, found)
    mask = tensor(model, "mask", N_("Keep the name mask: the given forward reads self.mask."))
    expected = torch.tril(torch.ones(size, size))
    if same(mask, expected):
        return
    if tuple(mask.shape) != (size, size):
        raise Fail(
            "For CausalLinear({size}), mask has shape {shape}, not ({size}, {size}).",
            "Build the mask from the argument: torch.tril(torch.ones(size, size)).",
            size=size,
            shape=tuple(mask.shape),
        )
    raise Fail(
        "For CausalLinear({size}), mask starts as {actual}, but the exercise gives "
        "torch.tril(torch.ones(size, size)).",
        "Make the mask torch.tril(torch.ones(size, size)): output i may use inputs 0..i only.",
        size=size,
        actual=rounded(mask),
    )


def _mask_moved(model: Remote, where: Msg, kinds: dict, device: torch.device) -> None:
    """After the move, mask is on the device (else the hint for the kind it was before the move)."""
    where_mask = tensor(model, "mask").device
    if where_mask.type != device.type:
        raise kind_fail("mask", NON_PERSISTENT_BUFFER, kinds.get("mask")) or Fail(
            "{where}, mask is still on {found}.",
            "Register it as a buffer that is not saved: self.register_buffer('mask', tensor, "
            "persistent=False).",
            where=where,
            found=str(where_mask),
        )


def _expect_out(out: torch.Tensor, x: torch.Tensor, published: dict, where: Msg, tol: float) -> None:
    if not close(out, _causal(x, published["linear.weight"], published["linear.bias"]), tol, tol):
        raise Fail(
            "{where}, forward computes something else than PinnedMask with the same weights.",
            "Keep the given forward and the mask torch.tril(torch.ones(size, size)).",
            where=where,
        )


@exercise(
    "8.2",
    "Register the mask so that it moves with the model",
    passed="mask moves with the model and stays out of state_dict(), so checkpoints of the published model "
    "still load; forward gives PinnedMask's outputs at every size, before and after .double() and on the "
    "device.",
)
def registered_mask(answer: Remote) -> None:
    expect_module_class(answer, "CausalLinear")
    draw = Draw()
    before = answer.session.state()
    device = answer.session.device()
    for size in draw.sizes_and_a_large_one(2, 2, 8, avoid=(LESSON_SIZE,)):
        model = build(answer, size, seed=draw.seed())
        _expect_mask(model, size)
        expect_own_tensors(answer, ("mask",), args=(size,))
        expect_plain_forward(answer, draw.randn(3, size), args=(size,))
        if "mask" in state_dict(model):
            raise kind_fail("mask", NON_PERSISTENT_BUFFER, kind_of(model, "mask")) or Fail(
                "state_dict() holds mask: the published checkpoints have no 'mask' key, so a strict load of "
                "one fails.",
                "Keep the mask out of state_dict(): register it with persistent=False.",
            )
        state = _expect_keys(model, LAYER, "PinnedMask")
        _expect_layer(
            state,
            {"linear.weight": (size, size), "linear.bias": (size,)},
            N_("Keep the given self.linear = nn.Linear(size, size)."),
        )
        x = draw.randn(draw.integer(2, 9), size)
        _expect_out(forward(model, x), x, state, Msg("For CausalLinear({size})", size=size), TOL32)

        published = {"linear.weight": draw.randn(size, size), "linear.bias": draw.randn(size)}
        load(model, published, N_("load_state_dict(a checkpoint of the published PinnedMask)"))
        where = Msg("For CausalLinear({size}) with a published checkpoint loaded", size=size)
        _expect_out(forward(model, x, what=N_("After load_state_dict, forward")), x, published, where, TOL32)

        convert(model, "double")
        out = forward(model, x.double(), what=N_("After model.double(), forward"))
        if out.dtype != torch.float64:
            raise Fail(
                "After model.double(), forward on a float64 input returned {dtype}.",
                "Keep the given forward: it computes in the layer's dtype, which .double() sets.",
                dtype=str(out.dtype),
            )
        _expect_out(out, x, published, Msg("After model.double()"), TOL64)

        where = Msg("After model.to({device!r})", device=str(device))
        out = _on_device(model, x.double(), device, where, moved=_mask_moved)
        if out.shape != (x.shape[0], size) or device.type != "meta":
            _expect_out(out, x, published, where, 1e-3)
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))


# --- 8.3 ----------------------------------------------------------------------------------------


def _peaky(draw: Draw, rows: int, small: int) -> torch.Tensor:
    """Inputs whose column `small` stays below 1 in magnitude (peak keeps its 1 there) while the other
    columns go well above it."""
    scale = torch.tensor([draw.uniform(1, low=2.0, high=6.0).item() for _ in range(3)])
    scale[small] = 0.9
    return draw.uniform(rows, 3, low=-1.0, high=1.0) * scale


def _peak_out(x: torch.Tensor, state: dict, peak: torch.Tensor) -> torch.Tensor:
    """UnsavedPeak's forward, computed here in float64: linear(x / peak)."""
    return F.linear(
        x.double() / peak.double(), state["linear.weight"].double(), state["linear.bias"].double()
    )


@exercise(
    "8.3",
    "Save the running peak",
    passed="peak starts at ones, rises in training and is saved: a model reloaded from a checkpoint computes "
    "what the trained one does.",
)
def saved_peak(answer: Remote) -> None:
    expect_module_class(answer, "PeakScaled")
    draw = Draw()
    before = answer.session.state()
    small = draw.integer(0, 2)
    rows_a, rows_b, rows_c = draw.sizes(3, 2, 9)
    x, y, z = (_peaky(draw, rows, small) for rows in (rows_a, rows_b, rows_c))
    z[0] = 8.0  # above every peak so far: a forward that raised peak in evaluation mode too would show
    model = build(answer, seed=draw.seed())
    if kind_of(model, "peak") == NON_PERSISTENT_BUFFER:
        raise Fail(
            "'peak' is still a buffer with persistent=False, as UnsavedPeak registers it: it is left out "
            "of state_dict(), so it is not saved.",
            "In PeakScaled.__init__, after super().__init__(), register peak again as a saved buffer: "
            "self.register_buffer('peak', torch.ones(3)) (persistent=True is the default).",
        )
    expect_kind(answer, model, "peak", BUFFER, sample=x)
    expect_own_tensors(answer, ("peak",))
    peak = expect_start(model, "peak", torch.ones(3), "torch.ones(3)")
    expect_plain_forward(answer, x, fresh=False)
    _expect_layer(
        state_dict(model),
        {"linear.weight": (2, 3), "linear.bias": (2,)},
        N_("Keep UnsavedPeak's layer: call super().__init__() first."),
    )
    state = choose_weights(model, LAYER, draw)

    # Training mode: each forward raises peak to the largest magnitude seen, then divides by it.
    with_model = N_("Keep UnsavedPeak's forward: PeakScaled only registers peak again in __init__.")
    model.method("train")
    for batch in (x, y):
        peak = torch.maximum(peak, batch.abs().amax(dim=0))
        out = forward(model, batch, what=N_("forward in training mode"))
        found = tensor(model, "peak")
        if not same(found, peak):
            raise Fail(
                "After forward in training mode, peak is {found}; UnsavedPeak's forward raises it to the "
                "largest magnitude seen per column, {expected}.",
                with_model,
                found=rounded(found),
                expected=rounded(peak),
            )
        if not close(out, _peak_out(batch, state, peak), TOL32, TOL32):
            raise Fail("forward in training mode gives other values than linear(x / peak).", with_model)
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))

    model.method("eval")
    trained = forward(model, z, what=N_("forward in evaluation mode"))
    if not same(tensor(model, "peak"), peak):
        raise Fail(
            "forward in evaluation mode changed peak.",
            "Keep UnsavedPeak's forward: it raises peak in training mode only.",
        )
    if not close(trained, _peak_out(z, state, peak), TOL32, TOL32):
        raise Fail("forward in evaluation mode gives other values than linear(x / peak).", with_model)

    # A round trip through a file, into a new model.
    fresh = save_and_reload(model, lambda: build(answer, seed=draw.seed()))
    fresh.method("eval")
    reloaded = tensor(fresh, "peak")
    if not same(reloaded, peak):
        raise Fail(
            "peak lost its trained value in a save/load round trip through a file: the reloaded model has "
            "{reloaded}, the trained one {trained}.",
            "Register peak as a buffer that is saved: self.register_buffer('peak', torch.ones(3)).",
            reloaded=rounded(reloaded),
            trained=rounded(peak),
        )
    if not close(forward(fresh, z, what=N_("After a save and a load, forward")), trained, TOL32, TOL32):
        raise Fail("The reloaded model computes something else than the trained one.", with_model)

    # Conversions: .double() on the reloaded model, the device for the trained one (in training mode).
    convert(fresh, "double")
    out = forward(fresh, z.double(), what=N_("After model.double(), forward"))
    if out.dtype != torch.float64 or not close(out, _peak_out(z, state, peak), TOL64, TOL64):
        raise Fail(
            "After model.double(), forward gives {dtype} values other than before.",
            with_model,
            dtype=str(out.dtype),
        )
    device = answer.session.device()
    model.method("train")
    where = Msg("After model.to({device!r}), in training mode", device=str(device))
    _on_device(model, x, device, where)
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))
