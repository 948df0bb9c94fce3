"""What the exercise tests share: build, run, inspect, save and reload, move, step, and draw inputs.

Every probe works through a `Remote` (`buflesson.handles`): the student's code runs on the student's
side, the probe gets plain data back and turns the student's errors into `Fail` (with a hint that
names what was being done) or `NotAttempted`. No traceback from inside the library reaches a student.
"""

from __future__ import annotations

import os
import random
import secrets

import torch

from buflesson.checks import Fail, NotAttempted
from buflesson.handles import Refused, Remote, StudentError
from buflesson.i18n import N_, Listed, Msg
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

# --- inputs that change from run to run ---------------------------------------------------------


LARGE = 65  # larger than any table size a student may hard-code (16, 32, 64)


class Draw:
    """Sizes, seeds and inputs for one check, different on every run so that an answer cannot be
    tuned to one input. `BUFLESSON_CHECK_SEED` fixes them (tests that must repeat exactly)."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            fixed = os.environ.get("BUFLESSON_CHECK_SEED")
            seed = int(fixed) if fixed else secrets.randbits(32)
        self.random = random.Random(seed)

    def integer(self, low: int, high: int, avoid: tuple[int, ...] = ()) -> int:
        """An integer in [low, high], never one of `avoid` (the sizes a lesson shows)."""
        choices = [n for n in range(low, high + 1) if n not in avoid]
        return self.random.choice(choices)

    def sizes(self, count: int, low: int, high: int, avoid: tuple[int, ...] = ()) -> list[int]:
        """`count` different integers in [low, high], none of them in `avoid`."""
        choices = [n for n in range(low, high + 1) if n not in avoid]
        return self.random.sample(choices, count)

    def sizes_and_a_large_one(
        self, count: int, low: int, high: int, avoid: tuple[int, ...] = ()
    ) -> list[int]:
        """`count - 1` different sizes in [low, high] (none in `avoid`), then one in [LARGE, 2 * LARGE]:
        an answer that cuts its tensors from a table of a fixed size, or caps a size, fails."""
        return [*self.sizes(count - 1, low, high, avoid), self.integer(LARGE, 2 * LARGE)]

    def seed(self) -> int:
        return self.random.randrange(1, 2**31)

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed())
        return torch.randn(*shape, generator=generator, dtype=dtype)

    def uniform(self, *shape: int, low: float = -3.0, high: float = 3.0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed())
        return low + (high - low) * torch.rand(*shape, generator=generator)


# --- what the answer is --------------------------------------------------------------------------


def expect_module_class(answer: Remote, name: str) -> None:
    """Fail unless `answer` is an `nn.Module` subclass (not an instance, not a function)."""
    kind = answer.kind
    if kind == "module":
        raise Fail(
            "Got a model instance ({type}), not the class.",
            "Pass the class itself, without calling it: check(..., {name}), not check(..., {name}()).",
            type=answer.info.get("type"),
            name=name,
        )
    if kind != "class":
        raise Fail(
            "Expected the class {name}, got {type}.",
            "Pass the class you defined in the exercise cell.",
            name=name,
            type=answer.info.get("type"),
        )
    if not answer.info.get("module_class"):
        raise Fail(
            "{got} is not a subclass of torch.nn.Module.",
            "Define it as `class {name}(nn.Module):` and call super().__init__() first.",
            got=answer.name,
            name=name,
        )


def expect_function(answer: Remote, name: str, exercise_id: str) -> None:
    """Fail unless `answer` is a function (not a class, not a model, not data)."""
    if answer.kind != "function":
        raise Fail(
            "Expected the function {name}, got {type}.",
            "Pass the function itself, without calling it: check({exercise_id!r}, {name}).",
            name=name,
            type=Msg("the class {name}", name=answer.name)
            if answer.kind == "class"
            else answer.info.get("type"),
            exercise_id=exercise_id,
        )


# --- running student code ------------------------------------------------------------------------


def student(what: str | Msg):
    """A context that turns the student's errors inside it into `Fail` (or `NotAttempted`),
    naming `what` was being done: an English text (translated where it is shown) or a `Msg`."""
    return _StudentCall(what)


def code(text: str) -> Msg:
    """A step named by its code alone (`model.to('cuda')`): the same in every language."""
    return Msg("{code}", code=text)


FORWARD = N_("forward")
NAME = N_("name")
STEP_HINT = N_("Run that step yourself in a new cell to see the whole error and where it comes from.")


# Errors whose text names the cause: their hint says what it means, not only "run it yourself".
KNOWN_ERRORS = (
    (
        "appears to not have been used in the graph",
        N_(
            "autograd found no path from the loss to that tensor: the model computed with another one. "
            "Differentiate with respect to the tensor the model itself uses (getattr(model, name)), not a "
            "copy: .clone() and .detach() make a new tensor that the model never sees."
        ),
    ),
    (
        "does not require grad and does not have a grad_fn",
        N_(
            "The loss carries no autograd graph: it was computed under torch.no_grad(), or from tensors "
            "none of which requires grad. Compute it with gradient tracking on, after requires_grad_(True) "
            "on the tensor you differentiate."
        ),
    ),
    (
        "a leaf Variable that requires grad is being used in an in-place operation",
        N_(
            "Autograd refuses to change a tensor that requires grad in place. A fixed tensor should not "
            "require grad: register it without requires_grad=True."
        ),
    ),
    (
        "must match the size of tensor b",
        N_(
            "Two tensors in one operation have shapes that do not fit: print their shapes. The check uses "
            "other sizes than the lesson's, so a size taken from the wrong dimension (the batch instead "
            "of the features) shows here."
        ),
    ),
)


def known_error_hint(error: object) -> str:
    """The hint for a student's error: the one its text calls for, else `STEP_HINT`."""
    text = str(error)
    return next((hint for needle, hint in KNOWN_ERRORS if needle in text), STEP_HINT)


class _StudentCall:
    def __init__(self, what: str | Msg) -> None:
        self.what = as_msg(what)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, tb) -> bool:
        if isinstance(error, StudentError):
            if missing_forward(error):
                raise no_forward(self.what) from None
            if error.not_implemented and not from_meta(error):
                raise NotAttempted from None
            if from_meta(error):
                raise Fail(
                    "{what} raised {error}",
                    "On the lessons' device your code copied a tensor back to the CPU (.cpu(), "
                    ".to('cpu'), .tolist()); the stand-in device holds no data to copy. Keep every "
                    "tensor on the model's device.",
                    what=self.what,
                    error=str(error),
                ) from None
            if standin_limit(error):  # a value read on the stand-in (.item()): a GPU would run it
                raise Fail(
                    "{what} raised {error} (buflesson's GPU stand-in holds no values, so it cannot run an "
                    "operation that reads them or copies them out; a GPU would).",
                    "Compute with tensors and sizes (x.shape) instead of reading values (.item(), .tolist()) "
                    "in forward. A copy made with .cpu() must not meet the model's tensors again: on a GPU "
                    "that fails unless the copy is 0-dim. Or run the check on a machine with an accelerator.",
                    what=self.what,
                    error=str(error),
                ) from None
            raise Fail(
                "{what} raised {error}", known_error_hint(error), what=self.what, error=str(error)
            ) from None
        return False


def missing_forward(error: StudentError) -> bool:
    """True for PyTorch's error when a model is called and its class defines no `forward` (a method
    named `foward` or `Forward` is never called): a mistake, not an exercise left unwritten."""
    return error.not_implemented and 'missing the required "forward" function' in error.message


def no_forward(what: str | Msg) -> Fail:
    return Fail(
        "{what}: the model has no forward method, so calling it raises NotImplementedError.",
        "Name the method exactly forward: def forward(self, x): ... (model(x) calls forward and no other "
        "name).",
        what=as_msg(what),
    )


def from_meta(error: StudentError) -> bool:
    """True for PyTorch's NotImplementedError about the data of a `meta` tensor (the stand-in device
    holds none): an error of the student's code on that device, not an exercise left unwritten."""
    return error.not_implemented and "meta tensor" in error.message


def build(cls: Remote, *args: object, seed: int | None = None, name: str = "") -> Remote:
    """An instance of the student's class, built with `args` in a forked random state (seeded with
    `seed` when given), so the student's own random state is left as it was."""
    label = name or cls.name
    shown = ", ".join(repr(a) for a in args)
    with student(Msg("Creating {call}", call=f"{label}({shown})")):
        model = cls.call(*args, seed=seed if seed is not None else 0, keep=True)
    if model.kind != "module":
        raise Fail("{label}(...) gave {type}, not an nn.Module.", label=label, type=model.info.get("type"))
    return model


def as_msg(what: str | Msg) -> Msg:
    """`what` as a message: an English text (marked with `N_` where it is written) or a `Msg`."""
    return what if isinstance(what, Msg) else Msg(what)


def forward(
    model: Remote, *inputs: object, what: str | Msg = FORWARD, device_rule: bool = False
) -> torch.Tensor:
    """`model(*inputs)` on the student's side; Fail unless it returns a tensor. `what` names the
    step in messages (an English text marked with `N_`, or a `Msg`)."""
    what = as_msg(what)
    with student(what):
        out = model.call(*inputs, device_rule=device_rule)
    if not isinstance(out, torch.Tensor):
        kind = out.info.get("type") if isinstance(out, Remote) else type(out).__name__
        raise Fail(
            "{what} returned {kind}, not a tensor.", "Keep the given `return` line.", what=what, kind=kind
        )
    return out


def expect_fresh_output(model: Remote, x: torch.Tensor, out: torch.Tensor, what: str | Msg = FORWARD) -> None:
    """`out` is what forward gave for `x`: forward on a second input of the same shape and other values
    must give another result, not one kept from the earlier call."""
    second = forward(model, 1.0 - 0.5 * x, what=what)
    if second.shape == out.shape and torch.equal(second.detach().cpu(), out.detach().cpu()):
        raise Fail(
            "{what} gave the same result for two inputs of the same shape and different values: it returns "
            "a result kept from an earlier call.",
            "Compute the result from the input at every call; keep nothing from one call to the next.",
            what=as_msg(what),
        )


def expect_plain_forward(cls: Remote, x: torch.Tensor, args: tuple = (), fresh: bool = True) -> None:
    """forward, on a fresh model built with `args`, as PyTorch expects of a layer: its output keeps the
    autograd graph when the model has parameters that require grad (no no_grad, detach or .data),
    it stores no tensor on the model, and (with `fresh`) a second input of the same shape gets its
    own result, not one kept from the first call."""
    model = build(cls, *args)
    before = rows(model)
    with student(FORWARD):
        out = model.call(x, grad=True, keep=True)
    if any(row["kind"] == PARAMETER and row["requires_grad"] for row in before.values()):
        with student(FORWARD):
            tracked = out.attr("requires_grad")
        if tracked is False:
            raise Fail(
                "forward returned a tensor that does not require grad, though the model has parameters "
                "that do: backward() on a loss made from it cannot reach them, so they are never trained.",
                "Return the computation itself: no torch.no_grad(), .detach() or .data inside forward (the "
                "caller decides when to track gradients).",
            )
    stored = [name for name in rows(model) if name not in before]
    if stored:
        raise Fail(
            "After forward, the model holds tensors it did not hold before: {stored}. forward stores a "
            "tensor on the model, where .to() does not move it and state_dict() does not save it.",
            "Keep what forward computes in local variables: store nothing on self inside forward.",
            stored=", ".join(stored),
        )
    if fresh:
        with student(FORWARD):
            first = out.value()
        if isinstance(first, torch.Tensor):
            expect_fresh_output(model, x, first)


def rows(model: Remote) -> dict[str, dict]:
    """`inventory(model)` rows by name."""
    with student("Listing the model's tensors"):
        return {row["name"]: row for row in model.inventory()}


def tensor(model: Remote, path: str, hint: str = "") -> torch.Tensor:
    """The tensor at `model.path`; Fail when it is missing or not a tensor."""
    with student(Msg("Reading {path}", path=path)):
        value = model.attr_or_none(path)
    if not isinstance(value, torch.Tensor):
        hint = hint or N_("Keep the name {path}: the lesson's code and the check look it up by that name.")
        if value is None:
            raise Fail("The model's {path} is missing, not a tensor.", hint, path=path)
        raise Fail(
            "The model's {path} is a {type}, not a tensor.",
            hint,
            path=path,
            type=value.info.get("type") if isinstance(value, Remote) else type(value).__name__,
        )
    return value


def state_dict(model: Remote) -> dict[str, torch.Tensor]:
    """`model.state_dict()` as data (an OrderedDict with its version metadata)."""
    with student(code("state_dict()")):
        return model.method("state_dict")


def choose_weights(model: Remote, names: tuple[str, ...], draw: Draw) -> dict[str, torch.Tensor]:
    """Give `model`'s tensors `names` values the check draws (in their shape and dtype) and return
    them. A check computes what forward must give from these, never from values the notebook chose:
    an answer whose layers are all zeros gives zeros whatever its forward does with x."""
    state = state_dict(model)
    drawn = {}
    for name in names:
        current = state.get(name)
        if isinstance(current, torch.Tensor) and current.is_floating_point():
            drawn[name] = draw.randn(*current.shape).to(current.dtype)
    with student(code("load_state_dict")):
        model.call(drawn, method="load_state_dict", strict=False)
    return {**state, **drawn}


# --- kinds: what was wanted, what was found -------------------------------------------------------

# (wanted, found) -> (message, hint). `{name}` is the tensor's name.
KIND_HINTS: dict[tuple[str, str], tuple[str, str]] = {
    (BUFFER, PLAIN): (
        N_(
            "{name!r} is a plain tensor attribute: PyTorch does not track it, so it is not saved and does "
            "not move with the model."
        ),
        N_("Register it: self.register_buffer({name!r}, tensor) (or self.{name} = nn.Buffer(tensor))."),
    ),
    (BUFFER, NON_PERSISTENT_BUFFER): (
        N_(
            "{name!r} is a buffer with persistent=False: it moves with the model but is left out of "
            "state_dict(), so it is not saved."
        ),
        N_(
            "This one must be saved: register it as a persistent buffer (the default), "
            "self.register_buffer({name!r}, tensor)."
        ),
    ),
    (BUFFER, PARAMETER): (
        N_(
            "{name!r} is an nn.Parameter: it is saved and moved, but it is listed in parameters() and "
            "handed to the optimizer."
        ),
        N_(
            "Fixed state belongs in a buffer: self.register_buffer({name!r}, tensor). A frozen Parameter "
            "is still switched back on by any 'unfreeze all parameters' loop."
        ),
    ),
    (BUFFER, NONE_BUFFER): (
        N_("{name!r} is registered as a buffer but holds None, so it is neither saved nor moved."),
        N_("Register the tensor itself: self.register_buffer({name!r}, tensor)."),
    ),
    (NON_PERSISTENT_BUFFER, PLAIN): (
        N_("{name!r} is a plain tensor attribute: it does not move with the model."),
        N_(
            "Register it as a buffer that is not saved: self.register_buffer({name!r}, tensor, "
            "persistent=False)."
        ),
    ),
    (NON_PERSISTENT_BUFFER, BUFFER): (
        N_("{name!r} is a persistent buffer, so it is saved in state_dict()."),
        N_("This one must stay out of checkpoints: register it with persistent=False."),
    ),
    (NON_PERSISTENT_BUFFER, PARAMETER): (
        N_("{name!r} is an nn.Parameter: it is saved in state_dict() and handed to the optimizer."),
        N_(
            "Register it as a buffer that is not saved: self.register_buffer({name!r}, tensor, "
            "persistent=False)."
        ),
    ),
    (NON_PERSISTENT_BUFFER, NONE_BUFFER): (
        N_("{name!r} is registered as a buffer but holds None, so it does not move with the model."),
        N_("Register the tensor itself: self.register_buffer({name!r}, tensor, persistent=False)."),
    ),
    (PARAMETER, PLAIN): (
        N_("{name!r} is a plain tensor attribute: not saved, not moved, not trained."),
        N_("Wrap it: self.{name} = nn.Parameter(tensor)."),
    ),
    (PARAMETER, BUFFER): (
        N_("{name!r} is a buffer: the optimizer never steps it."),
        N_("Learned state is a parameter: self.{name} = nn.Parameter(tensor)."),
    ),
    (PARAMETER, NON_PERSISTENT_BUFFER): (
        N_("{name!r} is a non-persistent buffer: not saved, and the optimizer never steps it."),
        N_("Learned state is a parameter: self.{name} = nn.Parameter(tensor)."),
    ),
}


def expect_kind(
    answer_class: Remote,
    model: Remote,
    name: str,
    wanted: str,
    *,
    sample: torch.Tensor | None = None,
    args: tuple = (),
) -> dict:
    """Fail with the hint for what was found unless tensor `name` of `model` is of kind `wanted`;
    returns its inventory row. When `name` is missing after `__init__` but appears once forward has
    run on `sample` (in a fresh model built with `args`), the hint says it is made inside forward."""
    every = rows(model)
    found = every.get(name)
    if found is not None and found["kind"] == wanted:
        return found
    holder = next((row for row in every.values() if name in row.get("held_by", ())), None)
    if found is None and holder is not None:
        raise Fail(
            "{name!r} is a plain attribute that points at the tensor registered as {real!r}: PyTorch knows "
            "that tensor by the name {real!r} only, and after a .to() that replaces it, {name!r} still "
            "points at the old one.",
            "Register the tensor under the name {name!r} itself, with no second name.",
            name=name,
            real=holder["name"],
        )
    if found is None:
        if sample is not None:
            probe = build(answer_class, *args)
            try:
                probe.call(sample)
            except StudentError:
                pass
            if name in rows(probe):
                raise Fail(
                    "{name!r} only appears after forward() runs: it is created inside forward.",
                    "Create it once in __init__ so it exists, is saved and moves before the first "
                    "forward pass.",
                    name=name,
                )
        raise Fail(
            "The model has no tensor named {name!r}.",
            "Keep the name {name!r}: the lesson's code and the check look it up by that name.",
            name=name,
        )
    message, hint = KIND_HINTS.get(
        (wanted, found["kind"]),
        (
            N_("{name!r} is a {found}, not a {wanted}."),
            N_("Keep {name!r} as a {wanted}, as the exercise asks."),
        ),
    )
    raise Fail(message, hint, name=name, found=Msg(found["kind"]), wanted=Msg(wanted))


# --- files, devices, the optimizer ----------------------------------------------------------------


def save_and_reload(model: Remote, make_fresh, **load_kwargs: object) -> Remote:
    """Save `model.state_dict()` to a real file on the student's side, load it into `make_fresh()`
    with `torch.load(weights_only=True)` and `load_state_dict(**load_kwargs)`; return that model."""
    session = model.session
    path = os.path.join(session.folder(), "checkpoint.pt")
    with student(code("state_dict()")):
        state = model.call(method="state_dict", keep=True)
    with student(code("torch.save(model.state_dict(), path)")):
        session.lib("torch:save")(state, path)
    fresh = make_fresh()
    with student(code("torch.load(path, weights_only=True)")):
        loaded = session.lib("torch:load").call(path, weights_only=True, keep=True)
    with student(code("load_state_dict")):
        fresh.call(loaded, method="load_state_dict", **load_kwargs)
    return fresh


def save_file(session, value: object, name: str) -> str:
    """`torch.save(value, path)` on the student's side, in the check's scratch folder; returns path.
    `value` is plain data (a state dict with its `_metadata` travels as one) or a `Remote`."""
    path = os.path.join(session.folder(), name)
    with student(code("torch.save")):
        session.lib("torch:save")(value, path)
    return path


def load_strict(model: Remote, path: str, what: str | Msg, hint: str) -> None:
    """`model.load_state_dict(torch.load(path, weights_only=True))` (strict) on the student's side;
    an error raised there becomes a `Fail` that names `what` (or `NotAttempted`), with `hint`."""
    session = model.session
    with student(code("torch.load(path, weights_only=True)")):
        loaded = session.lib("torch:load").call(path, weights_only=True, keep=True)
    try:
        model.call(loaded, method="load_state_dict")
    except StudentError as error:
        if error.not_implemented:
            raise NotAttempted from None
        raise Fail("{what} raised {error}", hint, what=as_msg(what), error=str(error)) from None


def move(model: Remote, target: torch.device | str | torch.dtype) -> Remote:
    """`model.to(target)` on the student's side (the same model, converted in place)."""
    with student(code(f".to({target})")):
        moved = model.call(target, method="to", keep=True)
    return moved


def sgd_step(model: Remote, sample: torch.Tensor, lr: float = 0.1) -> None:
    """One SGD step on `model.parameters()` for the loss `model(sample).sum()`."""
    session = model.session
    with student(code("parameters()")):
        params = model.call(method="parameters", keep=True)
    optimizer = session.lib("torch.optim:SGD").call(params, lr=lr, keep=True)
    with student("forward"):
        out = model.call(sample, keep=True)
    with student(code("backward")):
        out.call(method="sum", keep=True).method("backward")
    optimizer.method("step")


GLOBAL_SETTINGS = {
    "grad_enabled": N_("gradient tracking (torch.is_grad_enabled())"),
    "inference_mode": N_("inference mode"),
    "default_dtype": N_("the default dtype"),
    "default_device": N_("the default device"),
    "torch_rng": N_("torch's random state"),
    "torch_seed": N_("torch's random seed (torch.manual_seed)"),
    "python_rng": N_("Python's random state"),
    "anomaly": N_("anomaly detection"),
    "deterministic": N_("deterministic algorithms"),
}
# Kept by the workbench, not settings: what the student's calls changed and it put back.
RECORDS = ("leaked", "modified_inputs")


def leaves_global_state(before: dict, after: dict, what: str | Msg, ignore: tuple[str, ...] = ()) -> None:
    """Fail when the student's code changed the process's global state (grad mode, default dtype or
    device, random seed or state) and did not put it back, or changed a tensor it was given in place.
    `before` and `after` are `Session.state()`; `what` names the code (marked with `N_`); the keys in
    `ignore` are not counted."""
    changed = [key for key in before if key not in RECORDS and before.get(key) != after.get(key)]
    changed += [
        key for key in after.get("leaked", []) if key not in before.get("leaked", []) and key not in changed
    ]
    changed = [key for key in changed if key not in ignore]
    if changed:
        if "grad_enabled" in changed:
            hint = N_(
                "Everything after your code runs with that setting too: use `with torch.no_grad():` around "
                "the lines that need it, never torch.set_grad_enabled(False) on its own."
            )
        elif "torch_seed" in changed:
            hint = N_(
                "Everything after your code draws the same random numbers again: leave torch's seed alone. "
                "For numbers that repeat, use your own generator (torch.Generator().manual_seed(n), passed "
                "as generator=...) or seed inside `with torch.random.fork_rng():`."
            )
        else:
            hint = N_(
                "Everything after your code runs with that setting too: leave global settings as you found "
                "them: use a `with` block, or save and restore them."
            )
        raise Fail(
            "{what} changed {changed} for the rest of the session.",
            hint,
            what=as_msg(what),
            changed=Listed(Msg(GLOBAL_SETTINGS[key]) if key in GLOBAL_SETTINGS else key for key in changed),
        )
    if after.get("modified_inputs", 0) > before.get("modified_inputs", 0):
        raise Fail(
            "{what} changed a tensor it was given, in place: the caller's tensor no longer holds what they "
            "passed.",
            "Leave the tensors you are given as they are: compute a new tensor (x = x - mean, "
            "x.masked_fill(...)), not an in-place change (x.sub_(mean), x -= mean, x.masked_fill_(...)).",
            what=as_msg(what),
        )


# --- what every module answer must do ---------------------------------------------------------


def expect_dtype_follows(out: torch.Tensor, sample: torch.Tensor) -> None:
    if out.dtype != sample.dtype:
        raise Fail(
            "For a {given} input, forward returned {got}: a {got} tensor inside the model changed the "
            "result's dtype.",
            "Keep the model's tensors float32 (torch.tensor([...]) of Python floats gives float32), so "
            "that .double() and .float() decide the dtype of the whole model.",
            given=str(sample.dtype),
            got=str(out.dtype),
        )


def expect_own_tensors(cls: Remote, names: tuple[str, ...], args: tuple = ()) -> None:
    """Each model must make its own tensors: two models sharing one tensor object change together
    (the check asks before it changes anything, so a shared tensor of the student's is left alone)."""
    first, second = build(cls, *args), build(cls, *args)
    for name in names:
        tensor(first, name)
        with student(Msg("Reading {path}", path=name)):
            shared = first.attr(name, keep=True).method("data_ptr") == second.attr(name, keep=True).method(
                "data_ptr"
            )
        if shared:
            raise Fail(
                "Two models built from your class hold the same {name} tensor: changing one model's "
                "{name} in place changes the other's.",
                "Make a new tensor in __init__ each time it runs, not a tensor made once outside the "
                "class and shared by every model.",
                name=name,
            )


def expect_runs_on_device(cls: Remote, x: torch.Tensor, names: tuple[str, ...], args: tuple = ()) -> Remote:
    """Move a fresh model (built with `args`) to the lessons' device (an accelerator, else the
    stand-in) and run it there under the device rule: every tensor forward uses must have moved with
    the model. Returns that model, after its forward pass."""
    device = cls.session.device()
    model = move(build(cls, *args), device)
    for name in names:
        where = tensor(model, name).device
        if where.type != device.type:
            raise Fail(
                "After model.to({device!r}), {name} is still on {where}.",
                "Register {name} as a buffer so that .to() moves it.",
                device=str(device),
                name=name,
                where=str(where),
            )
    try:
        out = forward(
            model,
            x.to(device),
            what=Msg("After model.to({device!r}), forward", device=str(device)),
            device_rule=True,
        )
    except Fail as failure:  # it ran before the move: a tensor forward uses stayed behind
        if failure.hint_template != STEP_HINT:
            raise
        raise Fail(
            failure.template,
            "A tensor forward uses did not move with the model: every tensor forward uses must be a "
            "parameter or a buffer (or be made on the input's device), so that .to() moves it.",
            **failure.values,
        ) from None
    if out.device.type != device.type:
        raise Fail(
            "After model.to({device!r}), forward returned a tensor on {where}.",
            "Every tensor forward uses must be a parameter or a buffer so that .to() moves it.",
            device=str(device),
            where=str(out.device),
        )
    return model


def expect_follows_double(cls: Remote, x: torch.Tensor, names: tuple[str, ...], args: tuple = ()) -> Remote:
    """After `.double()` the buffers are float64 and forward gives float64 for a float64 input."""
    model = move(build(cls, *args), torch.float64)
    for name in names:
        dtype = tensor(model, name).dtype
        if dtype.is_floating_point and dtype != torch.float64:
            raise Fail(
                "After model.double(), {name} is {dtype}, not torch.float64.",
                "Register it as a buffer: .double() converts floating-point buffers with the parameters.",
                name=name,
                dtype=str(dtype),
            )
    out = forward(model, x.double(), what=N_("After model.double(), forward"))
    if out.dtype != torch.float64:
        raise Fail(
            "After model.double(), forward on a float64 input returned {dtype}.",
            "Every tensor forward uses must be converted by .double(): keep it as a buffer.",
            dtype=str(out.dtype),
        )
    return model


# --- comparing ----------------------------------------------------------------------------------


class NoValues(Exception):
    """A comparison of values was asked for a `meta` tensor, which holds none: neither "the same"
    nor "different" can be decided, so the check cannot pass on it (it reads "could not finish")."""


def _values(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.device.type == "meta":
        raise NoValues("a tensor the check compares is on the meta device and holds no values")
    return tensor.detach().cpu().double()


def same(a: object, b: object) -> bool:
    """True when two tensors hold the same values (devices and dtypes aside). `NoValues` for a
    `meta` tensor: a check compares the stand-in's tensors by shape and dtype, never with this."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    first, second = _values(a), _values(b)
    return a.shape == b.shape and torch.equal(first, second)


def close(a: object, b: object, atol: float = 1e-5, rtol: float = 1e-5) -> bool:
    """True when two tensors hold nearly the same values (devices and dtypes aside); `NoValues`
    for a `meta` tensor."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    first, second = _values(a), _values(b)
    if a.shape != b.shape:
        return False
    return torch.allclose(first, second, atol=atol, rtol=rtol)


def shown(value: object) -> str | Msg:
    """A value as a message shows it to a student: a placeholder, None or a handle is named in
    words, never printed as `Ellipsis`, `None` or a `Remote` repr where a value is expected."""
    if value is Ellipsis:
        return Msg("the placeholder `...`")
    if value is None:
        return Msg("no value (None)")
    if isinstance(value, Remote):
        return Msg("a {type}", type=value.info.get("type", "object"))
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return Msg("a tensor of shape {shape} on the meta device", shape=tuple(value.shape))
        return str(rounded(value))
    return repr(value)


MAX_SHOWN = 64  # values of a tensor a message shows


def rounded(value: torch.Tensor, digits: int = 4) -> list | str:
    """A tensor's values as a (nested) list of rounded numbers, for messages; past `MAX_SHOWN`
    values, its first ones and `…` (a notebook's tensor can hold millions: turning them all into
    text cost the grader's judge seconds and a gigabyte for a message it cuts to 1000 characters)."""
    if value.numel() > MAX_SHOWN:
        first = torch.round(value.detach().reshape(-1)[:MAX_SHOWN].cpu().double(), decimals=digits)
        return "[" + ", ".join(repr(v) for v in first.tolist()) + ", …]"
    data = value.detach().cpu().double()
    if data.is_complex():
        return torch.round(data, decimals=digits).tolist()
    # Below 10**-digits a value keeps `digits` significant digits: 1e-06 is not shown as 0.0.
    tiny = (data.abs() < 10.0**-digits) & (data != 0)
    if not tiny.any():
        return torch.round(data, decimals=digits).tolist()
    exponent = torch.floor(torch.log10(data.abs().clamp_min(1e-300)))
    scale = torch.pow(10.0, digits - 1 - exponent)
    return torch.where(tiny, torch.round(data * scale) / scale, torch.round(data, decimals=digits)).tolist()


# --- predictions: plain data the student writes ---------------------------------------------------

NAME_COLLECTIONS = (list, tuple, set, frozenset)


def prediction(answer: Remote, *, expected: str, example: str, call: bool = False) -> object:
    # `expected` is an English text marked with `N_` where it is written.
    """The student's prediction as plain data. With `call`, a function answer is called first (with no
    arguments) and its result is the prediction. Fail, naming what was found, when the prediction is
    not plain data (a model, a class, a generator, `dict.keys()`...)."""
    found: object = answer
    if call and answer.kind == "function":
        with student(code(f"{answer.name}()")):
            found = answer.call()
        if found is None:
            raise Fail(
                "{name}() returned None.",
                "End the function with `return` and your answer, written as {example}.",
                name=answer.name,
                example=example,
            )
        if not isinstance(found, Remote):
            return found
    if isinstance(found, Remote):
        kind, type_name = found.kind, str(found.info.get("type"))
        if kind == "data":
            try:
                return found.value()
            except Refused:
                pass
        raise Fail(
            "Expected {expected}, got {type}.",
            "Write it as {example}.",
            expected=Msg(expected),
            type=described(kind, found.name, type_name),
            example=example,
        )
    return found


def described(kind: str, name: str, type_name: str) -> str | Msg:
    """An answer named for a message: `a model (Net)`, `the class Net`, `the function f`, `a tensor`."""
    labels = {
        "module": N_("a model ({name})"),
        "class": N_("the class {name}"),
        "function": N_("the function {name}"),
        "tensor": N_("a tensor"),
    }
    return Msg(labels[kind], name=name) if kind in labels else type_name


A_KIND = {  # a kind with its article, as a message names it
    None: N_("missing"),
    PARAMETER: N_("a parameter"),
    BUFFER: N_("a buffer"),
    NON_PERSISTENT_BUFFER: N_("a non-persistent buffer"),
    NONE_BUFFER: N_("a None buffer"),
    PLAIN: N_("a plain attribute"),
    REFERENCE: N_("a reference"),
    COMPUTED: N_("a computed"),
    EXTRA_STATE: N_("an extra state"),
}


def a_kind(kind: str | None) -> Msg:
    """An inventory kind with its article (`a buffer`), `missing` for None, as a message names it."""
    return Msg(A_KIND[kind]) if kind in A_KIND else Msg("a {kind}", kind=kind)


def names_in(value: object, *, expected: str, example: str, noun: str = NAME) -> list[str]:
    """The strings of a list, tuple, set or frozenset (in their order; a set's sorted), after failing
    for anything else, for an item that is not a string, and for a name listed more than once.
    `expected` and `noun` are English texts marked with `N_` where they are written."""
    if not isinstance(value, NAME_COLLECTIONS):
        raise Fail(
            "Expected {expected}, got {type}.",
            "Write it as {example}.",
            expected=Msg(expected),
            type=type(value).__name__,
            example=example,
        )
    items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
    odd = [item for item in items if not isinstance(item, str)]
    if odd:
        raise Fail(
            "Every {noun} is a string: {odd} is not."
            if len(odd) == 1
            else "Every {noun} is a string: {odd} are not.",
            "Write each {noun} in quotes, e.g. {example}.",
            noun=Msg(noun),
            odd=", ".join(repr(item) for item in odd[:3]),
            example=example,
        )
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    twice = [
        Msg("{name!r} ({count} times)", name=name, count=count) for name, count in counts.items() if count > 1
    ]
    if twice:
        raise Fail(
            "Listed more than once: {twice}.",
            "Each {noun} counts once: write it once (a set cannot hold the same {noun} twice).",
            twice=Listed(twice),
            noun=Msg(noun),
        )
    return items


def near_miss(name: str, real: list[str]) -> str | None:
    """The real name that `name` differs from only in spaces or case, if any."""
    squeezed = "".join(name.split()).lower()
    for candidate in real:
        if candidate != name and "".join(candidate.split()).lower() == squeezed:
            return candidate
    return None


def as_device(value: object) -> torch.device | None:
    """A device written as `torch.device` or as its name ('meta', 'cuda:0'); None for anything else."""
    if isinstance(value, torch.device):
        return value
    if isinstance(value, str):
        try:
            return torch.device(value.strip())
        except (RuntimeError, ValueError):
            return None
    return None


# --- port3 (lessons 2 and 8): forward that may fail, conversions, loads, kinds for hints ------------


def attempt(model: Remote, *inputs: object, device_rule: bool = False) -> torch.Tensor | StudentError:
    """`model(*inputs)` on the student's side: the output tensor, or the `StudentError` it raised
    (the caller words the failure for the step it was in). `NotImplementedError` is NOT ATTEMPTED,
    except where the stand-in cannot run what a GPU would (see `standin_limit`)."""
    try:
        out = model.call(*inputs, device_rule=device_rule)
    except StudentError as error:
        if missing_forward(error):
            raise no_forward(FORWARD) from None
        if error.not_implemented and not (device_rule and standin_limit(error)):
            raise NotAttempted from None
        return error
    if not isinstance(out, torch.Tensor):
        kind = out.info.get("type") if isinstance(out, Remote) else type(out).__name__
        raise Fail("forward returned {kind}, not a tensor.", "Keep the given `return` line.", kind=kind)
    return out


def standin_limit(error: StudentError) -> bool:
    """True for an error of the stand-in's own `meta` tensors (they hold no values: `.item()`,
    `.tolist()`, `.cpu()`), not a device mismatch: a GPU would run that code."""
    text = error.message.lower()
    return error.type_name != "StandInDeviceError" and "meta" in text and "device" not in text


def fail_on_device(error: StudentError, where: str | Msg, hint: str, **values: object) -> Fail:
    """The `Fail` for forward raising `error` on the lessons' device (`where` names the step; `values`
    fill `hint`)."""
    where = as_msg(where)
    if standin_limit(error):
        return Fail(
            "{where}, forward raised {error} (buflesson's GPU stand-in holds no values, so it cannot run "
            "an operation that reads them or copies them out; a GPU would).",
            "Compute with tensors and sizes (x.shape) instead of reading values (.item(), .tolist()) in "
            "forward. A copy made with .cpu() must not meet the model's tensors again: on a GPU that "
            "fails unless the copy is 0-dim. Or run the check on a machine with an accelerator.",
            where=where,
            error=str(error),
        )
    return Fail("{where}, forward raised {error}", hint, where=where, error=str(error), **values)


def convert(model: Remote, method: str, *args: object) -> Remote:
    """`model.method(*args)` for a conversion (`double`, `half`, `to`): the model, converted in place."""
    shown = ", ".join(repr(a) for a in args)
    with student(code(f"model.{method}({shown})")):
        return model.call(*args, method=method, keep=True)


def load(model: Remote, state: dict[str, torch.Tensor], what: str | Msg | None = None) -> None:
    """`model.load_state_dict(state)` (strict) on the student's side, `state` sent as plain data;
    `what` names the step in messages (marked with `N_`), `load_state_dict` by default."""
    with student(code("load_state_dict") if what is None else what):
        model.call(state, method="load_state_dict")


def kind_of(model: Remote, name: str) -> str | None:
    """The inventory kind of tensor `name` of `model` (parameter, buffer, ...), None when absent."""
    row = rows(model).get(name)
    return None if row is None else row["kind"]


def kind_fail(name: str, wanted: str, found: str | None) -> Fail | None:
    """The `Fail` that `KIND_HINTS` words for tensor `name`, wanted as `wanted` and found as
    `found`; None when there is no such hint (the caller words the failure)."""
    if found is None or (wanted, found) not in KIND_HINTS:
        return None
    message, hint = KIND_HINTS[(wanted, found)]
    return Fail(message, hint, name=name)


def expect_start(model: Remote, name: str, expected: torch.Tensor, given: str) -> torch.Tensor:
    """Tensor `name` as the model starts: the values the exercise states (`given` says them as
    code) and float32, the model's dtype; returns it."""
    actual = tensor(model, name)
    if not same(actual, expected):
        raise Fail(
            "{name} starts as {actual}, but the exercise gives {given}.",
            "Register {name} with the values the exercise states: {given}.",
            name=name,
            actual=rounded(actual),
            given=given,
        )
    if actual.dtype != torch.float32:
        raise Fail(
            "{name} is {dtype}, but the model's layers are torch.float32.",
            "Keep the model's tensors float32 ({given} gives float32), so that .double() and .half() "
            "decide the dtype of the whole model.",
            name=name,
            dtype=str(actual.dtype),
            given=given,
        )
    return actual
