"""Lesson 8: fixes for three state bugs reported in the wild, judged by `audit` and by behaviour."""

from __future__ import annotations

import torch
from torch import nn

from buflesson.audit import audit
from buflesson.checks import Fail
from buflesson.devices import checking_device, device_rule
from buflesson.inventory import BUFFER, NON_PERSISTENT_BUFFER
from buflesson.legacy_probes import (
    build_isolated,
    call_student,
    expect_kind,
    legacy_exercise,
    load_strict,
    move,
    same,
    save_and_reload,
)
from buflesson.wild import PinnedMask

MEAN = torch.tensor([20.0, 21.0, 19.0])
STD = torch.tensor([2.0, 4.0, 1.0])


def _inputs(columns: int, rows: int = 5, seed: int = 8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 20.0 + 3.0 * torch.randn(rows, columns, generator=generator)


def _expect_clean_audit(model: nn.Module, sample: object = None) -> None:
    """Fail with the first finding of `audit`: its message says what goes wrong, its fix is the hint."""
    findings = audit(model, sample).findings
    if findings:
        first = findings[0]
        raise Fail(f"audit finds a {first.problem} in {first.name}: {first.message}", first.fix)


def _runs_on_device(answer: object, x: torch.Tensor) -> None:
    """Move a fresh model to the device and run it there: every tensor it uses must follow.

    Without an accelerator the device is buflesson's GPU stand-in, which refuses what CUDA refuses.
    """
    device = checking_device()
    where = f"After model.to('{device.type}')"
    with device_rule():
        model = move(build_isolated(answer), device)
        out = call_student(model, x.to(device), what=f"{where}, forward")
    if not isinstance(out, torch.Tensor) or out.device.type != device.type:
        raise Fail(
            f"{where}, forward did not return a tensor on that device.",
            "Every tensor forward uses must be a parameter or a buffer so that .to() moves it.",
        )


@legacy_exercise(
    "8.1",
    "Read the statistics by name, not through a list",
    passed="mean and std are read by name: after .double() and a load, forward uses the loaded values.",
)
def fresh_statistics(answer: object) -> None:
    x = _inputs(3)
    model = build_isolated(answer)
    for name in ("mean", "std"):
        expect_kind(model, name, BUFFER, sample=x)
    _expect_clean_audit(model)
    linear = getattr(model, "linear", None)
    if not isinstance(linear, nn.Linear):
        raise Fail("The layer `linear` is missing.", "Keep the given line self.linear = nn.Linear(3, 2).")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        trained = nn.Linear(3, 2)
    state = {"linear.weight": trained.weight, "linear.bias": trained.bias, "mean": MEAN, "std": STD}
    move(model, torch.float64)
    load_strict(model, state, "trained statistics", "Keep the names: linear, mean and std, nothing else.")
    expected = trained.double()((x.double() - MEAN.double()) / STD.double())
    out = call_student(model, x.double(), what="After model.double() and load_state_dict, forward")
    if not isinstance(out, torch.Tensor) or not same(out, expected):
        raise Fail(
            "After model.double() and load_state_dict(...), forward does not compute "
            "linear((x - mean) / std) with the loaded mean and std.",
            "In forward, read self.mean and self.std: a tensor kept anywhere else is the old one.",
        )
    _runs_on_device(answer, x)


@legacy_exercise(
    "8.2",
    "Register the mask so that it moves with the model",
    passed="mask moves with .to() and .double(), and checkpoints of the published model still load.",
)
def registered_mask(answer: object) -> None:
    x = _inputs(4)
    model = build_isolated(answer)
    expect_kind(model, "mask", NON_PERSISTENT_BUFFER, sample=x)
    _expect_clean_audit(model)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(6)
        published = PinnedMask()
    load_strict(
        model,
        published.state_dict(),
        "a checkpoint of the published PinnedMask",
        "The published checkpoints have no 'mask' key: keep the mask out of state_dict() with "
        "persistent=False.",
    )
    expected = published(x)
    if not same(call_student(model, x, what="forward"), expected):
        raise Fail(
            "With the published weights loaded, forward computes something else than PinnedMask.",
            "Keep the mask torch.tril(torch.ones(size, size)) and the given forward.",
        )
    move(model, torch.float64)
    out = call_student(model, x.double(), what="After model.double(), forward")
    expected = published.double()(x.double())
    if not isinstance(out, torch.Tensor) or out.dtype != torch.float64 or not same(out, expected):
        raise Fail("After model.double(), forward gives other values or another dtype.")
    if model.mask.dtype != torch.float64:
        raise Fail("After model.double(), mask is still float32.", "Register mask as a buffer.")
    _runs_on_device(answer, x)


@legacy_exercise(
    "8.3",
    "Save the running peak",
    passed="peak is saved: a model reloaded from a checkpoint computes what the trained one does.",
)
def saved_peak(answer: object) -> None:
    x = _inputs(3)
    model = build_isolated(answer)
    expect_kind(model, "peak", BUFFER, sample=x)
    _expect_clean_audit(model, x)
    initial = model.peak.clone()
    model.train()
    call_student(model, x, what="forward in training mode")
    if same(model.peak, initial):
        raise Fail(
            "peak did not change when the model ran in training mode.",
            "Keep the given forward: it raises peak to the largest magnitude seen.",
        )
    model.eval()
    fresh = save_and_reload(model, lambda: build_isolated(answer))
    fresh.eval()
    if not same(fresh.peak, model.peak):
        raise Fail("peak lost its value in a save/load round trip through a file.")
    if not same(call_student(fresh, x, what="forward"), model(x)):
        raise Fail("The reloaded model computes something else than the trained one.")
