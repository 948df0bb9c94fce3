"""Lesson 7: a checkpoint saved before a buffer existed, loaded into the model that has it."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F

from buflesson.checks import Fail, NotAttempted, exercise
from buflesson.handles import Refused, Remote, StudentError
from buflesson.i18n import N_, Msg
from buflesson.inventory import BUFFER, inventory
from buflesson.probes import (
    Draw,
    as_msg,
    build,
    close,
    code,
    expect_function,
    expect_kind,
    expect_module_class,
    forward,
    leaves_global_state,
    load_strict,
    missing_forward,
    no_forward,
    rounded,
    rows,
    same,
    save_file,
    shown,
    state_dict,
    student,
    tensor,
)
from buflesson.versions import SensorV1, SensorV2

CENTER = torch.full((3,), SensorV1.CENTER)


class _Trained:
    """A version-1 model on the student's side with drawn weights, and those weights here."""

    def __init__(self, session, draw: Draw) -> None:
        self.weight = 0.5 * draw.randn(2, 3)
        self.bias = draw.randn(2)
        self.model = session.lib("buflesson.versions:SensorV1").call(seed=draw.seed(), keep=True)
        with student(code("SensorV1.load_state_dict")):
            self.model.method("load_state_dict", {"linear.weight": self.weight, "linear.bias": self.bias})

    def state(self) -> OrderedDict:
        """Its state_dict() as data, version metadata included."""
        return state_dict(self.model)

    def output(self, x: torch.Tensor, mean: torch.Tensor = CENTER) -> torch.Tensor:
        """What version 1 computes (and a version-2 model with this `mean`)."""
        return F.linear(x - mean, self.weight, self.bias)


def _without(state: OrderedDict, key: str) -> OrderedDict:
    """A copy of `state` without `key`, keeping the version metadata that state_dict() records."""
    damaged = OrderedDict((k, v) for k, v in state.items() if k != key)
    damaged._metadata = getattr(state, "_metadata", OrderedDict())
    return damaged


def _readings(draw: Draw) -> list[torch.Tensor]:
    """Two batches of temperature readings around 20 degrees, of different sizes."""
    return [20.0 + 2.0 * draw.randn(rows, 3) for rows in draw.sizes(2, 1, 9, avoid=(4,))]


def _expect_weights(model: Remote, old: _Trained, hint: str) -> None:
    for name, value in (("linear.weight", old.weight), ("linear.bias", old.bias)):
        if not close(tensor(model, name, N_("Keep SensorV2's layers as they are.")), value):
            raise Fail("{name} was not restored from the checkpoint file.", hint, name=name)


def _expect_outputs(model: Remote, old: _Trained, draw: Draw, mean: torch.Tensor, what: str | Msg) -> None:
    what = as_msg(what)
    for x in _readings(draw):
        if not close(forward(model, x, what=what), old.output(x, mean)):
            raise Fail(
                "{what} computes something else than linear(x - mean) with the checkpoint's weights and "
                "mean = {mean}.",
                "Keep SensorV2's forward as it is.",
                what=what,
                mean=rounded(mean),
            )


def _loads(call) -> bool:
    """True when `call()` returns; False when the student's code raises (NotImplementedError: not
    attempted)."""
    try:
        call()
    except StudentError as error:
        if missing_forward(error):
            raise no_forward(code("load_state_dict")) from None
        if error.not_implemented:
            raise NotAttempted from None
        return False
    return True


# --- 7.1 ---------------------------------------------------------------------------------------

FILL_BY_HAND = N_(
    "Before loading, put the missing key into the loaded dict: state['mean'] = torch.full((3,), "
    "SensorV1.CENTER), then load with model.load_state_dict(state) (strict)."
)


def _expect_sensor(model: Remote) -> None:
    if model.kind == "none":
        raise Fail("load_v1 returned None.", "End the function with `return model`.")
    classes = []
    if model.kind == "module":
        cls = model.attr("__class__")
        if isinstance(cls, Remote):
            classes = [cls.info.get("name")] + list(cls.info.get("bases", []))
    if "SensorV2" not in classes:
        raise Fail(
            "load_v1 returned {got}, not a SensorV2.",
            "Build the new version, model = SensorV2(), load the file into it and return the model.",
            got=_a(str(model.info.get("type"))),
        )


def _expect_as_built(model: Remote, what: str | Msg) -> None:
    """Every tensor keeps what SensorV2() gives it: dtype, device, requires_grad; the model its mode.
    A load changes values, nothing else."""
    with torch.random.fork_rng(devices=[]):
        built = {row.name: row for row in inventory(SensorV2())}
    for name, row in rows(model).items():
        own = built.get(name)
        if own is None:
            continue
        for field, hint in (
            (
                "dtype",
                N_(
                    "Load without assign=True, or convert nothing: load_state_dict copies the file's "
                    "values into the model's own tensors, which keep their dtype."
                ),
            ),
            ("device", N_("Return the model on the device SensorV2() puts it on; move nothing.")),
            (
                "requires_grad",
                N_("Leave requires_grad as SensorV2() sets it: a load changes values, nothing else."),
            ),
        ):
            if row[field] != getattr(own, field):
                raise Fail(
                    "{what}, {name} has {field} {got}; SensorV2() gives it {wanted}.",
                    hint,
                    what=as_msg(what),
                    name=name,
                    field=field,
                    got=str(row[field]),
                    wanted=str(getattr(own, field)),
                )


def _a(name: str) -> Msg:
    return Msg("an {type}" if name[:1].lower() in "aeiou" else "a {type}", type=name)


def _expect_center(mean: torch.Tensor, what: str | Msg, hint: str) -> None:
    what = as_msg(what)
    if same(mean, CENTER):
        return
    if same(mean, torch.zeros(3)):
        raise Fail(
            "{what}, mean still holds zeros, the value __init__ gives it: the checkpoint has no 'mean', "
            "and nothing put the right value in.",
            hint,
            what=what,
        )
    raise Fail(
        "{what}, mean holds {got}, but version 1 subtracted SensorV1.CENTER = {center} from every reading.",
        "The right value for an old checkpoint is torch.full((3,), SensorV1.CENTER), i.e. {expected}.",
        what=what,
        got=shown(mean),
        center=SensorV1.CENTER,
        expected=CENTER.tolist(),
    )


@exercise(
    "7.1",
    "Load a version-1 checkpoint into `SensorV2`",
    passed="The old weights came back, mean holds the centre version 1 used, and no other key is forgiven.",
)
def load_old_checkpoint(answer: Remote) -> None:
    expect_function(answer, "load_v1", "7.1")
    draw = Draw()
    session = answer.session
    before_state = session.state()
    old = _Trained(session, draw)
    path = save_file(session, old.state(), "sensor-v1.pt")
    digest = session.lib("buflesson.workbench:file_digest")
    written = digest(path)
    try:
        with student(code("load_v1(path)")):
            model = answer.call(path, seed=draw.seed(), keep=True)
    except Fail as failure:
        if "size mismatch for mean" not in str(failure.values.get("error", "")):
            raise
        raise Fail(
            failure.template,
            "Fill a tensor of the buffer's shape, (3,): torch.full((3,), SensorV1.CENTER).",
            **failure.values,
        ) from None
    _expect_sensor(model)
    if digest(path) != written:
        raise Fail(
            "load_v1(path) changed the checkpoint file at path: the user's version-1 checkpoint is gone.",
            "Read the file and leave it as it is: fill 'mean' in the dict you loaded, in memory; write "
            "nothing back to path.",
        )
    expect_kind(answer, model, "mean", BUFFER)
    _expect_as_built(model, N_("After load_v1"))
    _expect_weights(model, old, N_("Load the file's state into the new model: model.load_state_dict(state)."))
    _expect_center(tensor(model, "mean"), N_("After load_v1"), FILL_BY_HAND)
    _expect_outputs(model, old, draw, CENTER, N_("The loaded model"))

    damaged = save_file(session, _without(old.state(), "linear.bias"), "sensor-v1-damaged.pt")
    if _loads(lambda: answer.call(damaged, seed=draw.seed())):
        raise Fail(
            "A version-1 checkpoint that lacks 'linear.bias' loaded without an error: strict=False "
            "forgives every missing key, not only 'mean', so a damaged file goes unnoticed.",
            "Fill 'mean' in the dict, then load with strict=True (the default): only the key you filled "
            "is forgiven.",
        )
    leaves_global_state(before_state, session.state(), code("load_v1(path)"))


# --- 7.2 ---------------------------------------------------------------------------------------

FILL_HINT = N_(
    "In _load_from_state_dict, read version = local_metadata.get('version'); when it is None or "
    "below 2 and prefix + 'mean' is not in state_dict, put torch.full((3,), SensorV1.CENTER) there; "
    "then call super()._load_from_state_dict(...) with all the arguments."
)
KEEP_HINT_VERSION = N_(
    "Fill 'mean' only for an old checkpoint: local_metadata.get('version') is None or below 2, and "
    "prefix + 'mean' is not in state_dict."
)
KEEP_HINT_KEY = N_(
    "Fill 'mean' only when prefix + 'mean' is not in state_dict: an old checkpoint may hold it already."
)
OLD_WITH_MEAN = N_(
    "a checkpoint saved by SensorV2 before _version was raised (version 1, but it holds 'mean')"
)
SUPER_HINT = N_(
    "End _load_from_state_dict with super()._load_from_state_dict(state_dict, prefix, local_metadata, "
    "strict, missing_keys, unexpected_keys, error_msgs): it is what copies the tensors into the model."
)


def _load(model: Remote, path: str, what: str | Msg, hint: str) -> None:
    """A strict load; a size mismatch for mean gets its own hint."""
    try:
        load_strict(model, path, what, hint)
    except Fail as failure:
        error = str(failure.values.get("error", ""))
        if "size mismatch for" in error and "mean" in error:
            raise Fail(
                failure.template,
                "Fill a tensor of the buffer's shape, (3,): torch.full((3,), SensorV1.CENTER).",
                **failure.values,
            ) from None
        raise


def _diagnose_fill(answer: Remote, old: _Trained, draw: Draw) -> None:
    """After a version-1 load left the wrong mean: call the student's _load_from_state_dict directly on
    a model whose mean holds marker values, and see what it put into the dict and into the model."""
    session = answer.session
    probe = build(answer, seed=draw.seed())
    marker = 100.0 + draw.randn(3)
    with student(code("mean.copy_")):
        probe.attr("mean", keep=True).method("copy_", marker)
    given = session.keep({key: value for key, value in old.state().items()})
    lists = [session.keep([]) for _ in range(3)]
    with student("_load_from_state_dict on a version-1 state dict"):
        probe.method("_load_from_state_dict", given, "", {"version": 1}, True, *lists)
    try:
        filled = given.value().get("mean")
    except Refused:  # something that is not plain data went into the dict
        try:
            filled = given.item("mean")
        except StudentError:
            filled = None
    now = tensor(probe, "mean")
    if filled is None:
        raise Fail(
            "For a version-1 checkpoint, your _load_from_state_dict put no 'mean' into state_dict, and "
            "mean kept the value it had.",
            FILL_HINT,
        )
    if same(now, marker):
        raise Fail(
            "Your _load_from_state_dict puts 'mean' into state_dict, but the model's mean did not "
            "change: nothing copied it into the model.",
            SUPER_HINT,
        )
    if not (isinstance(filled, torch.Tensor) and same(filled, CENTER)):
        raise Fail(
            "For a version-1 checkpoint, your _load_from_state_dict filled mean with {got}, but version 1 "
            "subtracted SensorV1.CENTER = {center} from every reading.",
            "Fill torch.full((3,), SensorV1.CENTER), i.e. {expected}.",
            got=shown(filled),
            center=SensorV1.CENTER,
            expected=CENTER.tolist(),
        )


def _expect_migrated(answer: Remote, model: Remote, old: _Trained, draw: Draw, what: str) -> None:
    """`what` (marked with `N_`) names the checkpoint that was loaded."""
    _expect_weights(model, old, SUPER_HINT)
    mean = tensor(model, "mean")
    if not same(mean, CENTER):
        _diagnose_fill(answer, old, draw)
        raise Fail(
            "After loading {what}, mean holds {got}, not SensorV1.CENTER = {center} for each reading.",
            FILL_HINT,
            what=Msg(what),
            got=shown(mean),
            center=SensorV1.CENTER,
        )
    _expect_outputs(model, old, draw, CENTER, Msg("After loading {what}, the model", what=Msg(what)))


def _expect_version(model: Remote) -> None:
    name = model.info.get("type")
    metadata = getattr(state_dict(model), "_metadata", {}) or {}
    version = metadata.get("", {}).get("version") if isinstance(metadata.get(""), dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version >= 2:
        return
    if version is Ellipsis:
        raise Fail(
            "{name}._version is still the placeholder `...`, so its checkpoints record no version "
            "number a loader can compare.",
            "Set the class attribute _version = 2: state_dict() writes it into every checkpoint.",
            name=name,
        )
    if isinstance(version, int) and not isinstance(version, bool):
        raise Fail(
            "Checkpoints saved by {name} record version {version}, the same as version-1 checkpoints, "
            "so a loader cannot tell them apart.",
            "Set the class attribute _version = 2: state_dict() writes it into every checkpoint.",
            name=name,
            version=version,
        )
    raise Fail(
        "{name}._version is {got}, not a version number: checkpoints saved by {name} cannot be told "
        "apart from version-1 checkpoints.",
        "Set the class attribute _version = 2 (an int): state_dict() writes it into every checkpoint.",
        name=name,
        got=shown(version),
    )


def _fitted(session, cls: Remote | str, draw: Draw) -> tuple[Remote, torch.Tensor]:
    """A model of `cls` (the answer, or a buflesson class by name) whose mean was fitted to drawn
    readings: mean is no longer zeros and not 20 either."""
    if isinstance(cls, str):
        model = session.lib(cls).call(seed=draw.seed(), keep=True)
    else:
        model = build(cls, seed=draw.seed())
    readings = 20.0 + 5.0 * draw.randn(draw.integer(3, 9), 3) + 3.0 * draw.randn(3)
    with student(code("fit_mean(readings)")):
        model.method("fit_mean", readings)
    return model, readings.mean(0)


@exercise(
    "7.2",
    "Teach `SensorV2` to read version-1 checkpoints",
    passed="Old checkpoints get mean = 20, fitted means are kept, and damaged files still fail.",
)
def migrating_sensor(answer: Remote) -> None:
    expect_module_class(answer, "MigratingSensor")
    if "SensorV2" not in [answer.name, *answer.info.get("bases", [])]:
        raise Fail(
            "{name} is not a subclass of SensorV2.",
            "Keep the given first line: class MigratingSensor(SensorV2):",
            name=answer.name,
        )
    draw = Draw()
    session = answer.session
    before_state = session.state()
    old = _Trained(session, draw)

    # A version-1 checkpoint through a file: forward before and after the load.
    model = build(answer, seed=draw.seed())
    expect_kind(answer, model, "mean", BUFFER)
    start = state_dict(model)
    x = _readings(draw)[0]
    expected = F.linear(x - start["mean"], start["linear.weight"], start["linear.bias"])
    if not close(forward(model, x, what=N_("forward before loading")), expected):
        raise Fail(
            "Before loading, forward computes something else than SensorV2's forward.",
            "Keep SensorV2's forward: MigratingSensor only changes how checkpoints load.",
        )
    _load(
        model,
        save_file(session, old.state(), "sensor-v1.pt"),
        N_("Loading a version-1 checkpoint"),
        FILL_HINT,
    )
    _expect_migrated(answer, model, old, draw, N_("a version-1 checkpoint"))

    # The same state as a plain dict: no metadata, so local_metadata has no version.
    plain = build(answer, seed=draw.seed())
    _load(
        plain,
        save_file(session, dict(old.state()), "sensor-v1-plain.pt"),
        N_("Loading a version-1 state dict saved as a plain dict (no version metadata)"),
        N_(
            "A plain dict carries no metadata, so local_metadata is empty: read the version with "
            "local_metadata.get('version') and treat None as an old checkpoint."
        ),
    )
    _expect_migrated(answer, plain, old, draw, N_("a plain dict"))

    # Inside a bigger model: the keys start with the submodule's name.
    lib_dict = session.lib("torch.nn:ModuleDict")
    nested = lib_dict.call({"sensor": build(answer, seed=draw.seed())}, keep=True)
    old_nested = lib_dict.call({"sensor": old.model}, keep=True)
    # The bigger model records a version of its own (3) at the root: only the sensor's own entry,
    # local_metadata, says version 1.
    nested_state = state_dict(old_nested)
    nested_state._metadata[""] = {**nested_state._metadata.get("", {}), "version": 3}
    _load(
        nested,
        save_file(session, nested_state, "bigger-v1.pt"),
        N_("Loading a version-1 checkpoint of a model that holds the sensor as its submodule 'sensor'"),
        N_(
            "Inside a bigger model the key is 'sensor.mean', not 'mean': build it as prefix + 'mean'; and "
            "read the version from local_metadata, the sensor's own entry: the root entry of "
            "state_dict._metadata holds the bigger model's version."
        ),
    )
    if not same(tensor(nested, "sensor.mean"), CENTER):
        raise Fail(
            "Inside a bigger model, sensor.mean holds {got} after loading a version-1 checkpoint.",
            "Build the key as prefix + 'mean', so it is found inside bigger models too.",
            got=shown(tensor(nested, "sensor.mean")),
        )
    with student("Reading the submodule 'sensor'"):
        inner = nested.attr("sensor", keep=True)
    _expect_outputs(inner, old, draw, CENTER, N_("After loading the bigger model, its sensor"))

    _expect_version(model)

    # Checkpoints that hold a fitted mean keep it, whatever their version.
    ours, ours_mean = _fitted(session, answer, draw)
    theirs, theirs_mean = _fitted(session, "buflesson.versions:SensorV2", draw)
    for source, fitted, plain_dict, what, hint in (
        (ours, ours_mean, False, N_("a checkpoint saved by your class (version 2)"), KEEP_HINT_VERSION),
        (theirs, theirs_mean, False, OLD_WITH_MEAN, KEEP_HINT_KEY),
        (
            theirs,
            theirs_mean,
            True,
            N_("a fitted checkpoint saved as a plain dict (no version)"),
            KEEP_HINT_KEY,
        ),
    ):
        saved = state_dict(source)
        fresh = build(answer, seed=draw.seed())
        path = save_file(session, dict(saved) if plain_dict else saved, f"holding-{draw.seed()}.pt")
        _load(fresh, path, Msg("Loading {what}", what=Msg(what)), FILL_HINT)
        got = tensor(fresh, "mean")
        if not close(got, fitted):
            raise Fail(
                "After loading {what}, which holds mean = {saved}, mean is {got}: the migration overwrote "
                "a value the file holds.",
                hint,
                what=Msg(what),
                saved=rounded(fitted),
                got=shown(got),
            )
        x = _readings(draw)[0]
        expected = F.linear(x - fitted, saved["linear.weight"], saved["linear.bias"])
        if not close(forward(fresh, x, what=Msg("After loading {what}, forward", what=Msg(what))), expected):
            raise Fail(
                "After loading {what}, forward computes something else than linear(x - mean) with the "
                "file's weights and mean.",
                "Keep SensorV2's forward: MigratingSensor only changes how checkpoints load.",
                what=Msg(what),
            )

    # Damaged files must still fail: a version-1 file without a weight, a version-2 file without mean.
    damaged_v1 = save_file(session, _without(old.state(), "linear.bias"), "damaged-v1.pt")
    if _loads_file(answer, damaged_v1, draw) is not None:
        raise Fail(
            "A version-1 checkpoint without 'linear.bias' loaded without an error: the migration forgives "
            "more than the key it fills.",
            "Pass strict, missing_keys and the other arguments on to super()._load_from_state_dict "
            "unchanged, and fill only 'mean'.",
        )
    damaged_v2 = save_file(session, _without(state_dict(ours), "mean"), "damaged-v2.pt")
    loaded = _loads_file(answer, damaged_v2, draw)
    if loaded is not None:
        if same(tensor(loaded, "mean"), CENTER):
            raise Fail(
                "A version-2 checkpoint without 'mean' loaded without an error: the migration filled in "
                "{center}. A version-2 file must hold 'mean'; when it does not, the file is damaged, and "
                "filling it in hides that.",
                "Fill the key only when local_metadata.get('version') is None or below 2.",
                center=CENTER.tolist(),
            )
        raise Fail(
            "A version-2 checkpoint without 'mean' loaded without an error, and mean kept the value "
            "__init__ gives it: the load forgave the missing key.",
            "Leave strict and missing_keys to PyTorch: pass every argument on to "
            "super()._load_from_state_dict unchanged and take nothing out of missing_keys, so that a "
            "strict load fails for a version-2 file without 'mean'.",
        )
    # The same damage inside a bigger model: the sensor's entry says version 2.
    bigger = lib_dict.call({"sensor": ours}, keep=True)
    damaged_bigger = save_file(session, _without(state_dict(bigger), "sensor.mean"), "damaged-bigger-v2.pt")
    fresh_bigger = lib_dict.call({"sensor": build(answer, seed=draw.seed())}, keep=True)
    with student(code("torch.load(path, weights_only=True)")):
        loaded = session.lib("torch:load").call(damaged_bigger, weights_only=True, keep=True)
    if _loads(lambda: fresh_bigger.call(loaded, method="load_state_dict")):
        raise Fail(
            "A version-2 checkpoint of a bigger model (the sensor as its submodule 'sensor') without "
            "'sensor.mean' loaded without an error: the migration filled it in, as if it were a version-1 "
            "file.",
            "Read the version with local_metadata.get('version'): local_metadata is the sensor's own entry; "
            "state_dict._metadata is not (inside a bigger model, the dict the sensor receives has none).",
        )
    leaves_global_state(before_state, session.state(), N_("Building and loading your model"))


def _loads_file(answer: Remote, path: str, draw: Draw) -> Remote | None:
    """A fresh model of the answer that loaded the file strictly without an error, else None."""
    model = build(answer, seed=draw.seed())
    with student(code("torch.load(path, weights_only=True)")):
        loaded = answer.session.lib("torch:load").call(path, weights_only=True, keep=True)
    return model if _loads(lambda: model.call(loaded, method="load_state_dict")) else None
