"""Lesson 7 checks: 7.1 loads a version-1 checkpoint by hand, 7.2 migrates it in _load_from_state_dict."""

import os

import torch
from torch import nn

from buflesson import SensorV1, SensorV2, check, sensor_readings, sensor_v1_model
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests

# --- 7.1 right answers -------------------------------------------------------------------------


def load_v1(path):  # the answer notebook's answer
    state = torch.load(path)
    state["mean"] = torch.full((3,), SensorV1.CENTER)
    sensor = SensorV2()
    sensor.load_state_dict(state)
    return sensor


def load_setdefault(path):
    model = SensorV2()
    state = torch.load(path, weights_only=True, map_location="cpu")
    state.setdefault("mean", model.mean.new_full((3,), SensorV1.CENTER))
    model.load_state_dict(state, strict=True)
    return model


def load_merged_dict(path):  # a plain dict, a float64 value: load_state_dict copies into the buffer
    model = SensorV2()
    model.load_state_dict({**torch.load(path), "mean": torch.tensor([20.0, 20.0, 20.0], dtype=torch.float64)})
    return model.eval()


def load_checking_the_result(path):  # strict=False, but nothing else is forgiven
    model = SensorV2()
    result = model.load_state_dict(torch.load(path), strict=False)
    if result.missing_keys != ["mean"] or result.unexpected_keys:
        raise RuntimeError(f"not a version-1 checkpoint: {result}")
    with torch.no_grad():
        model.mean.fill_(SensorV1.CENTER)
    return model


def load_assigning(path):  # assign=True: the model takes the loaded tensors themselves
    model = SensorV2()
    state = torch.load(path, map_location="cpu")
    state["mean"] = torch.full_like(model.mean, SensorV1.CENTER)
    model.load_state_dict(state, assign=True)
    return model


def load_from_its_folder(path):  # changes the working directory; the check puts it back
    os.chdir(os.path.dirname(path))
    state = torch.load(os.path.basename(path), weights_only=True)
    state["mean"] = torch.full((3,), SensorV1.CENTER)
    model = SensorV2()
    model.load_state_dict(state)
    return model


# --- 7.1 wrong answers -------------------------------------------------------------------------


def load_assigning_ints(path):  # assign=True takes the int64 tensor itself
    model = SensorV2()
    state = torch.load(path)
    state["mean"] = torch.full((3,), 20)
    model.load_state_dict(state, assign=True)
    return model


def load_as_double(path):
    return load_v1(path).double()


def load_frozen(path):
    model = load_v1(path)
    model.linear.weight.requires_grad_(False)
    return model


def load_and_rewrite(path):  # saves the filled state over the user's file
    state = torch.load(path)
    state["mean"] = torch.full((3,), SensorV1.CENTER)
    torch.save(state, path)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_seeded(path):
    torch.manual_seed(0)
    return load_v1(path)


def load_strict_false(path):
    model = SensorV2()
    model.load_state_dict(torch.load(path, weights_only=True), strict=False)
    return model


def load_strict_false_then_fill(path):
    model = SensorV2()
    model.load_state_dict(torch.load(path, weights_only=True), strict=False)
    model.mean.fill_(SensorV1.CENTER)
    return model


def load_falls_back(path):  # strict first, strict=False when that fails
    model = SensorV2()
    state = torch.load(path)
    state["mean"] = torch.full((3,), SensorV1.CENTER)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        model.load_state_dict(state, strict=False)
    return model


def load_wrong_value(path):
    state = torch.load(path, weights_only=True)
    state["mean"] = torch.ones(3)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_fitted_mean(path):  # close to 20, but not what version 1 subtracted
    state = torch.load(path)
    state["mean"] = sensor_readings().mean(0)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_forgets_weights(path):
    model = SensorV2()
    model.mean.fill_(SensorV1.CENTER)
    return model


def load_lesson_weights(path):  # the lesson's seeded model, not the file
    state = sensor_v1_model().state_dict()
    state["mean"] = torch.full((3,), SensorV1.CENTER)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_into_v1(path):
    model = SensorV1()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


def load_forgets_return(path):
    load_v1(path)


def load_returns_state(path):
    state = torch.load(path)
    state["mean"] = torch.full((3,), SensorV1.CENTER)
    return state


def load_wrong_shape(path):
    state = torch.load(path, weights_only=True)
    state["mean"] = torch.tensor(SensorV1.CENTER)
    model = SensorV2()
    model.load_state_dict(state)
    return model


def load_not_yet(path):
    raise NotImplementedError


# --- 7.2 right answers -------------------------------------------------------------------------


class MigratingSensor(SensorV2):  # the answer notebook's answer
    _version = 2

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        version = local_metadata.get("version")
        key = prefix + "mean"
        if (version is None or version < 2) and key not in state_dict:
            state_dict[key] = torch.full((3,), SensorV1.CENTER)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class MigratesWithArgs(SensorV2):  # *args, and a helper method
    _version = 2

    @staticmethod
    def _is_old(local_metadata):
        return local_metadata.get("version", 1) < 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        if self._is_old(local_metadata) and f"{prefix}mean" not in state_dict:
            state_dict[f"{prefix}mean"] = self.mean.new_full(self.mean.shape, SensorV1.CENTER)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class VersionThree(SensorV2):  # any version from 2 on tells the files apart
    _version = 3

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *rest):
        old = (local_metadata.get("version") or 0) < 2
        if old:
            state_dict.setdefault(prefix + "mean", torch.full((3,), float(SensorV1.CENTER)))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *rest)


class HookedSensor(SensorV2):  # the public pre-hook instead of the method
    _version = 2

    def __init__(self):
        super().__init__()
        self.register_load_state_dict_pre_hook(self._fill)

    @staticmethod
    def _fill(module, state_dict, prefix, local_metadata, *args):
        version = local_metadata.get("version")
        if (version is None or version < 2) and prefix + "mean" not in state_dict:
            state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)


class VersionOnTheInstance(SensorV2):  # _version set in __init__: state_dict() reads self._version
    def __init__(self):
        super().__init__()
        self._version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        if local_metadata.get("version") in (None, 1) and prefix + "mean" not in state_dict:
            state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


# --- 7.2 wrong answers -------------------------------------------------------------------------


def _fill(state_dict, prefix, local_metadata, value=None):
    version = local_metadata.get("version")
    if (version is None or version < 2) and prefix + "mean" not in state_dict:
        state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER) if value is None else value


class ReadsRootVersion(SensorV2):  # the root's version, not the sensor's own local_metadata
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        version = getattr(state_dict, "_metadata", {}).get("", {}).get("version")
        if (version is None or version < 2) and prefix + "mean" not in state_dict:
            state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class NoVersion(MigratingSensor):
    _version = 1


class PlaceholderVersion(MigratingSensor):
    _version = ...


class TextVersion(MigratingSensor):
    _version = "2"


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


class OverwritesOld(SensorV2):  # checks the version, not whether the key is there
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        version = local_metadata.get("version")
        if version is None or version < 2:
            state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class NoPrefix(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        _fill(state_dict, "", local_metadata)
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


class FillsZeros(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        _fill(state_dict, prefix, local_metadata, value=torch.zeros(3))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class FillsScalar(SensorV2):
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        _fill(state_dict, prefix, local_metadata, value=torch.tensor(SensorV1.CENTER))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


class ForgivesEverything(SensorV2):  # strict=False handed to PyTorch's loading
    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *rest):
        _fill(state_dict, prefix, local_metadata)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, *rest)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return super().load_state_dict(state_dict, strict=False, assign=assign)


class ClearsMissing(MigratingSensor):  # drops "mean" from the missing keys, whatever the version
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, *rest):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, *rest)
        if prefix + "mean" in missing_keys:
            missing_keys.remove(prefix + "mean")


class OnlyWithoutVersion(MigratingSensor):  # a version-1 file records version 1, not None
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        if local_metadata.get("version") is None and prefix + "mean" not in state_dict:
            state_dict[prefix + "mean"] = torch.full((3,), SensorV1.CENTER)
        SensorV2._load_from_state_dict(self, state_dict, prefix, local_metadata, *args)


class NoMigration(SensorV2):
    _version = 2


class NotASensor(nn.Module):
    pass


class MigrationNotYet(SensorV2):
    _version = ...

    def _load_from_state_dict(self, *args):
        raise NotImplementedError


RIGHT = {
    "7.1": [
        load_v1,
        load_setdefault,
        load_merged_dict,
        load_checking_the_result,
        load_assigning,
        load_from_its_folder,
    ],
    "7.2": [MigratingSensor, MigratesWithArgs, VersionThree, HookedSensor, VersionOnTheInstance],
}

WRONG = {
    "7.1": [
        Wrong(load_strict_false, "mean still holds zeros", "state['mean'] = torch.full"),
        Wrong(load_strict_false_then_fill, "lacks 'linear.bias' loaded without an error", "strict=True"),
        Wrong(load_falls_back, "lacks 'linear.bias' loaded without an error", "strict=True"),
        Wrong(
            load_wrong_value,
            "mean holds [1.0, 1.0, 1.0], but version 1 subtracted SensorV1.CENTER = 20.0",
            "torch.full((3,), SensorV1.CENTER)",
        ),
        Wrong(load_fitted_mean, "but version 1 subtracted SensorV1.CENTER = 20.0", "[20.0, 20.0, 20.0]"),
        Wrong(load_forgets_weights, "linear.weight was not restored", "load_state_dict(state)"),
        Wrong(load_lesson_weights, "linear.weight was not restored", "load_state_dict(state)"),
        Wrong(load_into_v1, "returned a SensorV1, not a SensorV2", "SensorV2()"),
        Wrong(load_forgets_return, "returned None", "return model"),
        Wrong(load_returns_state, "returned an OrderedDict, not a SensorV2", "return the model"),
        Wrong(load_wrong_shape, "size mismatch for mean", "shape, (3,)"),
        Wrong(SensorV2, "Expected the function load_v1, got the class SensorV2", "without calling it"),
        Wrong(
            load_assigning_ints,
            "mean has dtype int64; SensorV2() gives it float32",
            "assign=True",
        ),
        Wrong(load_as_double, "has dtype float64", "convert nothing"),
        Wrong(load_frozen, "linear.weight has requires_grad False", "Leave requires_grad"),
        Wrong(load_and_rewrite, "changed the checkpoint file at path", "write nothing back"),
        Wrong(load_seeded, "changed torch's random seed", "leave torch's seed alone"),
    ],
    "7.2": [
        Wrong(NoMigration, 'Missing key(s) in state_dict: "mean"', "local_metadata.get('version')"),
        Wrong(OnlyWithoutVersion, "Loading a version-1 checkpoint raised RuntimeError", "below 2"),
        Wrong(ForgetsSuper, "nothing copied it into the model", "super()._load_from_state_dict(state_dict"),
        Wrong(FillsZeros, "filled mean with [0.0, 0.0, 0.0]", "torch.full((3,), SensorV1.CENTER)"),
        Wrong(FillsScalar, "size mismatch for mean", "shape, (3,)"),
        Wrong(IndexesMetadata, "plain dict (no version metadata) raised KeyError", "treat None as an old"),
        Wrong(NoPrefix, "submodule 'sensor' raised RuntimeError", "prefix + 'mean'"),
        Wrong(NoVersion, "record version 1", "_version = 2"),
        Wrong(ReadsRootVersion, "without 'sensor.mean' loaded without an error", "the sensor's own entry"),
        Wrong(PlaceholderVersion, "_version is still the placeholder `...`", "_version = 2"),
        Wrong(TextVersion, "_version is '2', not a version number", "(an int)"),
        Wrong(AlwaysOverwrites, "saved by your class (version 2), which holds mean = [", "version') is None"),
        Wrong(OverwritesOld, "the migration overwrote a value the file holds", "not in state_dict"),
        Wrong(FillsWheneverMissing, "version-2 checkpoint without 'mean' loaded without an error", "below 2"),
        Wrong(ForgivesEverything, "without 'linear.bias' loaded without an error", "unchanged"),
        Wrong(ClearsMissing, "the load forgave the missing key", "take nothing out of missing_keys"),
        Wrong(NotASensor, "not a subclass of SensorV2", "class MigratingSensor(SensorV2)"),
        Wrong(MigratingSensor(), "Got a model instance", "without calling it"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


def test_no_message_shows_a_placeholder_or_a_handle():
    for exercise_id, cases in WRONG.items():
        for case in cases:
            result = check(exercise_id, case.answer)
            for text in (result.message, result.hint):
                assert "Ellipsis" not in text and "<Remote" not in text, (case, text)


def test_7_1_placeholder_none_and_unwritten_body():
    assert check("7.1", ...).status == NOT_ATTEMPTED
    assert check("7.1", load_not_yet).status == NOT_ATTEMPTED
    assert check("7.1", None).status == FAILED


def test_7_2_placeholder_none_and_unwritten_body():
    assert check("7.2", ...).status == NOT_ATTEMPTED
    assert check("7.2", MigrationNotYet).status == NOT_ATTEMPTED
    assert check("7.2", None).status == FAILED


def test_7_checks_leave_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check("7.1", load_v1)
    check("7.2", MigratingSensor)
    assert torch.equal(torch.rand(3), expected)
