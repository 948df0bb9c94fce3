"""Lesson 5: running statistics are buffers that forward() updates in train mode and keeps in eval mode."""

from __future__ import annotations

import copy

import torch
from torch import nn

from buflesson.checks import Fail
from buflesson.inventory import BUFFER
from buflesson.legacy_probes import (
    build_isolated,
    call_student,
    expect_kind,
    legacy_exercise,
    move,
    same,
    save_and_reload,
)
from buflesson.running_stats import seeded_batches

FEATURES, MOMENTUM = 3, 0.25

NO_GRAD_HINT = (
    "Update the buffer under torch.no_grad() (or from x.detach().mean(0)): otherwise it keeps the "
    "autograd graph of every batch it has seen."
)


def _batches() -> torch.Tensor:
    return seeded_batches(steps=4, batch_size=6, features=FEATURES, seed=5)


def _rounded(tensor: torch.Tensor) -> list[float]:
    return [round(value, 4) for value in tensor.flatten().tolist()]


def _expect_running(model: nn.Module, expected: torch.Tensor, before: torch.Tensor, batch: torch.Tensor):
    """Compare `running_mean` after one train-mode step with `expected`, naming the usual mistakes."""
    got = model.running_mean.detach()
    if got.shape == expected.shape and torch.allclose(got, expected, atol=1e-6):
        return
    batch_mean = batch.mean(0)
    if same(got, before):
        raise Fail(
            "running_mean did not change in train mode.",
            "In forward, when self.training is True, write the new value into the buffer: "
            "self.running_mean.mul_(1 - m).add_(m * x.mean(0)), or assign the new tensor to "
            "self.running_mean.",
        )
    if torch.allclose(got, (1 - MOMENTUM) * batch_mean + MOMENTUM * before):
        raise Fail(
            "running_mean moved too far: momentum weighs the old value, not the new batch.",
            "As in BatchNorm, momentum is the weight of the new batch mean: "
            "(1 - momentum) * running_mean + momentum * x.mean(0).",
        )
    if torch.allclose(got, batch_mean):
        raise Fail(
            "running_mean holds the last batch mean: momentum is not used.",
            "Blend old and new: (1 - momentum) * running_mean + momentum * x.mean(0).",
        )
    raise Fail(
        f"running_mean is {_rounded(got)}, expected {_rounded(expected)}.",
        "Average over the batch dimension (x.mean(0), one value per feature) and blend it in: "
        "(1 - momentum) * running_mean + momentum * x.mean(0).",
    )


@legacy_exercise(
    "5.1",
    "A running mean kept as a buffer",
    passed="running_mean updates in train mode, stays fixed in eval mode, is saved, and follows .to().",
)
def running_mean_module(answer: object) -> None:
    first, second, third, fourth = _batches()
    model = build_isolated(answer, FEATURES, MOMENTUM)
    expect_kind(model, "running_mean", BUFFER, sample=first)
    if not same(model.running_mean, torch.zeros(FEATURES)):
        raise Fail(
            f"running_mean starts as {model.running_mean.tolist()}.",
            f"Start from zeros, as BatchNorm does: torch.zeros({FEATURES}) for {FEATURES} features.",
        )

    model.train()
    expected = torch.zeros(FEATURES)
    for batch in (first, second):
        before = model.running_mean.detach().clone()
        out = call_student(model, batch, what="forward in train mode")
        expected = (1 - MOMENTUM) * expected + MOMENTUM * batch.mean(0)
        _expect_running(model, expected, before, batch)
        if not (
            isinstance(out, torch.Tensor)
            and out.shape == batch.shape
            and torch.allclose(out, batch - expected)
        ):
            raise Fail(
                "forward returns something else than x - running_mean.",
                "Update first, then return x - self.running_mean.",
            )

    tracked = third.clone().requires_grad_(True)
    call_student(model, tracked, what="forward on an input that requires grad")
    expect_kind(model, "running_mean", BUFFER)
    if model.running_mean.requires_grad:
        raise Fail(
            "After a forward pass on an input that requires grad, running_mean requires grad.", NO_GRAD_HINT
        )

    model.eval()
    frozen = model.running_mean.detach().clone()
    out = call_student(model, fourth, what="forward in eval mode")
    if not same(model.running_mean, frozen):
        raise Fail(
            "running_mean changed in eval mode.",
            "Update only when self.training is True: model.eval() sets it to False.",
        )
    if not isinstance(out, torch.Tensor) or not same(out, fourth - frozen):
        raise Fail("In eval mode, forward should return x - running_mean, using the stored value.")

    fresh = save_and_reload(model, lambda: build_isolated(answer, FEATURES, MOMENTUM))
    if not same(fresh.running_mean, model.running_mean):
        raise Fail("running_mean lost its value in a save/load round trip through a file.")

    default = build_isolated(answer, FEATURES)
    default.train()
    call_student(default, first, what="forward with the default momentum")
    if not torch.allclose(default.running_mean, 0.1 * first.mean(0)):
        raise Fail(
            "With the default momentum, running_mean does not match momentum=0.1.",
            "Give the momentum argument the default 0.1, as BatchNorm does.",
        )

    doubled = move(build_isolated(answer, FEATURES, MOMENTUM), torch.float64)
    if doubled.running_mean.dtype != torch.float64:
        raise Fail(f"After .double(), running_mean is {doubled.running_mean.dtype}, not float64.")
    out = call_student(doubled, first.double(), what="After .double(), forward")
    if out.dtype != torch.float64:
        raise Fail(
            f"After .double(), forward returned {out.dtype}.",
            "Compute with the buffer and the input only, so the dtype follows the model.",
        )
    on_meta = move(build_isolated(answer, FEATURES, MOMENTUM), torch.device("meta"))
    if on_meta.running_mean.device.type != "meta":
        raise Fail("After .to('meta'), running_mean stayed behind.")


class _Net(nn.Module):
    """A small network with BatchNorm (running statistics) and Dropout (random in train mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.norm(self.hidden(x)))))


def _trained_net() -> _Net:
    """A `_Net` whose running statistics have seen a few batches."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = _Net()
        with torch.no_grad():
            for batch in seeded_batches(steps=5, batch_size=8, features=3, seed=7):
                model(batch)
    return model


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: buf.detach().clone() for name, buf in model.named_buffers()}


@legacy_exercise(
    "5.2",
    "Evaluate without touching the running statistics",
    passed="evaluate used the stored statistics, changed no buffer, tracked no gradient, restored the mode.",
)
def evaluate(answer: object) -> None:
    if not callable(answer) or isinstance(answer, (type, nn.Module)):
        raise Fail(
            f"Expected the function evaluate, got {type(answer).__name__}.",
            "Pass the function itself, without calling it: check('5.2', evaluate).",
        )
    x = seeded_batches(steps=1, batch_size=5, features=3, seed=8)[0]
    model = _trained_net()
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        expected = reference(x)
    before = _buffers(model)
    model.train()
    with torch.random.fork_rng(devices=[]):
        out = call_student(answer, model, x, what="evaluate(model, x)")

    changed = [name for name, buf in model.named_buffers() if not same(buf, before[name])]
    if changed:
        if isinstance(out, torch.Tensor) and not out.requires_grad:
            raise Fail(
                f"evaluate changed {', '.join(changed)}.",
                "torch.no_grad() stops gradient tracking, not BatchNorm's running statistics: "
                "call model.eval() before the forward pass.",
            )
        raise Fail(
            f"evaluate changed {', '.join(changed)}: the model ran in train mode.",
            "Call model.eval() before the forward pass: in train mode BatchNorm updates its buffers.",
        )
    if not isinstance(out, torch.Tensor):
        raise Fail(f"evaluate returned {type(out).__name__}, not the model's output.", "Return model(x).")
    if out.shape != expected.shape or not torch.allclose(out.detach(), expected, atol=1e-6):
        raise Fail(
            "evaluate returned other values than the model gives in eval mode.",
            "Return model(x), computed after model.eval().",
        )
    if out.requires_grad:
        raise Fail(
            "The output requires grad: evaluate built an autograd graph nobody uses.",
            "Run the forward pass inside `with torch.no_grad():`.",
        )
    if not model.training:
        raise Fail(
            "After evaluate, the model is still in eval mode, though it was in train mode before.",
            "Put the mode back at the end: was_training = model.training first, "
            "model.train(was_training) last.",
        )
    model.eval()
    call_student(answer, model, x, what="evaluate(model, x) on a model in eval mode")
    if model.training:
        raise Fail(
            "evaluate switched a model that was in eval mode to train mode.",
            "Restore the mode it had, not train mode: was_training = model.training, then "
            "model.train(was_training).",
        )
