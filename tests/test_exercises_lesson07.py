"""Lesson 7 checks: 7.1 loads a version-1 checkpoint by hand, 7.2 migrates it in _load_from_state_dict."""

import pytest
import torch
from torch import nn

from buflesson import SensorV1, SensorV2, check
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED


def load_right(path):
    state = torch.load(path, weights_only=True)
    state["mean"] = torch.full((3,), SensorV1.CENTER)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_strict_false(path):
    model = SensorV2()
    model.load_state_dict(torch.load(path, weights_only=True), strict=False)
    return model


def load_strict_false_then_fill(path):
    model = SensorV2()
    model.load_state_dict(torch.load(path, weights_only=True), strict=False)
    model.mean.fill_(SensorV1.CENTER)
    return model


def load_wrong_value(path):
    state = torch.load(path, weights_only=True)
    state["mean"] = torch.ones(3)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_forgets_weights(path):
    model = SensorV2()
    model.mean.fill_(SensorV1.CENTER)
    return model


def load_into_v1(path):
    model = SensorV1()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


def load_forgets_return(path):
    load_right(path)


def load_wrong_shape(path):
    state = torch.load(path, weights_only=True)
    state["mean"] = torch.tensor(SensorV1.CENTER)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_not_yet(path):
    raise NotImplementedError


def test_7_1_right_answer_passes():
    result = check("7.1", load_right)
    assert result.status == PASSED, str(result)


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (load_strict_false, "mean still holds zeros", "state['mean'] = torch.full"),
        (load_strict_false_then_fill, "lacks 'linear.bias' loaded without an error", "strict=True"),
        (
            load_wrong_value,
            "but version 1 subtracted SensorV1.CENTER = 20.0",
            "torch.full((3,), SensorV1.CENTER)",
        ),
        (load_forgets_weights, "linear.weight was not restored", "load_state_dict"),
        (load_into_v1, "returned SensorV1, not a SensorV2", "SensorV2()"),
        (load_forgets_return, "returned None", "return model"),
        (load_wrong_shape, "size mismatch for mean", ""),
        (SensorV2, "Expected a function load_v1(path), got type", "without calling it"),
        (42, "Expected a function load_v1(path), got int", ""),
    ],
)
def test_7_1_names_each_mistake(answer, message, hint):
    result = check("7.1", answer)
    assert result.status == FAILED
    assert message in result.message, result.message
    assert hint in result.hint


def test_7_1_placeholder_none_and_unwritten_body():
    assert check("7.1", ...).status == NOT_ATTEMPTED
    assert check("7.1", load_not_yet).status == NOT_ATTEMPTED
    assert check("7.1", None).status == FAILED


def _fill(state_dict, prefix, local_metadata):
    version = local_metadata.get("version")
    if (version is None or version < 2) and prefix + "mean" not in state_dict:
        state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)


class Migrating(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        _fill(state_dict, prefix, local_metadata)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class NoVersion(Migrating):
    _version = 1


class PlaceholderVersion(Migrating):
    _version = ...


class FillsWheneverMissing(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        state_dict.setdefault(prefix + "mean", torch.full((3,), SensorV1.CENTER))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class AlwaysOverwrites(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class NoPrefix(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        version = local_metadata.get("version")
        if (version is None or version < 2) and "mean" not in state_dict:
            state_dict["mean"] = torch.full((3,), SensorV1.CENTER)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class IndexesMetadata(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        if local_metadata["version"] < 2 and prefix + "mean" not in state_dict:
            state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class ForgetsSuper(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        _fill(state_dict, prefix, local_metadata)


class NoMigration(SensorV2):
    _version = 2


class NotASensor(nn.Module):
    pass


class MigrationNotYet(SensorV2):
    _version = ...

    def _load_from_state_dict(self, *args):
        raise NotImplementedError


def test_7_2_right_answer_passes():
    result = check("7.2", Migrating)
    assert result.status == PASSED, str(result)


@pytest.mark.parametrize(
    "answer, message, hint",
    [
        (NoMigration, 'Missing key(s) in state_dict: "mean"', "local_metadata.get('version')"),
        (ForgetsSuper, "nothing copied it into the model", "super()._load_from_state_dict(state_dict"),
        (IndexesMetadata, "without version metadata (a plain dict) raised KeyError", "treat None as an old"),
        (NoPrefix, "submodule '0' raised RuntimeError", "prefix + 'mean'"),
        (NoVersion, "record version 1", "_version = 2"),
        (PlaceholderVersion, "record version Ellipsis", "_version = 2"),
        (AlwaysOverwrites, "came back with mean = [20.0, 20.0, 20.0]", "Only fill 'mean'"),
        (FillsWheneverMissing, "version-2 checkpoint without 'mean' loaded without an error", "below 2"),
        (NotASensor, "not a subclass of SensorV2", "class MigratingSensor(SensorV2)"),
        (Migrating(), "Got a model instance", "without calling it"),
    ],
)
def test_7_2_names_each_mistake(answer, message, hint):
    result = check("7.2", answer)
    assert result.status == FAILED
    assert message in result.message, result.message
    assert hint in result.hint


def test_7_2_placeholder_none_and_unwritten_body():
    assert check("7.2", ...).status == NOT_ATTEMPTED
    assert check("7.2", MigrationNotYet).status == NOT_ATTEMPTED
    assert check("7.2", None).status == FAILED


def test_checks_leave_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check("7.1", load_right)
    check("7.2", Migrating)
    assert torch.equal(torch.rand(3), expected)
