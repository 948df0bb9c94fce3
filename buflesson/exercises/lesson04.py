"""Lesson 4: a buffer gets a gradient only when it requires grad; the optimizer never steps it.

The probe models below are built on the student's side (through `session.lib`) with sizes and seeds
the check draws, and rebuilt here from the state that comes back, so every expected value is computed
with the check's own torch.
"""

from __future__ import annotations

import torch
from torch import nn

from buflesson.checks import Fail, exercise
from buflesson.handles import Refused, Remote, StudentError
from buflesson.i18n import N_, Msg
from buflesson.probes import (
    Draw,
    a_kind,
    as_msg,
    close,
    code,
    expect_function,
    leaves_global_state,
    rounded,
    rows,
    same,
    state_dict,
    student,
)

HERE = "buflesson.exercises.lesson04"

# --- 4.1: the gradient with respect to a buffer ---------------------------------------------------


class OffsetProbe(nn.Module):
    """`linear(x) + offset`, the offset a buffer: its gradient equals the bias's."""

    buffer_name = "offset"

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.register_buffer("offset", torch.randn(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.offset


class ScaleProbe(nn.Module):
    """`tanh(linear(x)) * scale + shift`: `scale` a buffer, `shift` a frozen parameter. The buffer's
    gradient differs from every parameter's."""

    buffer_name = "scale"

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.register_buffer("scale", torch.randn(n_out))
        self.shift = nn.Parameter(torch.randn(n_out), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x)) * self.scale + self.shift


class _Probe:
    """One model on the student's side and its twin here, built from the same sizes and state."""

    def __init__(self, session, cls: type[nn.Module], sizes: tuple[int, int], seed: int) -> None:
        self.cls, self.sizes, self.name = cls, sizes, cls.buffer_name
        with student(Msg("Creating a {name}", name=cls.__name__)):
            self.remote = session.lib(f"{HERE}:{cls.__name__}").call(*sizes, seed=seed, keep=True)
        with torch.random.fork_rng(devices=[]):
            self.twin = cls(*sizes)
        self.twin.load_state_dict(state_dict(self.remote))
        self.params = [name for name, _ in self.twin.named_parameters()]

    def backward_on_student_side(self, x: torch.Tensor) -> None:
        """Fill the .grad of what requires grad there, as a training step in progress would."""
        with student("Preparing the model: a backward pass"):
            out = self.remote.call(x, keep=True, grad=True)
            out.call(method="sum", keep=True).method("backward")

    def grads(self) -> dict[str, torch.Tensor | None]:
        """Every parameter's .grad and the buffer's, read on the student's side."""
        with student("Reading the gradients"):
            return {name: self.remote.attr_or_none(f"{name}.grad") for name in [*self.params, self.name]}

    def flags(self) -> dict[str, bool]:
        with student("Reading requires_grad"):
            return {name: self.remote.attr(f"{name}.requires_grad") for name in [*self.params, self.name]}

    def values(self) -> dict[str, torch.Tensor]:
        return dict(state_dict(self.remote))

    def gradients(self, x: torch.Tensor, loss=lambda out: out.pow(2).mean()) -> dict[str, torch.Tensor]:
        """The gradient of `loss(model(x))` for the buffer and every parameter, on the twin."""
        state = self.twin.state_dict()
        leaves = {name: value.detach().clone().requires_grad_() for name, value in state.items()}
        out = torch.func.functional_call(self.twin, leaves, (x,))
        names = [*self.params, self.name]
        grads = torch.autograd.grad(loss(out), [leaves[name] for name in names])
        return dict(zip(names, grads, strict=True))


def _describe(grad: torch.Tensor | None) -> str:
    return "None" if grad is None else str(rounded(grad))


def _same_grad(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and close(a, b, atol=1e-6))


def _check_gradient(answer: Remote, probe: _Probe, x: torch.Tensor, situation: str | Msg) -> None:
    """Call buffer_gradient(model, name, x) on `probe` and compare everything with what it was;
    `situation` (marked with `N_`) says what state the model was in."""
    session, name, situation = answer.session, probe.name, as_msg(situation)
    kinds = {row: info["kind"] for row, info in rows(probe.remote).items()}
    values, grads, flags = probe.values(), probe.grads(), probe.flags()
    training = probe.remote.attr("training")
    expected = probe.gradients(x)
    before = session.state()
    with student(code(f"buffer_gradient(model, {name!r}, x)")):
        got = answer.call(probe.remote, name, x)
    after_kinds = {row: info["kind"] for row, info in rows(probe.remote).items()}
    if after_kinds.get(name) != kinds[name]:
        raise Fail(
            "After buffer_gradient, {name!r} is no longer a buffer but {found}.",
            "Assigning an nn.Parameter to a buffer's name turns it into a parameter. Switch on "
            "gradients in place instead: getattr(model, {name!r}).requires_grad_(True).",
            name=name,
            found=a_kind(after_kinds.get(name)),
        )
    if after_kinds != kinds:
        raise Fail(
            "buffer_gradient changed what the model holds: {before} became {after}.",
            "Leave the model's tensors as they are: only compute the gradient.",
            before=sorted(kinds.items()),
            after=sorted(after_kinds.items()),
        )
    new_grads, new_flags = probe.grads(), probe.flags()
    _check_returned(got, probe, x, expected, grads, new_grads, situation)
    _check_left_as_found(probe, values, grads, flags, new_grads, new_flags, situation)
    if probe.remote.attr("training") != training:
        raise Fail(
            "buffer_gradient left the model in training mode."
            if not training
            else "buffer_gradient left the model in eval mode.",
            "Leave the model as you found it: the caller chose train() or eval().",
        )
    leaves_global_state(before, session.state(), code("buffer_gradient"))


def _check_returned(
    got: object,
    probe: _Probe,
    x: torch.Tensor,
    expected: dict[str, torch.Tensor],
    grads: dict,
    new_grads: dict,
    situation: Msg,
) -> None:
    name = probe.name
    backward_ran = any(grads[p] is None and new_grads[p] is not None for p in probe.params)
    if got is None:
        if new_grads[name] is not None and not same(new_grads[name], grads[name]):
            raise Fail(
                "buffer_gradient returned None, though model.{name}.grad holds a gradient.",
                "Return the gradient at the end of the function.",
                name=name,
            )
        if backward_ran:
            raise Fail(
                "buffer_gradient returned None: backward() left the buffer's .grad empty.",
                "A buffer registered from a plain tensor does not require grad, so backward() skips it. "
                "Switch it on before the forward pass: getattr(model, {name!r}).requires_grad_(True).",
                name=name,
            )
        raise Fail("buffer_gradient returned None.", "Return the gradient at the end of the function.")
    if isinstance(got, tuple) and len(got) == 1 and isinstance(got[0], torch.Tensor):
        raise Fail(
            "buffer_gradient returned a tuple holding one tensor, not the tensor.",
            "torch.autograd.grad returns a tuple, one gradient per input: unpack it, (grad,) = ...",
        )
    if not isinstance(got, torch.Tensor):
        kind = got.info.get("type") if isinstance(got, Remote) else type(got).__name__
        raise Fail("buffer_gradient returned {kind}, not a tensor.", "Return the gradient.", kind=kind)
    if got.device.type == "meta":
        raise Fail(
            "buffer_gradient returned a tensor on the meta device, which holds no values.",
            "Return the gradient.",
        )
    want = expected[name]
    if got.shape == want.shape and close(got, want, atol=1e-6):
        if got.dtype != want.dtype:
            raise Fail(
                "buffer_gradient returned the right values as {got}, but the buffer and its gradient are "
                "{want}.",
                "Return the gradient as autograd gives it, without converting it.",
                got=str(got.dtype),
                want=str(want.dtype),
            )
        return
    old = grads[name]
    if old is not None and got.shape == want.shape and close(got, want + old, atol=1e-6):
        raise Fail(
            "{situation}, buffer_gradient returned the buffer's .grad after backward(): this call's "
            "gradient plus the {old} the buffer already held.",
            "backward() adds to .grad. Compute the gradient with torch.autograd.grad, which writes no "
            ".grad, or put the old .grad aside (set it to None) before backward() and back after.",
            situation=situation,
            old=rounded(old),
        )
    for param in probe.params:
        if got.shape == expected[param].shape and close(got, expected[param], atol=1e-6):
            raise Fail(
                "buffer_gradient returned the gradient of {param}, a parameter.",
                "Read the buffer's gradient: getattr(model, name).grad, here model.{name}.grad.",
                param=param,
                name=name,
            )
    for loss_text, loss in (
        ("model(x).sum()", lambda out: out.sum()),
        ("model(x).pow(2).sum()", lambda out: out.pow(2).sum()),
        ("model(x).mean()", lambda out: out.mean()),
    ):
        other = probe.gradients(x, loss)[name]
        if got.shape == other.shape and close(got, other, atol=1e-6):
            raise Fail(
                "buffer_gradient returned the gradient of {loss_text}, not of model(x).pow(2).mean().",
                "Use the loss the exercise gives: model(x).pow(2).mean().",
                loss_text=loss_text,
            )
    raise Fail(
        "The gradient for {name!r} is {got}, expected {want} (for a batch of {rows} rows).",
        "Differentiate model(x).pow(2).mean(), for the x you are given, with respect to the buffer.",
        name=name,
        got=rounded(got),
        want=rounded(want),
        rows=x.shape[0],
    )


def _check_left_as_found(
    probe: _Probe,
    values: dict,
    grads: dict,
    flags: dict,
    new_grads: dict,
    new_flags: dict,
    situation: Msg,
) -> None:
    name, new_values = probe.name, probe.values()
    moved = [param for param in probe.params if not same(new_values[param], values[param])]
    if moved:
        raise Fail(
            "buffer_gradient changed the model's parameters ({names}).",
            "Only compute the gradient: no optimizer step.",
            names=", ".join(moved),
        )
    if not same(new_values[name], values[name]):
        raise Fail(
            "buffer_gradient changed the values of model.{name}.",
            "Only compute the gradient: leave the buffer's values as they are.",
            name=name,
        )
    switched = [param for param in probe.params if new_flags[param] != flags[param]]
    if switched:
        raise Fail(
            "buffer_gradient changed requires_grad of {names}.",
            "Leave the parameters' requires_grad as you found them: a frozen parameter stays frozen.",
            names=", ".join(switched),
        )
    filled = [p for p in probe.params if grads[p] is None and new_grads[p] is not None]
    if filled:
        raise Fail(
            "{situation}, buffer_gradient left gradients in the .grad of {names}, which had none.",
            "backward() writes into the .grad of every parameter that requires grad and took part in the "
            "loss. Use torch.autograd.grad(loss, buffer), "
            "which writes no .grad, or backward(inputs=[buffer]), which fills only the buffer's.",
            situation=situation,
            names=", ".join(filled),
        )
    cleared = [p for p in probe.params if grads[p] is not None and new_grads[p] is None]
    if cleared:
        raise Fail(
            "{situation}, buffer_gradient cleared the gradients that {names} already held.",
            "The caller may be in the middle of a training step: zero_grad() throws its gradients "
            "away. Use torch.autograd.grad(loss, buffer), which touches no parameter's .grad.",
            situation=situation,
            names=", ".join(cleared),
        )
    changed = [p for p in probe.params if not _same_grad(grads[p], new_grads[p])]
    if changed:
        raise Fail(
            "{situation}, buffer_gradient added to the gradients that {names} already held.",
            "backward() adds to the .grad of every parameter that requires grad and took part in the loss. "
            "Use torch.autograd.grad(loss, buffer), which "
            "touches no parameter's .grad.",
            situation=situation,
            names=", ".join(changed),
        )
    if new_flags[name] != flags[name]:
        if flags[name]:
            raise Fail(
                "{situation}, model.{name} required grad before the call; buffer_gradient switched it off.",
                "Leave it as you found it: remember buffer.requires_grad before you switch it on, and "
                "put that value back afterwards.",
                situation=situation,
                name=name,
            )
        raise Fail(
            "After buffer_gradient, model.{name} still requires grad.",
            "Leave the model as you found it: switch the buffer back off with requires_grad_(False) "
            "(or put back whatever it was), or every later backward() fills its .grad for nothing.",
            name=name,
        )
    if not _same_grad(grads[name], new_grads[name]):
        if grads[name] is None:
            raise Fail(
                "After buffer_gradient, model.{name}.grad still holds the gradient.",
                "Clear it (model.{name}.grad = None), or compute it with torch.autograd.grad, which "
                "fills no .grad at all.",
                name=name,
            )
        raise Fail(
            "{situation}, model.{name}.grad held {old} before the call and {new} after it.",
            "Leave the buffer's .grad as you found it: torch.autograd.grad writes no .grad, or put the "
            "old one back after backward().",
            situation=situation,
            name=name,
            old=_describe(grads[name]),
            new=_describe(new_grads[name]),
        )


@exercise(
    "4.1",
    "The gradient of the loss with respect to a buffer",
    passed="Right: you computed the buffer's gradient and left the model as you found it: the buffer's "
    "requires_grad and .grad, every parameter's value, requires_grad and .grad.",
)
def buffer_gradient(answer: Remote) -> None:
    expect_function(answer, "buffer_gradient", "4.1")
    session = answer.session
    if not session.state()["grad_enabled"]:
        raise Fail(
            "Gradient tracking is switched off in this session (torch.is_grad_enabled() is False), so no "
            "gradient can be computed.",
            "Switch it back on with torch.set_grad_enabled(True), then run the check again.",
        )
    draw = Draw()
    n_in, n_out = draw.sizes(2, 2, 6, avoid=(3,))
    rows_a, rows_b = draw.sizes(2, 2, 9, avoid=(4,))

    def batch(rows: int) -> torch.Tensor:
        return draw.randn(rows, n_in)

    scaled = _Probe(session, ScaleProbe, (n_out, n_in), draw.seed())
    _check_gradient(answer, scaled, draw.randn(rows_b, n_out), N_("With no gradients anywhere"))
    first = _Probe(session, OffsetProbe, (n_in, n_out), draw.seed())
    _check_gradient(answer, first, batch(rows_a), N_("With no gradients anywhere"))

    busy = _Probe(session, ScaleProbe, (n_out, n_in), draw.seed())
    busy.backward_on_student_side(draw.randn(rows_a, n_out))
    _check_gradient(answer, busy, draw.randn(rows_b, n_out), N_("When the parameters already held gradients"))

    training = _Probe(session, OffsetProbe, (n_in, n_out), draw.seed())
    with student("Preparing the model: switching the buffer on"):
        training.remote.attr("offset", keep=True).method("requires_grad_", True)
    training.backward_on_student_side(batch(rows_b))
    _check_gradient(
        answer,
        training,
        batch(rows_a),
        N_("When the buffer already required grad and held a gradient (as in the lesson's training loop)"),
    )


# --- 4.2: count what can be trained --------------------------------------------------------------


class CountProbe(nn.Module):
    """Trainable and frozen parameters, top-level and in submodules, one layer under two names, and
    buffers of every kind (one requires grad). Sizes come from the check."""

    def __init__(
        self, n_in: int, n_hidden: int, n_out: int, gain: int, frozen: int, table: int, probe: int, mask: int
    ) -> None:
        super().__init__()
        self.body = nn.Linear(n_in, n_hidden)
        self.tied = self.body  # the same layer again: parameters() lists it once, state_dict() twice
        self.head = nn.Linear(n_hidden, n_out, bias=False).requires_grad_(False)
        self.head.weight.grad = torch.ones(n_out, n_hidden)  # left from a backward() before it was frozen
        self.gain = nn.Parameter(torch.ones(gain))
        self.frozen = nn.Parameter(torch.zeros(frozen), requires_grad=False)
        self.register_buffer("table", torch.zeros(table))
        self.register_buffer("probe", torch.zeros(probe, requires_grad=True))
        self.register_buffer("mask", torch.ones(mask), persistent=False)


def _numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


def _counts(model: nn.Module) -> dict[str, int]:
    """What each way of counting gives for `model`, the right one first."""
    params = list(model.parameters())
    buffers = list(model.buffers())
    return {
        "right": _numel(p for p in params if p.requires_grad),
        "all parameters": _numel(params),
        "frozen only": _numel(p for p in params if not p.requires_grad),
        "state_dict": _numel(model.state_dict().values()),
        "state_dict requiring grad": _numel(
            t for t in model.state_dict(keep_vars=True).values() if t.requires_grad
        ),
        "buffer requiring grad": _numel(t for t in params + buffers if t.requires_grad),
        "holding a grad": _numel(p for p in params if p.requires_grad or p.grad is not None),
        "has a gradient": _numel(p for p in params if p.grad is not None),
        "parameters and buffers": _numel(params + buffers),
        "tensors": sum(1 for p in params if p.requires_grad),
        "all tensors": len(params),
        "top level": _numel(p for p in model.parameters(recurse=False) if p.requires_grad),
        "duplicates": _numel(p for _, p in model.named_parameters(remove_duplicate=False) if p.requires_grad),
    }


MISTAKES = {
    "has a gradient": (
        N_("counted the parameters that hold a .grad"),
        N_(
            "A .grad holds what an earlier backward() left (or None before any): it says nothing about the "
            "next step. Count the parameters with p.requires_grad, the ones the next backward() fills."
        ),
    ),
    "holding a grad": (
        N_("counted the frozen parameter that still holds a .grad from an earlier backward()"),
        N_(
            "In the usual loop zero_grad() sets every .grad to None before backward(), and backward() gives "
            "a parameter with requires_grad=False none: a .grad left from before does not make it "
            "trainable. Count the parameters with p.requires_grad."
        ),
    ),
    "all parameters": (
        N_("counted the frozen parameters too"),
        N_(
            "parameters() also lists parameters with requires_grad=False. backward() gives them no "
            "gradient, so the step skips them: keep only those with p.requires_grad."
        ),
    ),
    "frozen only": (
        N_("counted only the frozen parameters"),
        N_("Keep the parameters with p.requires_grad True: those are the ones backward() gives a gradient."),
    ),
    "state_dict": (
        N_("counted everything in state_dict()"),
        N_(
            "state_dict() holds buffers, frozen parameters, and a layer kept under two names twice. Count "
            "model.parameters() that require grad."
        ),
    ),
    "state_dict requiring grad": (
        N_("counted the tensors of state_dict() that require grad"),
        N_(
            "state_dict() lists a layer kept under two names twice, and holds buffers: the buffer that "
            "requires grad is not in parameters(), so no optimizer built from them holds it. Count "
            "model.parameters() that require grad."
        ),
    ),
    "buffer requiring grad": (
        N_("counted the buffer that requires grad"),
        N_(
            "A buffer that requires grad gets a .grad in backward(), but it is not in parameters(), so the "
            "optimizer never steps it. Count model.parameters() only."
        ),
    ),
    "parameters and buffers": (
        N_("counted parameters and buffers"),
        N_("Buffers are never handed to the optimizer. Count model.parameters() that require grad."),
    ),
    "tensors": (
        N_("counted tensors, not numbers"),
        N_("Each parameter holds p.numel() numbers: add those up."),
    ),
    "all tensors": (
        N_("counted the parameter tensors, not their numbers"),
        N_("Add up p.numel() for the parameters that require grad."),
    ),
    "top level": (
        N_("counted only the model's own parameters, not those of its submodules"),
        N_("model.parameters() walks every submodule; parameters(recurse=False) does not."),
    ),
    "duplicates": (
        N_("counted a layer kept under two names twice"),
        N_(
            "model.parameters() lists each parameter once, as an optimizer holds it; "
            "named_parameters(remove_duplicate=False) does not."
        ),
    ),
}


def _sizes(draw: Draw) -> tuple[int, ...]:
    """Sizes for a CountProbe where every way of counting gives its own number."""
    for _ in range(1000):
        sizes = (
            draw.integer(2, 5),
            draw.integer(2, 5),
            draw.integer(1, 4),
            *(draw.integer(1, 9) for _ in range(5)),
        )
        with torch.random.fork_rng(devices=[]):
            counts = _counts(CountProbe(*sizes))
        values = list(counts.values())
        if len(set(values)) == len(values) and 0 not in values and 12 not in values:
            return sizes
    raise RuntimeError("no sizes found where every count differs")  # pragma: no cover


def _count(answer: Remote, model: Remote, what: str | Msg) -> int:
    with student(what):
        got = answer.call(model)
    if isinstance(got, Remote):  # a numpy integer, or another object that says it is an integer
        try:
            got = got.method("__index__")
        except (StudentError, Refused):
            pass
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.dtype.is_floating_point:
        got = int(got.item())
    if isinstance(got, float) and got.is_integer():  # a count summed as floats is still the count
        got = int(got)
    if isinstance(got, bool) or not isinstance(got, int):
        raise Fail(
            "trainable_count(model) returned {got}, not a whole number.",
            "Return the total as an int: sum(p.numel() for p in ...).",
            got=got.info.get("type") if isinstance(got, Remote) else repr(got)[:60],
        )
    return got


def _flags(model: Remote, names: list[str]) -> dict[str, bool]:
    with student("Reading requires_grad"):
        return {name: model.attr(f"{name}.requires_grad") for name in names}


@exercise(
    "4.2",
    "Count what an optimizer step can change",
    passed="Right: you counted the numbers in parameters that require grad, the only parameters the next "
    "backward() can give a gradient (a buffer that requires grad gets one too, but a buffer is never in "
    "parameters()). A built-in optimizer's step changes only parameters whose .grad is set, so in the "
    "usual loop (zero_grad(), which sets .grad to None, then backward() and step()) "
    "these are the numbers the step can change.",
)
def trainable_count(answer: Remote) -> None:
    expect_function(answer, "trainable_count", "4.2")
    session = answer.session
    draw = Draw()
    before = session.state()
    sizes = _sizes(draw)
    with student("Creating the check's model"):
        model = session.lib(f"{HERE}:CountProbe").call(*sizes, seed=draw.seed(), keep=True)
    with torch.random.fork_rng(devices=[]):
        twin = CountProbe(*sizes)
    names = [name for name, _ in twin.named_parameters()]
    counts = _counts(twin)
    flags = _flags(model, names)
    got = _count(answer, model, code("trainable_count(model)"))
    if _flags(model, names) != flags:
        raise Fail(
            "trainable_count changed requires_grad of the model's parameters.",
            "Only count: read p.requires_grad, never set it.",
        )
    with student("Reading head.weight.grad"):
        grad_kept = isinstance(model.attr("head.weight.grad"), torch.Tensor)
    if not grad_kept:
        raise Fail(
            "trainable_count changed the gradients the model held: head.weight.grad is None after it ran.",
            "Only count: never call zero_grad() or set .grad (the caller may be in the middle of a "
            "training step).",
        )
    expected = counts["right"]
    if got != expected:
        for mistake, count in counts.items():
            if mistake in MISTAKES and got == count:
                what, hint = MISTAKES[mistake]
                raise Fail(
                    "trainable_count gave {got}, expected {expected}: it {what}.",
                    hint,
                    got=got,
                    expected=expected,
                    what=Msg(what),
                )
        if got == 0:
            raise Fail(
                "trainable_count gave 0 for a model with {expected} numbers in parameters that require grad.",
                "Count p.numel() for each p in model.parameters() with p.requires_grad. (Before any "
                "backward(), no parameter has a .grad yet.)",
                expected=expected,
            )
        raise Fail(
            "trainable_count gave {got} for a model with {expected} numbers in parameters that require grad.",
            "Add up p.numel() for the parameters in model.parameters() that require grad.",
            got=got,
            expected=expected,
        )

    with student("The unfreeze loop: model.requires_grad_(True)"):
        model.method("requires_grad_", True)
    after = _count(answer, model, N_("trainable_count(model), after the unfreeze loop"))
    if after != counts["all parameters"]:
        raise Fail(
            "After the unfreeze loop, trainable_count gave {after}, expected {expected}.",
            "Count at call time: read p.requires_grad each time, do not remember an earlier answer.",
            after=after,
            expected=counts["all parameters"],
        )

    n_in, n_hidden, n_out = draw.integer(2, 7), draw.integer(2, 7), draw.integer(1, 4)
    with student("Creating nn.Sequential(nn.Linear, nn.ReLU, nn.Linear)"):
        layers = [
            session.lib("torch.nn:Linear").call(n_in, n_hidden, seed=draw.seed(), keep=True),
            session.lib("torch.nn:ReLU").call(keep=True),
            session.lib("torch.nn:Linear").call(n_hidden, n_out, seed=draw.seed(), keep=True),
        ]
        layers[0].method("requires_grad_", False)
        other = session.lib("torch.nn:Sequential").call(*layers, keep=True)
    for expected, label in (
        (n_hidden * n_out + n_out, N_("its first layer frozen")),
        (0, N_("every layer frozen")),
    ):
        if expected == 0:
            with student("Freezing the whole model"):
                other.method("requires_grad_", False)
        got = _count(answer, other, code("trainable_count(model)"))
        if got != expected:
            raise Fail(
                "For nn.Sequential(nn.Linear({n_in}, {n_hidden}), nn.ReLU(), nn.Linear({n_hidden}, {n_out})) "
                "with {label}, trainable_count gave {got}, expected {expected}.",
                "Work from the model you are given, whatever its layers: walk model.parameters().",
                n_in=n_in,
                n_hidden=n_hidden,
                n_out=n_out,
                label=Msg(label),
                got=got,
                expected=expected,
            )
    leaves_global_state(before, session.state(), code("trainable_count"))
