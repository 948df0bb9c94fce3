"""Lesson 7: a checkpoint saved before a buffer existed, loaded into the model that has it."""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable

import torch
from torch import nn

from buflesson.checks import Fail, NotAttempted
from buflesson.inventory import BUFFER
from buflesson.legacy_probes import build_isolated, call_student, expect_kind, legacy_exercise, load_strict
from buflesson.versions import SensorV1, SensorV2, sensor_readings, sensor_v1_model

LEARNED_MEAN = torch.tensor([18.5, 21.0, 19.5])


def _trained_v1(seed: int = 3) -> SensorV1:
    """A version-1 model whose weights differ from any freshly built one."""
    with torch.random.fork_rng(devices=[]):
        model = sensor_v1_model(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.5)
    return model


def _saved(state: dict, folder: str, name: str) -> str:
    path = os.path.join(folder, name)
    torch.save(state, path)
    return path


def _without(state: dict, key: str) -> dict:
    """A copy of `state` without `key`, keeping the version metadata that state_dict() records."""
    damaged = type(state)((k, v) for k, v in state.items() if k != key)
    if hasattr(state, "_metadata"):
        damaged._metadata = state._metadata
    return damaged


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.detach().double(), b.detach().double(), atol=1e-6)


def _expect_restored(model: nn.Module, old: SensorV1, loader: str) -> None:
    linear = getattr(model, "linear", None)
    if not isinstance(linear, nn.Linear):
        raise Fail("The loaded model has no `linear` layer.", "Keep SensorV2's layers as they are.")
    for name in ("weight", "bias"):
        if not _close(getattr(linear, name), getattr(old.linear, name)):
            raise Fail(
                f"linear.{name} was not restored from the checkpoint file.",
                loader,
            )


def _expect_center(model: nn.Module, how: str) -> None:
    mean = model.mean
    if _close(mean, torch.zeros(3)):
        raise Fail(
            "mean still holds zeros, the value __init__ gives it: the checkpoint has no 'mean', "
            "and nothing put the right value in.",
            how,
        )
    expected = torch.full((3,), SensorV1.CENTER)
    if not _close(mean, expected):
        raise Fail(
            f"mean holds {mean.tolist()}, but version 1 subtracted SensorV1.CENTER = "
            f"{SensorV1.CENTER} from every reading.",
            f"The right value for an old checkpoint is torch.full((3,), SensorV1.CENTER), i.e. "
            f"{expected.tolist()}.",
        )


def _expect_same_outputs(model: nn.Module, old: SensorV1) -> None:
    x = sensor_readings()
    if not _close(call_student(model, x, what="forward"), old(x)):
        raise Fail("The loaded model computes something else than the version-1 model it was saved from.")


@legacy_exercise(
    "7.1",
    "Load a version-1 checkpoint into `SensorV2`",
    passed="The old weights came back, mean holds the centre version 1 used, and no other key is forgiven.",
)
def load_old_checkpoint(answer: object) -> None:
    if inspect.isclass(answer) or isinstance(answer, nn.Module) or not callable(answer):
        raise Fail(
            f"Expected a function load_v1(path), got {type(answer).__name__}.",
            "Pass the function itself, without calling it: check('7.1', load_v1).",
        )
    old = _trained_v1()
    with tempfile.TemporaryDirectory(prefix="buflesson-") as folder:
        path = _saved(old.state_dict(), folder, "sensor-v1.pt")
        with torch.random.fork_rng(devices=[]):
            model = call_student(answer, path, what="load_v1(path)")
        if model is None:
            raise Fail("load_v1 returned None.", "End the function with `return model`.")
        if not isinstance(model, SensorV2):
            raise Fail(
                f"load_v1 returned {type(model).__name__}, not a SensorV2.",
                "Build the new version, model = SensorV2(), load the file into it and return it.",
            )
        expect_kind(model, "mean", BUFFER)
        _expect_restored(
            model, old, "Load the file's state into the new model with model.load_state_dict(...)."
        )
        _expect_center(
            model,
            "Before loading, put the missing key into the loaded dict: "
            "state['mean'] = torch.full((3,), SensorV1.CENTER).",
        )
        _expect_same_outputs(model, old)
        damaged = _saved(_without(old.state_dict(), "linear.bias"), folder, "sensor-v1-damaged.pt")
        if _loads(lambda: answer(damaged)):
            raise Fail(
                "A version-1 checkpoint that lacks 'linear.bias' loaded without an error: strict=False "
                "forgives every missing key, not only 'mean', so a damaged file goes unnoticed.",
                "Fill 'mean' in the dict, then load with strict=True (the default): only the key you "
                "filled is forgiven.",
            )


def _loads(load: Callable[[], object]) -> bool:
    """True when `load()` returns; False when it raises (the placeholder's error means not attempted)."""
    try:
        with torch.random.fork_rng(devices=[]):
            load()
    except NotImplementedError as error:
        raise NotAttempted from error
    except Exception:
        return False
    return True


def _through_file(state: dict) -> dict:
    """`state` after a real torch.save / torch.load round trip (version metadata included)."""
    fd, path = tempfile.mkstemp(suffix=".pt", prefix="buflesson-")
    os.close(fd)
    try:
        torch.save(state, path)
        return torch.load(path, weights_only=True)
    finally:
        os.remove(path)


def _skips_super(answer: object, state: dict) -> bool:
    """True when the student's hook fills 'mean' into the dict, yet the buffer does not get it."""
    model = build_isolated(answer)
    if not _close(model.mean, torch.zeros(3)):
        return False
    state = dict(state)
    try:
        model._load_from_state_dict(state, "", {"version": 1}, True, [], [], [])
    except Exception:
        return False
    return "mean" in state and _close(model.mean, torch.zeros(3))


_FILL_HINT = (
    "In _load_from_state_dict, read version = local_metadata.get('version'); when it is None or "
    "below 2 and prefix + 'mean' is not in state_dict, put torch.full((3,), SensorV1.CENTER) there; "
    "then call super()._load_from_state_dict(...) with all the arguments."
)


@legacy_exercise(
    "7.2",
    "Teach `SensorV2` to read version-1 checkpoints",
    passed="Old checkpoints get mean = 20, new ones keep theirs, and a damaged version-2 file still fails.",
)
def migrating_sensor(answer: object) -> None:
    if inspect.isclass(answer) and issubclass(answer, nn.Module) and not issubclass(answer, SensorV2):
        raise Fail(
            f"{answer.__name__} is not a subclass of SensorV2.",
            "Keep the given first line: class MigratingSensor(SensorV2):",
        )
    model = build_isolated(answer)
    expect_kind(model, "mean", BUFFER)
    old = _trained_v1()

    load_strict(model, _through_file(old.state_dict()), "a version-1 checkpoint", _FILL_HINT)
    _expect_restored(
        model,
        old,
        "Call super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, "
        "unexpected_keys, error_msgs) at the end: it is what copies the tensors into the model.",
    )
    if _skips_super(answer, old.state_dict()):
        raise Fail(
            "Your _load_from_state_dict puts 'mean' into state_dict, but mean still holds zeros: "
            "nothing copied it into the model.",
            "End _load_from_state_dict with super()._load_from_state_dict(state_dict, prefix, "
            "local_metadata, strict, missing_keys, unexpected_keys, error_msgs).",
        )
    _expect_center(model, _FILL_HINT)
    _expect_same_outputs(model, old)

    fresh = build_isolated(answer)
    load_strict(
        fresh,
        dict(old.state_dict()),
        "a version-1 state dict without version metadata (a plain dict)",
        "A plain dict carries no metadata, so local_metadata is empty: read the version with "
        "local_metadata.get('version') and treat None as an old checkpoint.",
    )
    _expect_center(fresh, _FILL_HINT)

    nested = nn.Sequential(build_isolated(answer))
    with torch.random.fork_rng(devices=[]):
        old_nested = nn.Sequential(sensor_v1_model())
    load_strict(
        nested,
        _through_file(old_nested.state_dict()),
        "a version-1 checkpoint of a model that holds the sensor as its submodule '0'",
        "Inside a bigger model the key is '0.mean', not 'mean': build it as prefix + 'mean'.",
    )
    _expect_center(nested[0], "Build the key as prefix + 'mean', so it is found inside bigger models too.")

    version = model.state_dict()._metadata.get("", {}).get("version")
    if not isinstance(version, int) or version < 2:
        raise Fail(
            f"Checkpoints saved by {type(model).__name__} record version {version!r}, the same as "
            "version-1 checkpoints, so a loader cannot tell them apart.",
            "Set the class attribute _version = 2: state_dict() writes it into every checkpoint.",
        )

    with torch.no_grad():
        model.mean.copy_(LEARNED_MEAN)
    reloaded = build_isolated(answer)
    load_strict(reloaded, _through_file(model.state_dict()), "a checkpoint saved by your class", _FILL_HINT)
    if not _close(reloaded.mean, LEARNED_MEAN):
        raise Fail(
            f"A checkpoint saved with mean = {LEARNED_MEAN.tolist()} came back with mean = "
            f"{reloaded.mean.tolist()}: the migration overwrote a value the file holds.",
            "Only fill 'mean' when the checkpoint is older than version 2 and the key is missing.",
        )

    damaged = _through_file(_without(model.state_dict(), "mean"))
    if _loads(lambda: build_isolated(answer).load_state_dict(damaged)):
        raise Fail(
            "A version-2 checkpoint without 'mean' loaded without an error. A version-2 file must "
            "hold 'mean'; when it does not, the file is damaged, and filling in 20 hides that.",
            "Fill the key only when local_metadata.get('version') is None or below 2.",
        )
