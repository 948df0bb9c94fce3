"""Lesson 2: `.to(device)` and `.half()` skip plain attributes and tensors made inside forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from buflesson.checks import Fail, exercise
from buflesson.handles import Refused, Remote, StudentError
from buflesson.i18n import N_, Listed, Msg
from buflesson.models import PlainOffset
from buflesson.probes import (
    STEP_HINT,
    Draw,
    attempt,
    choose_weights,
    close,
    convert,
    expect_module_class,
    expect_plain_forward,
    fail_on_device,
    known_error_hint,
    leaves_global_state,
    rows,
    state_dict,
)
from buflesson.wire import dtype_name

LESSON_FEATURES = 3  # the size the lesson shows: never the only one checked
LAYER = ("linear.weight", "linear.bias")
AND = N_(" and ")

DEVICE_HINT = N_(
    "A tensor made inside forward lands on the default device (the CPU) wherever x is, unless you say "
    "otherwise: make the ramp with device=x.device (torch.arange(1, n + 1, device=x.device), or "
    "x.new_tensor(...), or .to(x))."
)
DTYPE_HINT = N_(
    "Give the ramp x's dtype or an integer one: torch.arange(1, n + 1, device=x.device, dtype=x.dtype) "
    "(x.new_tensor(...) and .to(x) do it too). forward must return x's dtype, whatever it is."
)
SIZE_HINT = N_(
    "The ramp has one entry per feature: take n = x.shape[-1] (or self.linear.in_features), not a "
    "fixed number."
)


def _expected(x: torch.Tensor, state: dict, first: int = 1) -> torch.Tensor:
    """linear(x * ramp), ramp = first, first + 1, ... (one entry per feature), computed in float64."""
    n = x.shape[-1]
    ramp = torch.arange(first, first + n, dtype=torch.float64)
    weight, bias = (state[name].double() for name in LAYER)
    return F.linear(x.double() * ramp, weight, bias)


def _build(answer: Remote, features: int, seed: int) -> Remote:
    try:
        model = answer.call(features, seed=seed, keep=True)
    except StudentError as error:
        if error.not_implemented:
            raise
        signature = error.type_name == "TypeError" and "argument" in error.message
        raise Fail(
            "Creating Ramp({features}) raised {error}",
            "Keep the given `def __init__(self, features=3)` and `self.linear = nn.Linear(features, 2)`."
            if signature
            else "Run that step yourself in a new cell to see the whole error and where it comes from.",
            features=features,
            error=str(error),
        ) from None
    if model.kind != "module":
        raise Fail(
            "Ramp({features}) gave {type}, not an nn.Module.", features=features, type=model.info.get("type")
        )
    return model


def _layer(model: Remote, features: int) -> dict:
    state = state_dict(model)
    names = list(rows(model))
    shapes = {name: tuple(state[name].shape) for name in LAYER if name in state}
    if shapes != {"linear.weight": (2, features), "linear.bias": (2,)}:
        raise Fail(
            "Ramp({features}) has no nn.Linear({features}, 2) named linear.",
            "Keep the given `self.linear = nn.Linear(features, 2)`.",
            features=features,
        )
    extra = [name for name in names if name not in LAYER]
    if extra:
        raise Fail(
            "Ramp({features}) holds tensors besides linear's: {extra}.",
            "Leave __init__ as given: the exercise makes the ramp inside forward, on x.device, each time.",
            features=features,
            extra=", ".join(extra),
        )
    return state


def _run(model: Remote, x: torch.Tensor, where: Msg, hint: str) -> torch.Tensor:
    out = attempt(model, x)
    if isinstance(out, StudentError):
        raise Fail("{where}, forward raised {error}", hint, where=where, error=str(out))
    return out


def _values(out: torch.Tensor, x: torch.Tensor, state: dict, where: Msg, hint: str, tol: float) -> None:
    if out.shape == (x.shape[0], 2) and close(out, _expected(x, state), atol=tol, rtol=tol):
        return
    if out.shape == (x.shape[0], 2) and close(out, _expected(x, state, first=0), atol=tol, rtol=tol):
        raise Fail(
            "{where}, forward gives linear(x * ramp) with ramp = 0, 1, ..., {last}.",
            "torch.arange(n) starts at 0: the ramp 1, 2, ..., n is torch.arange(1, n + 1).",
            where=where,
            last=x.shape[-1] - 1,
        )
    raise Fail(
        "{where}, forward gives other values than self.linear(x * ramp) with ramp = 1, 2, ..., {n}.",
        hint,
        where=where,
        n=x.shape[-1],
    )


def _expect_dtype(out: torch.Tensor, x: torch.Tensor, where: Msg) -> None:
    if out.dtype != x.dtype:
        raise Fail(
            "{where}, forward on a {given} input returned {got}.",
            DTYPE_HINT,
            where=where,
            given=str(x.dtype),
            got=str(out.dtype),
        )


@exercise(
    "2.1",
    "Create the ramp on the input's device",
    passed="The ramp is made where the input lives, with one entry per feature: forward works on the CPU, "
    "on the device, in float64 and in float16.",
)
def ramp_on_input_device(answer: Remote) -> None:
    expect_module_class(answer, "Ramp")
    draw = Draw()
    before = answer.session.state()
    wide, narrow = draw.sizes(2, 2, 8, avoid=(LESSON_FEATURES,))
    rows_a, rows_b, rows_c = draw.sizes(3, 2, 9, avoid=(4,))

    # The lesson's size on the CPU: the formula, and nothing kept on the model.
    model = _build(answer, LESSON_FEATURES, draw.seed())
    _layer(model, LESSON_FEATURES)
    state = choose_weights(model, LAYER, draw)
    x = draw.randn(rows_a, LESSON_FEATURES)
    where = Msg("For Ramp(3) on the cpu and a float32 input of shape {shape}", shape=tuple(x.shape))
    out = attempt(model, x)
    if isinstance(out, StudentError):
        hint = (
            DTYPE_HINT
            if "dtype" in out.message
            else N_("Run Ramp() on sample_input() yourself to see the error.")
            if known_error_hint(out.message) == STEP_HINT
            else known_error_hint(out.message)
        )
        raise Fail("{where}, forward raised {error}", hint, where=where, error=str(out))
    _expect_dtype(out, x, where)
    _values(
        out,
        x,
        state,
        where,
        N_("Multiply x by ramp = 1, 2, ..., n (n = x.shape[-1]), then apply self.linear."),
        1e-4,
    )
    stored = [name for name in rows(model) if name not in LAYER]
    if stored:
        raise Fail(
            "After forward, the model holds tensors it did not hold before: {stored}. forward stores the "
            "ramp on the model.",
            "Keep the ramp a local variable of forward, made on x.device at each call: store nothing on "
            "self.",
            stored=", ".join(stored),
        )
    leaves_global_state(before, answer.session.state(), N_("Building and running Ramp"))
    expect_plain_forward(answer, x, args=(LESSON_FEATURES,))

    # Other numbers of features: a ramp of a fixed length fails here.
    sized = {}
    for features, rows_n in ((wide, rows_b), (narrow, rows_c)):
        sized[features] = _build(answer, features, draw.seed())
        _layer(sized[features], features)
        state_n = choose_weights(sized[features], LAYER, draw)
        xn = draw.randn(rows_n, features)
        where = Msg("For Ramp({features}) on an input with {features} features", features=features)
        _values(_run(sized[features], xn, where, SIZE_HINT), xn, state_n, where, SIZE_HINT, 1e-4)

    # The device: a model that already ran on the CPU, moved, then run under CUDA's device rule.
    device = answer.session.device()
    model = sized[wide]
    state = choose_weights(model, LAYER, draw)
    convert(model, "to", device)
    x = draw.randn(rows_a, wide)
    where = Msg("After model.to({device!r})", device=str(device))
    out = attempt(model, x.to(device), device_rule=True)
    if isinstance(out, StudentError):
        raise fail_on_device(out, where, DEVICE_HINT)
    if out.device.type != device.type:
        raise Fail(
            "{where}, forward returned a tensor on {found}.", DEVICE_HINT, where=where, found=str(out.device)
        )
    _expect_dtype(out, x, where)
    if out.shape != (x.shape[0], 2) or (
        device.type != "meta" and not close(out, _expected(x, state), 1e-3, 1e-3)
    ):
        raise Fail("{where}, forward gives other values than on the cpu.", DEVICE_HINT, where=where)

    # Other dtypes: forward must follow x's dtype, for float64 and for float16 alike.
    model = sized[narrow]
    for method, dtype, tol in (("double", torch.float64, 1e-6), ("half", torch.float16, 5e-2)):
        convert(model, method)
        state = choose_weights(model, LAYER, draw)
        xd = draw.randn(rows_b, narrow).to(dtype)
        where = Msg("After model.{method}()", method=method)
        out = _run(model, xd, Msg("{where}, on a {dtype} input", where=where, dtype=str(dtype)), DTYPE_HINT)
        _expect_dtype(out, xd, where)
        _values(out, xd, state, where, DTYPE_HINT, tol)
    leaves_global_state(before, answer.session.state(), N_("Building and running Ramp"))


# --- 2.2 ---------------------------------------------------------------------------------------

_ALIASES = {"half": "float16", "float": "float32", "double": "float64", "bfloat": "bfloat16"}


def _dtype_name(value: object) -> str | None:
    """ "float16" for torch.float16, "torch.float16", "float16", "half" or "torch.half"; None otherwise."""
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, str):
        name = value.strip().lower().removeprefix("torch.")
        name = _ALIASES.get(name, name)
        return name if isinstance(getattr(torch, name, None), torch.dtype) else None
    return None


def _truth() -> tuple[dict[str, str], list[str]]:
    """What `.half()` gives each tensor of the lesson's `plain_offset_model()`, computed here, and
    the names of its plain tensor attributes."""
    with torch.random.fork_rng(devices=[]):
        model = PlainOffset().half()
    tracked = dict(model.named_parameters()) | dict(model.named_buffers())
    plain = {name: value for name, value in vars(model).items() if isinstance(value, torch.Tensor)}
    return {name: dtype_name(value.dtype) for name, value in (tracked | plain).items()}, list(plain)


@exercise(
    "2.2",
    "Predict what `.half()` converts",
    passed="Right: .half() converts the parameters and skips the plain attribute.",
)
def predict_half(answer: Remote) -> None:
    example = Msg("{code}, one entry per tensor of the model", code='{"linear.weight": torch.float16, ...}')
    try:
        guess = answer.value() if answer.kind == "data" else None
    except Refused:
        if answer.info.get("type") == "dict":
            raise Fail(
                "Your dict holds values that are not dtypes (objects such as a model or a layer).",
                "Write each value as a dtype, such as torch.float16 or torch.float32.",
            ) from None
        guess = None
    if not isinstance(guess, dict):
        raise Fail(
            "Expected a dict from tensor name to dtype, got {type}.",
            "Write it like {example}.",
            type=answer.info.get("type"),
            example=example,
        )
    truth, plain_names = _truth()
    names = ", ".join(truth)
    missing = [name for name in truth if name not in guess]
    if missing:
        raise Fail(
            "No prediction for: {missing}.",
            "Give one entry per tensor of plain_offset_model(): {names}.",
            missing=", ".join(missing),
            names=names,
        )
    extra = sorted(str(name) for name in guess if name not in truth)
    if extra:
        raise Fail(
            "The model has no tensor named: {extra}.",
            "The names are {names}.",
            extra=", ".join(extra),
            names=names,
        )
    for name in truth:
        if _dtype_name(guess[name]) is None:
            raise Fail(
                "{name}: {value} is not a dtype.",
                "Write a dtype such as torch.float16 or torch.float32 (a tensor's dtype, not the tensor).",
                name=name,
                value=repr(guess[name])[:60],
            )
    wrong = [name for name in truth if _dtype_name(guess[name]) != truth[name]]
    if not wrong:
        return
    plain = [name for name in wrong if name in plain_names]  # offset
    params = [name for name in wrong if name not in plain_names]  # linear.weight, linear.bias
    reasons, hints = [], []
    if params:
        reasons.append(
            Msg(
                "{names} becomes {dtypes}: .half() converts every floating-point parameter"
                if len(params) == 1
                else "{names} become {dtypes}: .half() converts every floating-point parameter",
                names=Listed(params, AND),
                dtypes=Listed(sorted({truth[name] for name in params}), AND),
            )
        )
        hints.append(
            Msg(
                "Floating-point parameters follow every conversion of the module: .half(), .double(), "
                ".to(...) (an integer tensor keeps its dtype)."
            )
        )
    for name in plain:
        reasons.append(
            Msg(
                "{name} stays {dtype}: it is a plain attribute, which .half() does not see",
                name=name,
                dtype=truth[name],
            )
        )
    if plain:
        hints.append(Msg(".half(), .double(), .to(...) and .cuda() convert parameters and buffers only."))
    raise Fail("{reasons}.", "{hints}", reasons=Listed(reasons, N_("; ")), hints=Listed(hints, N_(" ")))
