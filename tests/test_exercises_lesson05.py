"""Lesson 5 checks: 5.1 a running mean kept as a buffer, 5.2 evaluating without touching the statistics."""

import copy

import pytest
import torch
from torch import nn

from buflesson import check
from buflesson.devices import checking_device
from buflesson.results import FAILED, NOT_ATTEMPTED
from buflesson.standin import STANDIN

from corpus import Wrong, verdict_tests

# --- 5.1 right answers -------------------------------------------------------------------------


class RunningMean(nn.Module):  # the answer notebook's answer
    def __init__(self, features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(features))

    def forward(self, x):
        if self.training:
            batch_mean = x.detach().mean(0)
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * batch_mean)
        return x - self.running_mean


class Assigned(RunningMean):  # a new tensor assigned to the buffer's name
    def forward(self, x):
        if self.training:
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * x.detach().mean(0)
        return x - self.running_mean


class Interpolated(RunningMean):  # an equivalent formula, under no_grad, with a helper method
    def update(self, x):
        with torch.no_grad():
            self.running_mean += self.momentum * (x.mean(dim=0) - self.running_mean)

    def forward(self, x):
        if self.training:
            self.update(x)
        return x - self.running_mean


class WithNnBuffer(nn.Module):  # nn.Buffer, lerp_, and a harmless extra counter
    def __init__(self, features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.running_mean = nn.Buffer(torch.zeros(features))
        self.seen = nn.Buffer(torch.tensor(0))

    @torch.no_grad()
    def _track(self, x):
        self.running_mean.lerp_(x.mean(0), self.momentum)
        self.seen += 1

    def forward(self, x):
        if self.training:
            self._track(x)
        return x - self.running_mean


class SliceAssigned(RunningMean):  # slice assignment writes into the buffer
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean[:] = (1 - self.momentum) * self.running_mean + self.momentum * x.mean(0)
        return x - self.running_mean


# --- 5.1 wrong answers -------------------------------------------------------------------------


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


class ThreeFeatures(RunningMean):  # the size hard-coded
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        self.register_buffer("running_mean", torch.zeros(3))


class RowBuffer(RunningMean):  # shape (1, features): the right count, an extra dimension
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        self.register_buffer("running_mean", torch.zeros(1, features))


class SixRows(RunningMean):  # the batch size hard-coded
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.sum(0) / 6)
        return x - self.running_mean


class NeverUpdates(RunningMean):  # updates a copy
    def forward(self, x):
        if self.training:
            running = self.running_mean.clone()
            running.mul_(1 - self.momentum).add_(self.momentum * x.detach().mean(0))
        return x - self.running_mean


class ConditionReversed(RunningMean):
    def forward(self, x):
        if not self.training:
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean(0))
        return x - self.running_mean


class ReversedMomentum(RunningMean):
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * x.mean(0))
        return x - self.running_mean


class LastBatch(RunningMean):
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.copy_(x.mean(0))
        return x - self.running_mean


class FixedMomentum(RunningMean):  # ignores the argument
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(0.9).add_(0.1 * x.mean(0))
        return x - self.running_mean


class OverAll(RunningMean):
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean())
        return x - self.running_mean


class KeepsGraph(RunningMean):
    def forward(self, x):
        if self.training:
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * x.mean(0)
        return x - self.running_mean


class InPlaceKeepsGraph(RunningMean):  # what the old first hint, followed literally, gave
    def forward(self, x):
        if self.training:
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean(0))
        return x - self.running_mean


class AllUnderNoGrad(RunningMean):  # the output no longer carries gradients
    def forward(self, x):
        with torch.no_grad():
            return super().forward(x)


class UpdatesInEval(RunningMean):
    def forward(self, x):
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean(0))
        return x - self.running_mean


class ReturnsInput(RunningMean):
    def forward(self, x):
        super().forward(x)
        return x


class ReturnsBeforeUpdate(RunningMean):
    def forward(self, x):
        out = x - self.running_mean
        super().forward(x)
        return out


class DefaultHalf(RunningMean):
    def __init__(self, features, momentum=0.5):
        super().__init__(features, momentum)


class RebuildsTensor(RunningMean):  # a new float32 CPU tensor on every update
    def forward(self, x):
        if self.training:
            new = (1 - self.momentum) * self.running_mean + self.momentum * x.detach().mean(0)
            self.running_mean = torch.tensor(new.tolist())
        return x - self.running_mean


class MovesToCpu(RunningMean):  # the new value made on the CPU, whatever the model's device
    def forward(self, x):
        if self.training:
            new = (1 - self.momentum) * self.running_mean + self.momentum * x.detach().mean(0)
            self.running_mean = new.to("cpu")
        return x - self.running_mean


class SwitchesGradOff(RunningMean):
    def forward(self, x):
        torch.set_grad_enabled(False)
        return super().forward(x)


class OverFeatures(RunningMean):  # the mean over the wrong dimension
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * x.mean(1))
        return x - self.running_mean


class NotYet(RunningMean):
    def __init__(self, features, momentum=0.1):
        super().__init__(features, momentum)
        raise NotImplementedError


# --- 5.2 ---------------------------------------------------------------------------------------


def evaluate(model, x):  # the answer notebook's answer
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)


def evaluate_toggling_requires_grad(model, x):  # switches every parameter off, then on again
    for p in model.parameters():
        p.requires_grad_(False)
    out = evaluate(model, x)
    for p in model.parameters():
        p.requires_grad_(True)
    return out


def evaluate_keeping_the_output(model, x):  # stores the output on the model
    model.last_output = evaluate(model, x)
    return model.last_output


def evaluate_switching_grad_on(model, x):  # turns gradients on at the end, whatever they were
    out = evaluate(model, x)
    torch.set_grad_enabled(True)
    return out


def evaluate_inference_mode(model, x):
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = model(x)
    model.train(was_training)
    return out


def evaluate_a_copy(model, x):  # the model itself is never touched
    frozen = copy.deepcopy(model).eval()
    with torch.no_grad():
        return frozen(x)


@torch.no_grad()
def evaluate_decorated(model, x):
    mode = model.training
    model.train(False)
    out = model.forward(x)
    if mode:
        model.train()
    return out


def evaluate_each_submodule(model, x):  # restores every submodule's own mode
    modes = {module: module.training for module in model.modules()}
    model.eval()
    with torch.no_grad():
        out = model(x)
    for module, mode in modes.items():
        module.training = mode
    return out


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


def grad_switched_off(model, x):
    was_training = model.training
    model.eval()
    torch.set_grad_enabled(False)
    out = model(x)
    model.train(was_training)
    return out


def freezes_parameters(model, x):
    was_training = model.training
    model.eval()
    model.requires_grad_(False)
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


def flag_only(model, x):  # restores the top-level flag only
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.training = was_training
    return out


def restores_buffers(model, x):  # runs in train mode, then puts the statistics back
    saved = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        out = model(x)
    model.load_state_dict(saved)
    return out


def forgets_return(model, x):
    evaluate(model, x)


def returns_sum(model, x):
    return evaluate(model, x).sum()


def returns_softmax(model, x):
    return evaluate(model, x).softmax(-1)


def not_yet(model, x):
    raise NotImplementedError


RIGHT = {
    "5.1": [RunningMean, Assigned, Interpolated, WithNnBuffer, SliceAssigned],
    "5.2": [evaluate, evaluate_inference_mode, evaluate_a_copy, evaluate_decorated, evaluate_each_submodule],
}

WRONG = {
    "5.1": [
        Wrong(Plain, "'running_mean' is a plain tensor attribute", "register_buffer('running_mean'"),
        Wrong(AsParameter, "'running_mean' is an nn.Parameter", "Fixed state belongs in a buffer"),
        Wrong(NotPersistent, "persistent=False", "as a persistent buffer"),
        Wrong(InForward, "created inside forward", "Create it once in __init__"),
        Wrong(StartsAtOne, "running_mean starts as [1.0", "torch.zeros(features)"),
        Wrong(ThreeFeatures, "running_mean has shape (3,)", "never a fixed size"),
        Wrong(RowBuffer, "running_mean has shape (1, ", "Keep one dimension: torch.zeros(features)"),
        Wrong(SixRows, "running_mean is [", "x.mean(0)"),
        Wrong(NeverUpdates, "did not change in train mode", "with torch.no_grad(): self.running_mean.mul_"),
        Wrong(ConditionReversed, "the condition is the wrong way round", "self.training is True"),
        Wrong(ReversedMomentum, "momentum weighed the old value", "weight of the new batch mean"),
        Wrong(LastBatch, "holds the last batch mean", "Blend old and new"),
        Wrong(FixedMomentum, "used momentum 0.1", "self.momentum"),
        Wrong(OverAll, "averaged all values of the batch into one number", "x.mean(0)"),
        Wrong(OverFeatures, "must match the size of tensor b", "from the wrong dimension"),
        Wrong(KeepsGraph, "running_mean requires grad", "torch.no_grad()"),
        Wrong(InPlaceKeepsGraph, "running_mean requires grad", "torch.no_grad()"),
        Wrong(AllUnderNoGrad, "no gradient can flow back", "only the update"),
        Wrong(UpdatesInEval, "changed in eval mode", "self.training is True"),
        Wrong(ReturnsInput, "returned x unchanged", "x - self.running_mean"),
        Wrong(ReturnsBeforeUpdate, "before this batch's update", "Update first"),
        Wrong(DefaultHalf, "did not update with momentum 0.1", "default 0.1"),
        Wrong(RebuildsTensor, "After model.double(), a train-mode step left running_mean as torch.float32"),
        Wrong(MovesToCpu, "), forward raised", ""),  # the error and hint depend on the device
        Wrong(SwitchesGradOff, "changed gradient tracking", "torch.no_grad()"),
        Wrong(RunningMean(3), "not the class", "check(..., RunningMean)"),
        Wrong(nn.BatchNorm1d, "the update used momentum 0.1", "self.momentum"),  # momentum lands in eps
    ],
    "5.2": [
        Wrong(
            evaluate_toggling_requires_grad, "though the caller had frozen it", "Leave the parameters alone"
        ),
        Wrong(
            evaluate_keeping_the_output, "holds tensors it did not hold before: last_output", "store nothing"
        ),
        Wrong(evaluate_switching_grad_on, "changed gradient tracking", "torch.no_grad()"),
        Wrong(only_no_grad, "evaluate changed norm.running_mean", "torch.no_grad() stops gradient tracking"),
        Wrong(plain_call, "the model ran in train mode", "Call model.eval()"),
        Wrong(restores_buffers, "other values than the model gives in eval mode", "model.eval()"),
        Wrong(eval_with_grad, "The output requires grad", "torch.no_grad()"),
        Wrong(grad_switched_off, "changed gradient tracking", "never torch.set_grad_enabled(False)"),
        Wrong(freezes_parameters, "no longer require grad", "Leave the parameters alone"),
        Wrong(stays_in_eval, "still in eval mode", "model.train(was_training)"),
        Wrong(flag_only, "norm, drop, out are still in eval mode", "model.train(was_training)"),
        Wrong(always_train_after, "switched a model that was in eval mode", "not train mode"),
        Wrong(forgets_return, "returned no value (None)", "Return the output of model(x)"),
        Wrong(returns_sum, "a tensor of shape ()", "model(x) itself"),
        Wrong(returns_softmax, "other values than the model gives in eval mode", "model.eval()"),
        Wrong(nn.BatchNorm1d(3), "Expected the function evaluate", "check('5.2', evaluate)"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


def test_no_message_shows_a_placeholder_or_a_handle():
    for exercise_id, cases in WRONG.items():
        for case in cases:
            result = check(exercise_id, case.answer)
            for text in (result.message, result.hint):
                assert "Ellipsis" not in text and "<Remote" not in text, (case, text)


def test_5_1_placeholder_and_wrong_types():
    assert check("5.1", ...).status == NOT_ATTEMPTED
    assert check("5.1", NotYet).status == NOT_ATTEMPTED
    assert check("5.1", None).status == FAILED


def test_5_2_placeholder_and_unwritten_body():
    assert check("5.2", ...).status == NOT_ATTEMPTED
    assert check("5.2", not_yet).status == NOT_ATTEMPTED
    assert check("5.2", None).status == FAILED


def test_5_checks_leave_the_students_random_state_alone():
    for exercise_id, answer in (("5.1", RunningMean), ("5.2", evaluate), ("5.2", plain_call)):
        torch.manual_seed(123)
        expected = torch.rand(1)
        torch.manual_seed(123)
        check(exercise_id, answer)
        assert torch.equal(torch.rand(1), expected), (exercise_id, answer)


class ReadsValues(RunningMean):  # .item() in the update: a GPU runs it, the stand-in holds no values
    def forward(self, x):
        if self.training:
            with torch.no_grad():
                batch = x.mean(0)
                for i in range(batch.shape[0]):
                    old = self.running_mean[i].item()
                    self.running_mean[i] = (1 - self.momentum) * old + self.momentum * batch[i].item()
        return x - self.running_mean


@pytest.mark.skipif(checking_device() != STANDIN, reason="a limit of the stand-in: a GPU runs it")
def test_5_1_says_so_when_the_stand_in_cannot_read_a_value():
    result = check("5.1", ReadsValues)
    assert result.status == FAILED, str(result)
    assert "buflesson's GPU stand-in holds no values" in result.message
    assert "a GPU would)" in result.message and ".item()" in result.hint
