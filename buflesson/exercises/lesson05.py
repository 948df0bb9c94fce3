"""Lesson 5: running statistics are buffers that forward() updates in train mode and keeps in eval mode."""

from __future__ import annotations

import torch
from torch import nn

from buflesson.checks import Fail, exercise
from buflesson.handles import Remote
from buflesson.i18n import N_, Msg
from buflesson.inventory import BUFFER
from buflesson.probes import (
    Draw,
    build,
    close,
    code,
    expect_follows_double,
    expect_function,
    expect_kind,
    expect_module_class,
    expect_own_tensors,
    expect_plain_forward,
    expect_runs_on_device,
    forward,
    leaves_global_state,
    rounded,
    rows,
    same,
    save_and_reload,
    shown,
    state_dict,
    student,
    tensor,
)

DEFAULT_MOMENTUM = 0.1
# Momenta the check draws: never 0.1 (an answer that ignores the argument would pass) nor 0.5 (where
# the weights of the old value and of the batch are equal, so swapping them would go unnoticed).
MOMENTA = (0.2, 0.25, 0.3, 0.35, 0.4, 0.6, 0.65, 0.7, 0.75, 0.8)

UPDATE_HINT = N_(
    "In forward, when self.training is True, update the buffer itself without tracking gradients: "
    "with torch.no_grad(): self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean(0))."
)
RULE = N_(
    "(1 - momentum) * running_mean + momentum * x.mean(0), computed under torch.no_grad() so that the "
    "buffer keeps no autograd graph."
)
NO_GRAD_HINT = N_(
    "Update the buffer under torch.no_grad() (or from x.detach().mean(0)): otherwise it keeps the "
    "autograd graph of every batch it has seen. Only the update: the returned x - self.running_mean "
    "must still carry gradients."
)


# --- 5.1 ---------------------------------------------------------------------------------------


def _running(model: Remote) -> torch.Tensor:
    return tensor(model, "running_mean")


def _expect_start(model: Remote, features: int) -> None:
    """running_mean starts as float32 zeros, one per feature, and does not require grad."""
    start = _running(model)
    if tuple(start.shape) != (features,):
        raise Fail(
            "For RunningMean({features}), running_mean has shape {shape}; it needs one value per "
            "feature, shape ({features},).",
            N_("Build it from the argument: torch.zeros(features), never a fixed size.")
            if start.numel() != features
            else N_(
                "Keep one dimension: torch.{word}(features) has shape ({features},); an extra dimension of "
                "size 1 changes the shape that state_dict() saves and that every later use must carry."
            ),
            features=features,
            word="zeros",
            shape=tuple(start.shape),
        )
    if not same(start, torch.zeros(features)):
        raise Fail(
            "running_mean starts as {values}.",
            "Start from zeros, as BatchNorm does: torch.zeros(features).",
            values=rounded(start),
        )
    if start.dtype != torch.float32:
        raise Fail(
            "running_mean is {dtype}, but a model's tensors are torch.float32 until .double() converts them.",
            "torch.zeros(features) gives float32; leave out the dtype.",
            dtype=str(start.dtype),
        )
    if start.requires_grad:
        raise Fail(
            "running_mean requires grad before any data was seen.",
            "Register a plain tensor: torch.zeros(features), without requires_grad=True.",
        )


def _updates_in_eval(answer: Remote, features: int, momentum: float, batch: torch.Tensor) -> bool:
    """True when a fresh model in eval mode changes running_mean (the condition the wrong way round)."""
    probe = build(answer, features, momentum)
    with student(code("model.eval()")):
        probe.method("eval")
    forward(probe, batch, what=N_("forward in eval mode"))
    return not same(_running(probe), torch.zeros(features))


def _expect_update(
    answer: Remote, got: torch.Tensor, before: torch.Tensor, batch: torch.Tensor, momentum: float
) -> None:
    """Compare running_mean after one train-mode step with the rule; name the mistake it matches."""
    batch_mean = batch.mean(0)
    expected = (1 - momentum) * before + momentum * batch_mean
    if close(got, expected):
        return
    values = {"got": rounded(got), "expected": rounded(expected), "rows": batch.shape[0], "rule": Msg(RULE)}
    if tuple(got.shape) != tuple(before.shape):
        raise Fail(
            "After a batch of {rows} rows, running_mean has shape {shape}, not {before}.",
            "Average over the batch dimension: x.mean(0) gives one value per feature.",
            shape=tuple(got.shape),
            before=tuple(before.shape),
            **values,
        )
    if same(got, before):
        if _updates_in_eval(answer, before.shape[0], momentum, batch):
            raise Fail(
                "running_mean stays the same in train mode but changes in eval mode: the condition is "
                "the wrong way round.",
                "Update when self.training is True (train mode); model.eval() sets it to False.",
            )
        raise Fail("running_mean did not change in train mode.", UPDATE_HINT)
    mistakes = (
        (
            momentum * before + (1 - momentum) * batch_mean,
            N_(
                "running_mean is {got}: momentum weighed the old value, not the new batch "
                "(expected {expected})."
            ),
            N_("As in BatchNorm, momentum is the weight of the new batch mean: {rule}"),
        ),
        (
            batch_mean,
            N_("running_mean holds the last batch mean {got}: momentum is not used (expected {expected})."),
            N_("Blend old and new: {rule}"),
        ),
        (
            (1 - DEFAULT_MOMENTUM) * before + DEFAULT_MOMENTUM * batch_mean,
            N_(
                "running_mean is {got}: the update used momentum 0.1, not the model's momentum "
                "(expected {expected})."
            ),
            N_("Use the momentum the model was built with, self.momentum, not the number 0.1."),
        ),
        (
            (1 - momentum) * before + momentum * batch.mean(),
            N_(
                "running_mean is {got}: the update averaged all values of the batch into one number "
                "(expected {expected})."
            ),
            N_("Average over the batch dimension only: x.mean(0) gives one value per feature."),
        ),
        (
            (1 - momentum) * before + momentum * batch.sum(0),
            N_(
                "running_mean is {got}: the update added the batch's sum, not its mean (expected {expected})."
            ),
            N_("Use the mean over the batch dimension: x.mean(0)."),
        ),
    )
    for value, message, hint in mistakes:
        if close(got, value):
            raise Fail(message, hint, **values)
    raise Fail(
        "After a batch of {rows} rows in train mode, running_mean is {got}, expected {expected}.",
        "Average over the batch dimension and blend it in: {rule}",
        **values,
    )


def _expect_output(
    out: torch.Tensor, batch: torch.Tensor, old: torch.Tensor, new: torch.Tensor, last: bool = True
) -> None:
    """forward returns x - running_mean, with running_mean as it is after the update. While the old
    running_mean is zero, "x unchanged" and "x minus the old value" are the same number: unless this
    is the `last` step, the next step (with a non-zero old value) tells them apart."""
    if close(out, batch - new):
        return
    if not last and same(old, torch.zeros_like(old)):
        return
    mistakes = (
        (
            batch - old,
            N_("forward returned x minus running_mean as it was before this batch's update."),
            N_("Update first, then return x - self.running_mean."),
        ),
        (
            batch,
            N_("forward returned x unchanged."),
            N_("Return x - self.running_mean."),
        ),
        (
            batch - batch.mean(0),
            N_("forward subtracted the batch's own mean, not running_mean."),
            N_("Return x - self.running_mean: the stored value, after the update."),
        ),
    )
    for value, message, hint in mistakes:
        if close(out, value):
            raise Fail(message, hint)
    raise Fail(
        "forward returned something else than x - running_mean for a batch of {rows} rows.",
        "Update first, then return x - self.running_mean.",
        rows=batch.shape[0],
    )


def _train_steps(answer: Remote, model: Remote, batches: list[torch.Tensor], momentum: float) -> None:
    with student(code("model.train()")):
        model.method("train")
    for step, batch in enumerate(batches, start=1):
        before = _running(model)
        out = forward(model, batch, what=N_("forward in train mode"))
        after = _running(model)
        _expect_update(answer, after, before, batch, momentum)
        _expect_output(out, batch, before, after, last=step == len(batches))


@exercise(
    "5.1",
    "A running mean kept as a buffer",
    passed="running_mean updates in train mode, stays fixed in eval mode, is saved, and follows .to().",
)
def running_mean_module(answer: Remote) -> None:
    expect_module_class(answer, "RunningMean")
    draw = Draw()
    before_state = answer.session.state()
    momentum = draw.random.choice(MOMENTA)
    feature_counts = draw.sizes_and_a_large_one(2, 2, 7)
    for features in feature_counts:
        # Batch sizes never equal the feature count: averaging over the wrong dimension must show.
        rows = draw.sizes(3, 2, 9, avoid=(features,))
        batches = [draw.uniform(n, features, low=-2.0, high=4.0) for n in rows]
        model = build(answer, features, momentum, seed=draw.seed())
        expect_kind(answer, model, "running_mean", BUFFER, sample=batches[0], args=(features, momentum))
        _expect_start(model, features)
        _train_steps(answer, model, batches[:2], momentum)
        leaves_global_state(before_state, answer.session.state(), N_("Building and running your model"))

        tracked = batches[2].clone().requires_grad_(True)
        before = _running(model)
        with student("forward in train mode on an input that requires grad"):
            out = model.call(tracked, grad=True)  # grad mode on, whatever the session has
        if not isinstance(out, torch.Tensor):
            raise Fail(
                "forward returned {got}, not a tensor.", "Return x - self.running_mean.", got=shown(out)
            )
        expect_kind(answer, model, "running_mean", BUFFER)
        after = _running(model)
        if after.requires_grad:
            raise Fail(
                "After a forward pass on an input that requires grad, running_mean requires grad.",
                NO_GRAD_HINT,
            )
        _expect_update(answer, after, before, batches[2], momentum)
        if not out.requires_grad:
            raise Fail(
                "For an input that requires grad, forward returned a tensor that does not: no gradient "
                "can flow back through the module.",
                "Put only the update of running_mean under torch.no_grad(); compute the returned "
                "x - self.running_mean outside it.",
            )
        _expect_output(out.detach(), batches[2], before, after)

        with student(code("model.eval()")):
            model.method("eval")
        frozen = _running(model)
        x = draw.uniform(rows[0], features, low=-2.0, high=4.0)
        out = forward(model, x, what=N_("forward in eval mode"))
        if not same(_running(model), frozen):
            raise Fail(
                "running_mean changed in eval mode.",
                "Update only when self.training is True: model.eval() sets it to False.",
            )
        if not close(out, x - frozen):
            raise Fail(
                "In eval mode, forward returned something else than x - running_mean.",
                "Return x - self.running_mean in both modes; only the update depends on self.training.",
            )

        fresh = save_and_reload(model, lambda f=features: build(answer, f, momentum, seed=draw.seed()))
        if not same(_running(fresh), frozen):
            raise Fail(
                "running_mean lost its value in a save/load round trip through a file: it came back as "
                "{got}, it was saved as {saved}.",
                got=shown(_running(fresh)),
                saved=rounded(frozen),
            )
        with student(code("model.eval()")):
            fresh.method("eval")
        if not close(forward(fresh, x, what=N_("forward of the reloaded model")), x - frozen):
            raise Fail("The reloaded model computes something else than the saved one.")

    features = feature_counts[0]
    batch = draw.uniform(draw.integer(2, 9, avoid=(features,)), features, low=-2.0, high=4.0)
    default = build(answer, features, seed=draw.seed())
    with student(code("model.train()")):
        default.method("train")
    forward(default, batch, what=N_("forward with the default momentum"))
    if not close(_running(default), DEFAULT_MOMENTUM * batch.mean(0)):
        raise Fail(
            "RunningMean({features}) without a momentum did not update with momentum 0.1.",
            "Give the momentum argument the default 0.1, as BatchNorm does: "
            "def __init__(self, features, momentum=0.1).",
            features=features,
        )

    args = (features, momentum)
    expect_own_tensors(answer, ("running_mean",), args=args)
    expect_plain_forward(answer, batch, args=args, fresh=False)
    doubled = expect_follows_double(answer, batch, ("running_mean",), args=args)
    if _running(doubled).dtype != torch.float64:
        raise Fail(
            "After model.double(), a train-mode step left running_mean as {dtype}: the update replaced "
            "the float64 buffer with a tensor of another dtype.",
            "Compute the new value from the buffer and the input only (or update in place), so that it "
            "keeps the model's dtype.",
            dtype=str(_running(doubled).dtype),
        )
    if not close(_running(doubled), momentum * batch.double().mean(0)):
        raise Fail(
            "After model.double(), a train-mode step gave running_mean = {got}, expected {expected}.",
            "Compute the update from the buffer and the input only, so it works in any dtype.",
            got=rounded(_running(doubled)),
            expected=rounded(momentum * batch.double().mean(0)),
        )
    on_device = expect_runs_on_device(answer, batch, ("running_mean",), args=args)
    where = _running(on_device).device
    if where.type != answer.session.device().type:
        raise Fail(
            "After model.to({device!r}), a train-mode step left running_mean on {where}: the update "
            "replaced the buffer with a tensor made elsewhere.",
            "Compute the new value from the buffer and the input only (or update in place), so that it "
            "stays on the model's device.",
            device=str(answer.session.device()),
            where=str(where),
        )
    leaves_global_state(before_state, answer.session.state(), N_("Building and running your model"))


# --- 5.2 ---------------------------------------------------------------------------------------


class EvalNet(nn.Module):
    """The network 5.2's check evaluates: BatchNorm (running statistics) and Dropout (random in train
    mode) between two linear layers. Built on the student's side, rebuilt by the check to compute the
    expected output from the state it reads back."""

    SUBMODULES = ("hidden", "norm", "drop", "out")
    PARAMETERS = ("hidden.weight", "hidden.bias", "norm.weight", "norm.bias", "out.weight", "out.bias")

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(features, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(hidden, 2)
        with torch.no_grad():  # BatchNorm's affine parameters away from 1 and 0, as after training
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.norm(self.hidden(x)))))


def _trained_net(answer: Remote, draw: Draw, features: int, hidden: int) -> Remote:
    """An `EvalNet` on the student's side whose running statistics have seen a few batches."""
    session = answer.session
    net = session.lib("buflesson.exercises.lesson05:EvalNet").call(
        features, hidden, seed=draw.seed(), keep=True
    )
    for _ in range(3):
        batch = 2.0 + 1.5 * draw.randn(draw.integer(4, 9), features)
        net.call(batch, seed=draw.seed(), grad=False)
    return net


def _expected(state: dict, features: int, hidden: int, x: torch.Tensor) -> torch.Tensor:
    """What the network gives in eval mode, computed here from the state read back."""
    with torch.random.fork_rng(devices=[]):  # in a notebook this is the student's process
        reference = EvalNet(features, hidden)
    reference.load_state_dict(state)
    reference.eval()
    with torch.no_grad():
        return reference(x)


def _modes(net: Remote) -> dict[str, bool]:
    with student("Reading the model's mode"):
        modes = {"model": net.attr("training")}
        for name in EvalNet.SUBMODULES:
            modes[name] = net.attr(f"{name}.training")
    return modes


def _evaluate(
    answer: Remote, net: Remote, x: torch.Tensor, how: str, seed: int, grad: bool | None = None
) -> object:
    # A forked random state: Dropout in train mode must not use up the student's random numbers.
    with student(Msg("evaluate(model, x) on a model in {how}", how=Msg(how))):
        return answer.call(net, x, seed=seed, grad=grad)


def _expect_result(
    out: object, state_before: dict, state_after: dict, expected: torch.Tensor
) -> torch.Tensor:
    changed = [name for name in state_before if not same(state_after.get(name), state_before[name])]
    if changed:
        if isinstance(out, torch.Tensor) and not out.requires_grad:
            raise Fail(
                "evaluate changed {changed}: the model ran in train mode.",
                "torch.no_grad() stops gradient tracking, not BatchNorm's running statistics: call "
                "model.eval() before the forward pass (remember model.training first, to restore it "
                "afterwards).",
                changed=", ".join(changed),
            )
        raise Fail(
            "evaluate changed {changed}: the model ran in train mode.",
            "Call model.eval() before the forward pass (remember model.training first, to restore it "
            "afterwards): in train mode BatchNorm updates its buffers. And run the forward pass inside "
            "`with torch.no_grad():`: the output requires grad."
            if isinstance(out, torch.Tensor)
            else "Call model.eval() before the forward pass (remember model.training first, to restore it "
            "afterwards): in train mode BatchNorm updates its buffers.",
            changed=", ".join(changed),
        )
    if not isinstance(out, torch.Tensor):
        raise Fail(
            "evaluate returned {got}, not the model's output.",
            "Return the output of model(x).",
            got=shown(out)
            if out is None or isinstance(out, Remote)
            else Msg("a {type}", type=type(out).__name__),
        )
    if tuple(out.shape) != tuple(expected.shape):
        raise Fail(
            "evaluate returned a tensor of shape {got}; the model's output has shape {expected}.",
            "Return the output of model(x) itself.",
            got=tuple(out.shape),
            expected=tuple(expected.shape),
        )
    if not close(out.detach(), expected):
        raise Fail(
            "evaluate returned other values than the model gives in eval mode.",
            "Return model(x), computed after model.eval(): in eval mode BatchNorm uses its stored "
            "statistics and Dropout does nothing.",
        )
    return out


def _expect_no_graph(out: torch.Tensor) -> None:
    if out.requires_grad:
        raise Fail(
            "The output requires grad: evaluate built an autograd graph nobody uses.",
            "Run the forward pass inside `with torch.no_grad():`.",
        )


def _expect_trainable(net: Remote, names: tuple[str, ...]) -> None:
    frozen = [name for name in names if not tensor(net, name).requires_grad]
    if frozen:
        raise Fail(
            "After evaluate, {frozen} no longer require grad: the training that goes on after "
            "evaluation cannot update them.",
            "Leave the parameters alone: `with torch.no_grad():` stops gradient tracking for the lines "
            "inside it only, which is all evaluation needs.",
            frozen=", ".join(frozen),
        )


@exercise(
    "5.2",
    "Evaluate without touching the running statistics",
    passed="evaluate used the stored statistics, changed no buffer, tracked no gradient, restored the mode.",
)
def evaluate(answer: Remote) -> None:
    expect_function(answer, "evaluate", "5.2")
    draw = Draw()
    before_state = answer.session.state()
    features, hidden = draw.integer(2, 6), draw.integer(3, 8)
    rows_a, rows_b = draw.sizes(2, 2, 9)

    net = _trained_net(answer, draw, features, hidden)
    with student(code("model.train()")):
        net.method("train")
    state = state_dict(net)
    x = draw.randn(rows_a, features)
    # Called as a training loop calls it: a change to grad mode it leaves behind shows afterwards.
    out = _evaluate(answer, net, x, N_("train mode"), draw.seed())
    out = _expect_result(out, state, state_dict(net), _expected(state, features, hidden, x))
    leaves_global_state(before_state, answer.session.state(), code("evaluate(model, x)"))
    if before_state["grad_enabled"]:
        _expect_no_graph(out)
    _expect_trainable(net, EvalNet.PARAMETERS)
    modes = _modes(net)
    if not modes["model"]:
        raise Fail(
            "After evaluate, the model is still in eval mode, though it was in train mode before.",
            "Put the mode back at the end: was_training = model.training first, "
            "model.train(was_training) last.",
        )
    left = [name for name in EvalNet.SUBMODULES if not modes[name]]
    if left:
        raise Fail(
            "After evaluate, model.training is True again, but {left} are still in eval mode: setting "
            "model.training does not reach the submodules.",
            "Restore the mode with model.train(was_training): it sets every submodule.",
            left=", ".join(left),
        )

    second = _trained_net(answer, draw, features, hidden)
    with student(code("model.eval()")):
        second.method("eval")
    # One parameter frozen by the caller: evaluate must leave it frozen.
    frozen = draw.random.choice(EvalNet.PARAMETERS)
    with student(code(f"model.{frozen}.requires_grad_(False)")):
        second.attr(frozen, keep=True).method("requires_grad_", False)
    held = set(rows(second))
    state = state_dict(second)
    y = draw.randn(rows_b, features)
    # With grad mode on, whatever the session has: the output must still carry no graph.
    out = _evaluate(answer, second, y, N_("eval mode"), draw.seed(), grad=True)
    if tensor(second, frozen).requires_grad:
        raise Fail(
            "After evaluate, {name} requires grad, though the caller had frozen it: evaluate changed "
            "requires_grad of the model's parameters.",
            "Leave the parameters alone: `with torch.no_grad():` is all evaluation needs; it changes no "
            "parameter's requires_grad.",
            name=frozen,
        )
    stored = [name for name in rows(second) if name not in held]
    if stored:
        raise Fail(
            "After evaluate, the model holds tensors it did not hold before: {stored}.",
            "Return the output; store nothing on the model (a tensor kept there is not saved, not moved, "
            "and stale after the next change).",
            stored=", ".join(stored),
        )
    _expect_no_graph(_expect_result(out, state, state_dict(second), _expected(state, features, hidden, y)))
    modes = _modes(second)
    if any(modes.values()):
        raise Fail(
            "evaluate switched a model that was in eval mode to train mode.",
            "Restore the mode it had, not train mode: was_training = model.training first, then "
            "model.train(was_training).",
        )
    # Called with gradients off, as inside a caller's `with torch.no_grad():`: it must leave them off.
    _evaluate(answer, second, y, N_("eval mode, with gradients off"), draw.seed(), grad=False)
    leaves_global_state(before_state, answer.session.state(), code("evaluate(model, x)"))
