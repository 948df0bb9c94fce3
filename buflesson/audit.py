"""`audit(model)`: state problems in any model, found with `inventory` and PyTorch itself.

Three problems, each a mistake people report in public issue trackers:

- stale reference: a plain attribute (often a list or dict) holds a parameter or
  buffer itself. `.to()`, `.cuda()` and `.double()` replace buffers with new
  tensors, so the reference keeps the old one. Whether a reference goes stale is
  asked of PyTorch: a copy of the model goes through the same conversion
  machinery (`Module._apply`, with `clone` as the conversion) and the audit looks
  at which references still point at the model's tensors afterwards.
- plain tensor: any other tensor kept as a plain attribute. It is not saved and
  does not move with the model.
- unsaved state: a non-persistent buffer that changes when the model runs in
  training mode. It is state, but `state_dict()` leaves it out. Found only when
  `audit` is given a `sample` input to run a copy of the model on.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from buflesson.inventory import (
    BUFFER,
    NON_PERSISTENT_BUFFER,
    PARAMETER,
    PLAIN,
    Inventory,
    TensorRow,
    inventory,
)

STALE_REFERENCE = "stale reference"
PLAIN_TENSOR = "plain tensor"
UNSAVED_STATE = "unsaved state"
FORWARD_FAILS = "forward fails"

_TRACKED = (PARAMETER, BUFFER, NON_PERSISTENT_BUFFER)


@dataclass(frozen=True)
class Finding:
    """One problem: the tensor's qualified name, the problem, what goes wrong, and the fix."""

    name: str
    problem: str
    message: str
    fix: str


class Audit:
    """The findings of `audit`: a list in a terminal, a table in Jupyter."""

    def __init__(self, title: str, findings: list[Finding], checked: int, notes: list[str]) -> None:
        self.title = title
        self.findings = findings
        self.checked = checked
        self.notes = notes

    @property
    def ok(self) -> bool:
        """True when the audit found no problem."""
        return not self.findings

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def problems(self) -> dict[str, str]:
        """The problem found for each tensor name."""
        return {finding.name: finding.problem for finding in self.findings}

    def _headline(self) -> str:
        if self.ok:
            return f"audit({self.title}): no state problems found in {self.checked} tensors."
        count = len(self.findings)
        return f"audit({self.title}): {count} state problem{'s' if count != 1 else ''} found."

    def __str__(self) -> str:
        lines = [self._headline()]
        for number, finding in enumerate(self.findings, start=1):
            lines += [f"{number}. {finding.name}: {finding.problem}", f"   {finding.message}"]
            lines.append(f"   Fix: {finding.fix}")
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour = "#1e7b34" if self.ok else "#b3261e"
        parts = [
            f'<div class="buflesson-audit" style="border-left:6px solid {colour};padding:6px 12px;'
            f'font-family:sans-serif"><b>{html.escape(self._headline())}</b>'
        ]
        if self.findings:
            head = "".join(
                f"<th style='text-align:left'>{c}</th>" for c in ("tensor", "problem", "what happens", "fix")
            )
            rows = "".join(
                f"<tr><td><code>{html.escape(f.name)}</code></td><td>{html.escape(f.problem)}</td>"
                f"<td>{html.escape(f.message)}</td><td>{html.escape(f.fix)}</td></tr>"
                for f in self.findings
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        parts += [f"<div><i>Note: {html.escape(note)}</i></div>" for note in self.notes]
        parts.append("</div>")
        return "".join(parts)


def _storage(tensor: torch.Tensor) -> tuple[str, int] | None:
    """Where a tensor's memory lives, to spot views that share it; None when there is no memory."""
    if tensor.device.type == "meta":
        return None
    try:
        pointer = tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None
    return (str(tensor.device), pointer) if pointer else None


def _referenced(tensor: torch.Tensor, table: Inventory) -> str | None:
    """The name of the parameter or buffer that `tensor` is, or shares memory with; else None."""
    storage = _storage(tensor)
    for row in table:
        if row.kind in _TRACKED and row.tensor is not None:
            if row.tensor is tensor or (storage is not None and _storage(row.tensor) == storage):
                return row.name
    return None


def _describe(tensor: torch.Tensor, target: TensorRow) -> str:
    if tensor is target.tensor:
        return f"the {target.kind} {target.name!r} itself"
    return f"a view of the {target.kind} {target.name!r} (it shares its memory)"


def _stale_after_conversion(model: nn.Module, references: dict[str, str]) -> set[str]:
    """Which plain references stop pointing at the model's tensors when the model is converted.

    `.to()`, `.cuda()`, `.double()` and `.half()` all go through `Module._apply(fn)`;
    `clone` as `fn` converts every tensor to a new one of the same kind, as a move to
    another GPU does. This runs on a copy, so the model itself is not changed. Where
    the copy cannot answer (the model cannot be copied, or copying loses a view's
    shared memory), the rule PyTorch follows stands in: buffers are replaced, and
    parameters keep their object but get new memory, so only a reference to the
    parameter object itself stays valid.
    """
    table = inventory(model)
    by_rule = {
        name
        for name, target in references.items()
        if table[target].kind != PARAMETER or table[name].tensor is not table[target].tensor
    }
    try:
        twin = copy.deepcopy(model)
        before = inventory(twin)
        asked = {name for name in references if _referenced(before[name].tensor, before) is not None}
        with torch.no_grad():
            twin._apply(lambda t: t.clone())
    except Exception:
        return by_rule
    after = inventory(twin)
    by_copy = {
        name
        for name in asked
        if name not in after or after[name].tensor is None or _referenced(after[name].tensor, after) is None
    }
    return by_copy | (by_rule - asked)


def _plain_findings(table: Inventory, model: nn.Module) -> list[Finding]:
    plain = [row for row in table if row.kind == PLAIN]
    references = {row.name: target for row in plain if (target := _referenced(row.tensor, table))}
    stale = _stale_after_conversion(model, references) if references else set()
    devices = sorted({row.device for row in table if row.kind in _TRACKED and row.tensor is not None})
    findings = []
    for row in plain:
        if row.name in references:
            if row.name in stale:
                findings.append(_stale_finding(row.name, row.tensor, table[references[row.name]]))
            continue
        findings.append(_plain_finding(row.name, row.tensor, row.device, devices))
    return findings


def _stale_finding(name: str, tensor: torch.Tensor, target: TensorRow) -> Finding:
    if target.kind == PARAMETER:
        change = "give a parameter new memory (the same nn.Parameter, a new .data)"
    else:
        change = f"replace a {target.kind} with a new tensor"
    return Finding(
        name,
        STALE_REFERENCE,
        f"It is {_describe(tensor, target)}, kept in a plain attribute. .to(), .cuda() and "
        f".double() {change}, so after a move {name} still holds the old one: its device, dtype "
        "and values no longer follow the model.",
        f"Keep the name, not the tensor: read self.{target.name} where you need it "
        "(or use a @property that returns it).",
    )


def _plain_finding(name: str, tensor: torch.Tensor, device: str, devices: list[str]) -> Finding:
    where = f"It is on {device}"
    if devices and devices != [device]:
        where += f" while the model's parameters and buffers are on {', '.join(devices)}"
    if isinstance(tensor, nn.Parameter):
        return Finding(
            name,
            PLAIN_TENSOR,
            f"An nn.Parameter kept in a plain attribute is not registered: it is missing from "
            f"parameters() and state_dict(), so the optimizer never updates it and .to() never "
            f"moves it. {where}.",
            "Register it: assign it directly to self, or keep several in an nn.ParameterList "
            "or nn.ParameterDict.",
        )
    return Finding(
        name,
        PLAIN_TENSOR,
        f"A plain tensor attribute: PyTorch does not track it, so it is not in state_dict() and "
        f".to() does not move it. {where}.",
        "Register it as a buffer: register_buffer(name, tensor, persistent=False) if it is "
        "computed from the constructor's arguments, or with persistent=True if it is state "
        "to save.",
    )


def _run_copy(model: nn.Module, sample: object) -> tuple[nn.Module | None, str | None]:
    """A copy of `model` after one forward pass on `sample` in training mode, or the error."""
    try:
        twin = copy.deepcopy(model)
    except Exception as error:
        return None, f"could not copy the model to run it ({type(error).__name__}: {error})."
    twin.train()
    try:
        with torch.no_grad(), torch.random.fork_rng():
            twin(sample)
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"
    return twin, None


def _unsaved_findings(table: Inventory, model: nn.Module, sample: object) -> tuple[list[Finding], list[str]]:
    twin, error = _run_copy(model, sample)
    if twin is None:
        if error and error.startswith("could not copy"):
            return [], [error]
        return [
            Finding(
                "(forward)",
                FORWARD_FAILS,
                f"Running a copy of the model on the sample failed: {error}",
                "Check the sample's shape, device and dtype. A device or dtype error often comes "
                "from a plain tensor attribute or a stale reference listed above.",
            )
        ], []
    after = inventory(twin)
    findings = []
    for row in table:
        if row.kind != NON_PERSISTENT_BUFFER or row.name not in after:
            continue
        new = after[row.name].tensor
        if new is None or new.shape != row.tensor.shape or not torch.equal(new.cpu(), row.tensor.cpu()):
            findings.append(
                Finding(
                    row.name,
                    UNSAVED_STATE,
                    "A non-persistent buffer that changed when the model ran in training mode: it is "
                    "state the model learns, yet state_dict() leaves it out, so every checkpoint loses "
                    "it and a reloaded model starts again from its initial value.",
                    "Register it with persistent=True (the default) so it is saved.",
                )
            )
    return findings, []


def audit(model: nn.Module, sample: object = None) -> Audit:
    """Find state problems in `model`: stale references, plain tensors and unsaved state.

    With `sample` (an input for `model(sample)`), a copy of the model also runs one
    forward pass in training mode, to find non-persistent buffers that change. The
    model itself is never changed, and the random number generator is left as it was.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"audit() expects a torch.nn.Module instance, got {type(model).__name__}. "
            "Pass the model object, e.g. audit(model), not its class or its state_dict()."
        )
    table = inventory(model)
    findings = _plain_findings(table, model)
    notes: list[str] = []
    if sample is not None:
        unsaved, notes = _unsaved_findings(table, model, sample)
        findings += unsaved
    elif table.names(NON_PERSISTENT_BUFFER):
        notes.append(
            "non-persistent buffers were not run: pass audit(model, sample) to check that none of "
            "them changes while the model trains."
        )
    return Audit(table.title, findings, len(table), notes)
