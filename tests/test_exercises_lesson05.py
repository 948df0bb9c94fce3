"""Lesson 5 checks: 5.1 a running mean kept as a buffer, 5.2 evaluating without touching the statistics."""

import pytest
import torch
from torch import nn

from buflesson import check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED


class RunningMean(nn.Module):
    def __init__(self, features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(features))

    def update(self, x):
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean(0))

    def forward(self, x):
        if self.training:
            self.update(x)
        return x - self.running_mean


class Assigned(RunningMean):
    def update(self, x):
        self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * x.detach().mean(0)


class Interpolated(RunningMean):
    def update(self, x):
        with torch.no_grad():
            self.running_mean += self.momentum * (x.mean(0) - self.running_mean)


class WithNnBuffer(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        self.running_mean = nn.Buffer(torch.zeros(features))


class Plain(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        del self.running_mean
        self.running_mean = torch.zeros(features)


class AsParameter(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        del self.running_mean
        self.running_mean = nn.Parameter(torch.zeros(features), requires_grad=False)


class NotPersistent(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        self.register_buffer("running_mean", torch.zeros(features), persistent=False)


class InForward(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        del self.running_mean
        self.features = features

    def forward(self, x):
        if not hasattr(self, "running_mean"):
            self.register_buffer("running_mean", torch.zeros(self.features))
        return super().forward(x)


class StartsAtOne(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        self.running_mean.fill_(1.0)


class NeverUpdates(RunningMean):
    def update(self, x):
        running = self.running_mean.clone()
        running.mul_(1 - self.momentum).add_(self.momentum * x.mean(0))


class ReversedMomentum(RunningMean):
    def update(self, x):
        with torch.no_grad():
            self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * x.mean(0))


class LastBatch(RunningMean):
    def update(self, x):
        with torch.no_grad():
            self.running_mean.copy_(x.mean(0))


class OverAll(RunningMean):
    def update(self, x):
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean())


class KeepsGraph(RunningMean):
    def update(self, x):
        self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * x.mean(0)


class InPlaceKeepsGraph(RunningMean):
    def update(self, x):
        self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean(0))


class UpdatesInEval(RunningMean):
    def forward(self, x):
        self.update(x)
        return x - self.running_mean


class ReturnsInput(RunningMean):
    def forward(self, x):
        super().forward(x)
        return x


class DefaultHalf(RunningMean):
    def __init__(self, features, momentum=0.5):
        super().__init__(features, momentum)


class NotYet(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        raise NotImplementedError


@pytest.mark.parametrize("answer", [RunningMean, Assigned, Interpolated, WithNnBuffer])
def test_5_1_accepts_in_place_and_assigned_updates(answer):
    result = check("5.1", answer)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (Plain, "plain tensor attribute", "register_buffer('running_mean'"),
        (AsParameter, "is an nn.Parameter", "Fixed state belongs in a buffer"),
        (NotPersistent, "persistent=False", "Drop persistent=False"),
        (InForward, "created inside forward", "Create it once in __init__"),
        (StartsAtOne, "running_mean starts as [1.0, 1.0, 1.0]", "Start from zeros"),
        (NeverUpdates, "did not change in train mode", "self.training is True"),
        (ReversedMomentum, "momentum weighs the old value", "weight of the new batch mean"),
        (LastBatch, "holds the last batch mean", "Blend old and new"),
        (OverAll, "running_mean is [", "x.mean(0)"),
        (KeepsGraph, "running_mean requires grad", "torch.no_grad()"),
        (InPlaceKeepsGraph, "running_mean requires grad", "torch.no_grad()"),
        (UpdatesInEval, "changed in eval mode", "self.training is True"),
        (ReturnsInput, "something else than x - running_mean", "Update first"),
        (DefaultHalf, "default momentum", "default 0.1"),
    ],
)
def test_5_1_names_each_mistake(answer, message, hint):
    result = check("5.1", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_5_1_placeholder_and_wrong_types():
    assert check("5.1", ...).status == NOT_ATTEMPTED
    assert check("5.1", NotYet).status == NOT_ATTEMPTED
    assert check("5.1", None).status == FAILED
    assert "not the class" in check("5.1", RunningMean(3)).message
    assert check("5.1", nn.BatchNorm1d).status == FAILED


def evaluate(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was_training)
    return out


def evaluate_inference_mode(model, x):
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return model(x)
    finally:
        model.train(was_training)


def only_no_grad(model, x):
    with torch.no_grad():
        return model(x)


def plain_call(model, x):
    return model(x)


def eval_with_grad(model, x):
    was_training = model.training
    model.eval()
    out = model(x)
    model.train(was_training)
    return out


def stays_in_eval(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def always_train_after(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train()
    return out


def forgets_return(model, x):
    evaluate(model, x)


def wrong_values(model, x):
    return evaluate(model, x).sum()


def not_yet(model, x):
    raise NotImplementedError


@pytest.mark.parametrize("answer", [evaluate, evaluate_inference_mode])
def test_5_2_accepts_eval_with_no_grad_and_restored_mode(answer):
    result = check("5.2", answer)
    assert result.status == PASSED, result


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (only_no_grad, "evaluate changed norm.running_mean", "torch.no_grad() stops gradient tracking"),
        (plain_call, "the model ran in train mode", "model.eval()"),
        (eval_with_grad, "The output requires grad", "torch.no_grad()"),
        (stays_in_eval, "still in eval mode", "model.train(was_training)"),
        (always_train_after, "switched a model that was in eval mode", "not train mode"),
        (forgets_return, "returned NoneType", "Return model(x)"),
        (wrong_values, "other values than the model gives in eval mode", "model.eval()"),
    ],
)
def test_5_2_names_each_mistake(answer, message, hint):
    result = check("5.2", answer)
    assert result.status == FAILED
    assert message in result.message and hint in result.hint


def test_5_2_placeholder_and_wrong_types():
    assert check("5.2", ...).status == NOT_ATTEMPTED
    assert check("5.2", not_yet).status == NOT_ATTEMPTED
    assert check("5.2", None).status == FAILED
    assert check("5.2", nn.BatchNorm1d(3)).status == FAILED


@pytest.mark.parametrize("exercise_id, answer", [("5.1", RunningMean), ("5.2", plain_call)])
def test_5_checks_leave_the_students_random_state_alone(exercise_id, answer):
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check(exercise_id, answer)
    assert torch.equal(torch.rand(1), expected)
