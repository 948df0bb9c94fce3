"""`audit(model)`: state problems in any model, found with `inventory` and PyTorch itself.

Four problems, each a mistake people report in public issue trackers:

- unregistered module: a module kept in a plain list, dict or tuple (not an
  `nn.ModuleList` or `nn.ModuleDict`). PyTorch never sees its parameters and
  buffers: they are not trained, not saved and not moved.
- stale reference: a plain attribute holds a parameter or buffer itself, or a view
  of one, and still holds the old tensor after `.to()`. Whether a reference goes
  stale is asked of PyTorch: a copy of the model goes through the conversion
  machinery all of `.to()`, `.cuda()`, `.double()` and `.half()` share
  (`Module._apply`, with `clone` as the conversion), and the audit looks at which
  references still point at the model's tensors afterwards.
- plain tensor: any other tensor kept as a plain attribute. It is not saved and
  does not move with the model. A cache that the module empties itself, in its own
  `train()` or `_apply()` (timm's LeViT attention biases), is no problem, nor is a
  0-dim CPU tensor, which PyTorch treats as a number next to tensors of any device.
- unsaved state: a non-persistent buffer or a plain 0-dim tensor that changes when
  the model runs in training mode. Found only when `audit` is given a `sample` input.

Tensors that `torch.nn.utils` recomputes (weight_norm, spectral_norm, pruning,
parametrizations) are computed, not plain, and are never reported.

A finding's `problem` is one of the English names above (data); its message, fix and the notes are
written in the language current when `audit` runs, the labels when the audit is shown.
"""

from __future__ import annotations

import copy
import html
import keyword
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from buflesson import textwidth
from buflesson.grouping import short_list
from buflesson.i18n import N_, Listed, Msg, after_label, render, tr
from buflesson.inventory import (
    NON_PERSISTENT_BUFFER,
    PARAMETER,
    PLAIN,
    REFERENCE,
    Inventory,
    TensorRow,
    inventory,
)

UNREGISTERED_MODULE = N_("unregistered module")
STALE_REFERENCE = N_("stale reference")
PLAIN_TENSOR = N_("plain tensor")
UNSAVED_STATE = N_("unsaved state")
FORWARD_FAILS = N_("forward fails")

BUFFER_RULE = N_(
    ".to(), .cuda(), .double() and .half() replace a buffer with a new tensor whenever they change its "
    "device or dtype (a conversion that changes nothing keeps the same object)"
)
PARAMETER_RULE = N_(
    "they keep a parameter's nn.Parameter object but give it new .data (.to('meta') replaces the object too)"
)
PARAMETER_RULE_ALONE = N_(
    ".to(), .cuda(), .double() and .half() keep a parameter's nn.Parameter object but give it new .data "
    "(.to('meta') replaces the object too)"
)
FIX = N_("Fix:")
COLON = N_(": ")
CONVERSIONS = f"{BUFFER_RULE}; {PARAMETER_RULE}."
"""What PyTorch's conversions do to the tensors a plain attribute may hold (torch 2.13, `Module._apply`)."""


@dataclass(frozen=True)
class Finding:
    """One problem: the tensor's (or attribute's) qualified name, the problem, what goes wrong, the fix."""

    name: str
    problem: str
    message: str
    fix: str


class Audit:
    """The findings of `audit`: a list in a terminal, a list of cards in Jupyter."""

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
        """The problem found for each tensor or attribute name."""
        return {finding.name: finding.problem for finding in self.findings}

    def _headline(self) -> str:
        if self.ok:
            return render(
                "audit({title}): no state problems found in {count} tensors.",
                title=self.title,
                count=self.checked,
            )
        count = len(self.findings)
        return render(
            "audit({title}): {count} state problem found."
            if count == 1
            else "audit({title}): {count} state problems found.",
            title=self.title,
            count=count,
        )

    def __str__(self) -> str:
        lines = [self._headline()]
        for number, finding in enumerate(self.findings, start=1):
            lines += _wrap(
                render(
                    "{number}. {name}: {problem}",
                    number=number,
                    name=finding.name,
                    problem=tr(finding.problem),
                ),
                "   ",
                first="",
            )
            lines += _wrap(finding.message, "   ")
            lines += _wrap(tr(FIX) + after_label(tr(FIX)) + finding.fix, "   ")
        for note in self.notes:
            lines += _wrap(render("Note: {note}", note=note), "   ", first="")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour = "var(--jp-success-color1, #388e3c)" if self.ok else "var(--jp-error-color1, #d32f2f)"
        parts = [
            f"<div class='buflesson-audit' style='border-left:6px solid {colour};padding:4px 12px;"
            "font-family:var(--jp-ui-font-family, sans-serif);color:var(--jp-ui-font-color1, #212121);"
            "font-size:var(--jp-ui-font-size1, 13px);line-height:1.4;max-width:100%;text-align:left'>"
            f"<div style='font-weight:600'>{html.escape(self._headline())}</div>"
        ]
        if self.findings:
            fix = tr(FIX)
            parts.append("<ol style='margin:4px 0;padding-left:22px'>")
            for finding in self.findings:
                parts.append(
                    "<li style='margin:6px 0'>"
                    "<span style='font-family:var(--jp-code-font-family, monospace);overflow-wrap:anywhere'>"
                    f"{html.escape(finding.name)}</span>{html.escape(tr(COLON))}"
                    f"<b>{html.escape(tr(finding.problem))}</b>"
                    f"<div>{html.escape(finding.message)}</div>"
                    f"<div><b>{html.escape(fix)}</b>{after_label(fix)}{html.escape(finding.fix)}</div></li>"
                )
            parts.append("</ol>")
        parts += [
            "<div style='color:var(--jp-ui-font-color2, #616161)'>"
            f"<i>{html.escape(render('Note: {note}', note=note))}</i></div>"
            for note in self.notes
        ]
        parts.append("</div>")
        return "".join(parts)


def _wrap(text: str, indent: str, first: str | None = None) -> list[str]:
    return textwidth.wrap(text, 100, indent if first is None else first, indent)


# -- names as Python ------------------------------------------------------------------------

_INDEX = re.compile(r"\[[^\]]*\]")


def python_path(name: str, root: str = "model") -> str:
    """A qualified tensor name as a Python expression: `0.weight_orig` -> `model[0].weight_orig`."""
    out = root
    for part in re.split(r"\.(?![^\[]*\])", name):
        base, _, rest = part.partition("[")
        rest = "[" + rest if rest else ""
        if base.isdigit():
            out += f"[{base}]"
        elif base.isidentifier() and not keyword.iskeyword(base):
            out += f".{base}"
        elif base:
            out += f".get_submodule({base!r})"
        out += rest
    return out


def _split_owner(name: str, modules: dict[str, nn.Module]) -> tuple[str, str]:
    """(owner module's path, attribute path in it) for a qualified plain-attribute name."""
    head = _INDEX.sub("", name)
    parts = head.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in modules and name.startswith(prefix + "."):
            return prefix, name[len(prefix) + 1 :]
    return "", name


def _self_path(owner: str, target: str) -> str | None:
    """How the owner module reads `target`: `self.mean`, or None when the target is not below it."""
    if owner and not target.startswith(owner + "."):
        return None
    return python_path(target[len(owner) + 1 :] if owner else target, "self")


def _copy(module: nn.Module, table: Inventory) -> nn.Module:
    """`copy.deepcopy(module)`, also when it holds tensors computed with autograd (caches, weight_norm).

    deepcopy refuses a tensor that is not a graph leaf; such a plain or computed tensor
    is copied detached. A reference that is not a leaf still makes the copy fail.
    """
    memo: dict[int, object] = {}
    for row in table:
        tensor = row.tensor
        if tensor is not None and tensor.grad_fn is not None and row.kind != REFERENCE:
            memo[id(tensor)] = tensor.detach().clone()
    return copy.deepcopy(module, memo)


# -- references -----------------------------------------------------------------------------


def _references(table: Inventory) -> dict[str, tuple[TensorRow, bool]]:
    """Each plain attribute that holds a registered tensor (True) or a view of one (False), with the
    registered tensor's row."""
    found: dict[str, tuple[TensorRow, bool]] = {}
    for row in table:
        for name in row.held_by:
            found[name] = (row, True)
        if row.kind == REFERENCE and row.unregistered_in is None and row.refers_to in table:
            found[row.name] = (table[row.refers_to], False)
    return found


def _still_held(table: Inventory, name: str) -> bool:
    row = table._names().get(name)
    return row is not None and (name in row.held_by or row.kind == REFERENCE)


def _stale_after_conversion(
    model: nn.Module, table: Inventory, references: dict[str, tuple[TensorRow, bool]]
) -> set[str]:
    """Which references stop pointing at the model's tensors when the model is converted.

    `.to()`, `.cuda()`, `.double()` and `.half()` all go through `Module._apply(fn)`;
    `clone` as `fn` converts every tensor to a new one of the same kind, as a move to
    another GPU does. This runs on a copy, so the model itself is not changed. Where
    the copy cannot answer (the model cannot be copied), PyTorch's rule stands in:
    buffers are replaced, and parameters keep their object but get new memory, so
    only a reference to the parameter object itself stays valid.
    """
    by_rule = {
        name for name, (target, itself) in references.items() if not (itself and target.kind == PARAMETER)
    }
    try:
        twin = _copy(model, table)
        with torch.no_grad():
            twin._apply(lambda t: t.clone())
    except Exception:
        return by_rule
    after = inventory(twin)
    return {name for name in references if not _still_held(after, name)}


def _reference_findings(model: nn.Module, table: Inventory, modules: dict[str, nn.Module]) -> list[Finding]:
    references = _references(table)
    if not references:
        return []
    stale = _stale_after_conversion(model, table, references)
    findings = []
    for name, (target, itself) in references.items():
        if name not in stale:
            continue
        owner, _ = _split_owner(name, modules)
        read = _self_path(owner, target.name) or python_path(target.name)
        findings.append(
            Finding(
                name,
                STALE_REFERENCE,
                render(
                    "It is the {kind} {target!r} itself, kept in a plain attribute. {rule}, so after a "
                    "move {name} still holds the old tensor: its device, dtype and values no longer follow "
                    "the model."
                    if itself
                    else "It is a view of the {kind} {target!r} (it shares its memory), kept in a plain "
                    "attribute. {rule}, so after a move {name} still holds the old tensor: its device, dtype "
                    "and values no longer follow the model.",
                    kind=tr(target.kind),
                    target=target.name,
                    rule=_rule(target),
                    name=name,
                ),
                render(
                    "Keep the name, not the tensor: read {read} where you need it (or use a @property that "
                    "returns it).",
                    read=read,
                ),
            )
        )
    return findings


def _rule(target: TensorRow) -> str:
    return tr(PARAMETER_RULE_ALONE if target.kind == PARAMETER else BUFFER_RULE)


# -- modules kept in plain containers -------------------------------------------------------

# The container a module is kept in: where (prose), what registers it instead (code), how (a template).
_CONTAINER_FIX = {
    "list": (N_("a plain list"), "nn.ModuleList", "self.{attr} = nn.ModuleList([...])"),
    "tuple": (N_("a tuple"), "nn.ModuleList", "self.{attr} = nn.ModuleList([...])"),
    "dict": (
        N_("a plain dict"),
        "nn.ModuleDict",
        N_("self.{attr} = nn.ModuleDict({{...}}) (keys must be strings)"),
    ),
}
_ATTRIBUTE_FIX = (
    N_("an attribute set around nn.Module.__setattr__"),
    N_("a registered submodule"),
    N_("assign it as self.{attr} = module"),
)


def _unregistered_findings(
    model: nn.Module, table: Inventory, modules: dict[str, nn.Module]
) -> list[Finding]:
    holders: dict[str, list[TensorRow]] = {}
    for row in table:
        if row.unregistered_in is not None:
            owner, attr = _split_owner(row.unregistered_in, modules)
            top = attr.split("[", 1)[0].split(".", 1)[0]
            holders.setdefault(f"{owner}.{top}" if owner else top, []).append(row)
    findings = []
    for holder, rows in holders.items():
        owner, attr = _split_owner(holder, modules) if "." in holder else ("", holder)
        value = vars(modules.get(owner, model)).get(attr)
        container = type(value).__name__ if isinstance(value, (list, tuple, dict)) else "attribute"
        if container in _CONTAINER_FIX:
            where, fixed, how = _CONTAINER_FIX[container]
        else:
            where, fixed, how = _ATTRIBUTE_FIX
            fixed = tr(fixed)
        held = sorted({row.unregistered_in for row in rows})
        tensors = [row for row in rows if row.kind == PLAIN]
        findings.append(
            Finding(
                holder,
                UNREGISTERED_MODULE,
                render(
                    "{held}: a module kept in {where}, which PyTorch does not look into. Their {count} "
                    "tensors ({names}) are missing from parameters() and state_dict(): the optimizer never "
                    "trains them, checkpoints lose them and .to() does not move them."
                    if len(held) == 1
                    else "{held}: {modules} modules kept in {where}, which PyTorch does not look into. Their "
                    "{count} tensors ({names}) are missing from parameters() and state_dict(): the optimizer "
                    "never trains them, checkpoints lose them and .to() does not move them.",
                    held=held[0] if len(held) == 1 else short_list(held),
                    modules=len(held),
                    where=tr(where),
                    count=len(tensors),
                    names=short_list([r.name for r in tensors], 3),
                ),
                render("Keep them in {fixed}: {how}.", fixed=fixed, how=render(how, attr=attr)),
            )
        )
    return findings


# -- plain tensors --------------------------------------------------------------------------


def _cleared_by_module(
    model: nn.Module, table: Inventory, rows: list[TensorRow], modules: dict[str, nn.Module]
) -> set[str]:
    """Plain tensors that their module drops or rebuilds itself, in its own train() or _apply().

    Asked of the module: a copy of it is put in training mode, another goes through
    `_apply`, and a tensor that is gone or replaced afterwards is a cache it manages.
    """
    by_owner: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        owner, attr = _split_owner(row.name, modules)
        module = modules.get(owner, model)
        if type(module).train is not nn.Module.train or type(module)._apply is not nn.Module._apply:
            by_owner.setdefault(owner, []).append((row.name, attr))
    cleared = set()
    for owner, names in by_owner.items():
        module = modules.get(owner, model)
        for step in (lambda m: m.train(True), lambda m: m._apply(lambda t: t.clone())):
            try:
                twin = _copy(module, table)
                before = {row.name: row.tensor for row in inventory(twin)}
                with torch.no_grad():
                    step(twin)
                after = {row.name: row.tensor for row in inventory(twin)}
            except Exception:
                continue
            for name, attr in names:
                if attr in before and after.get(attr) is not before[attr]:
                    cleared.add(name)
    return cleared


def is_scalar(row: TensorRow) -> bool:
    """A 0-dim tensor on the CPU: in arithmetic with tensors on any device or of any dtype PyTorch
    treats it as a Python number, so leaving it behind at `.to()` breaks nothing. Only a change to
    it (state that is not saved) is a problem, which needs `audit(model, sample)` to see."""
    return row.shape == () and row.device == "cpu"


def _plain_scalar(row: TensorRow) -> bool:
    return row.kind == PLAIN and row.unregistered_in is None and is_scalar(row)


def _plain_findings(model: nn.Module, table: Inventory, modules: dict[str, nn.Module]) -> list[Finding]:
    plain = [row for row in table if row.kind == PLAIN and row.unregistered_in is None and not is_scalar(row)]
    if not plain:
        return []
    cleared = _cleared_by_module(model, table, plain, modules)
    devices = sorted({row.device for row in table if row.kind == PARAMETER or "buffer" in row.kind})
    return [_plain_finding(row, devices) for row in plain if row.name not in cleared]


def _plain_finding(row: TensorRow, devices: list[str]) -> Finding:
    if devices and devices != [row.device]:
        where = render(
            "It is on {device} while the model's parameters and buffers are on {devices}",
            device=row.device,
            devices=", ".join(devices),
        )
    else:
        where = render("It is on {device}", device=row.device)
    if isinstance(row.tensor, nn.Parameter):
        return Finding(
            row.name,
            PLAIN_TENSOR,
            render(
                "An nn.Parameter kept in a plain attribute is not registered: it is missing from "
                "parameters() and state_dict(), so the optimizer never updates it and .to() never "
                "moves it. {where}.",
                where=where,
            ),
            tr(
                "Register it: assign it directly to self, or keep several in an nn.ParameterList or "
                "nn.ParameterDict."
            ),
        )
    return Finding(
        row.name,
        PLAIN_TENSOR,
        render(
            "A plain tensor attribute: PyTorch does not track it, so it is not in state_dict() and "
            ".to() does not move it. {where}.",
            where=where,
        ),
        tr(
            "Register it as a buffer: register_buffer(name, tensor, persistent=False) if it is "
            "computed from the constructor's arguments, or with persistent=True if it is state to save."
        ),
    )


# -- unsaved state --------------------------------------------------------------------------


def _run_copy(
    model: nn.Module, table: Inventory, sample: object
) -> tuple[nn.Module | None, str | None, bool]:
    """A copy of `model` after one forward pass on `sample` in training mode, or the error, and
    whether the model could be copied at all."""
    try:
        twin = _copy(model, table)
    except Exception as error:
        return None, f"{type(error).__name__}: {error}", False
    twin.train()
    try:
        with torch.no_grad(), torch.random.fork_rng():
            twin(sample)
    except Exception as error:
        return None, f"{type(error).__name__}: {error}", True
    return twin, None, True


def _unsaved_findings(table: Inventory, model: nn.Module, sample: object) -> tuple[list[Finding], list[str]]:
    twin, error, copied = _run_copy(model, table, sample)
    if twin is None:
        if not copied:
            return [], [render("could not copy the model to run it ({error}).", error=error)]
        return [
            Finding(
                "(forward)",
                FORWARD_FAILS,
                render("Running a copy of the model on the sample failed: {error}", error=error),
                tr(
                    "Check the sample's shape, device and dtype. A device or dtype error often comes "
                    "from a plain tensor attribute or a stale reference listed above."
                ),
            )
        ], []
    after = inventory(twin)
    findings = []
    for row in table:
        scalar = _plain_scalar(row)
        if not (row.kind == NON_PERSISTENT_BUFFER or scalar) or row.name not in after or row.shape is None:
            continue
        new = after[row.name].tensor
        if new is not None and new.shape == row.tensor.shape and torch.equal(new.cpu(), row.tensor.cpu()):
            continue
        if scalar:
            message = tr(
                "A plain 0-dim tensor that changed when the model ran in training mode: it is state, "
                "yet PyTorch does not track it, so state_dict() leaves it out and every checkpoint "
                "loses it."
            )
            fix = tr("Register it as a buffer: self.register_buffer(name, tensor), so it is saved and moved.")
        else:
            message = tr(
                "A non-persistent buffer that changed when the model ran in training mode: it is "
                "state the model learns, yet state_dict() leaves it out, so every checkpoint loses "
                "it and a reloaded model starts again from its initial value."
            )
            fix = tr("Register it with persistent=True (the default) so it is saved.")
        findings.append(Finding(row.name, UNSAVED_STATE, message, fix))
    return findings, []


def audit(model: nn.Module, sample: object = None) -> Audit:
    """Find state problems in `model`: unregistered modules, stale references, plain tensors, unsaved state.

    With `sample` (an input for `model(sample)`), a copy of the model also runs one
    forward pass in training mode, to find non-persistent buffers and plain 0-dim
    tensors that change (a plain 0-dim CPU tensor that never changes is no problem). The
    model itself is never changed, and the random number generator is left as it was.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            render(
                "audit() expects a torch.nn.Module instance, got {type}. Pass the model object, e.g. "
                "audit(model), not its class or its state_dict().",
                type=type(model).__name__,
            )
        )
    table = inventory(model)
    modules = dict(model.named_modules())
    findings = _unregistered_findings(model, table, modules)
    findings += _reference_findings(model, table, modules)
    findings += _plain_findings(model, table, modules)
    notes: list[str] = []
    if sample is not None:
        unsaved, notes = _unsaved_findings(table, model, sample)
        findings += unsaved
    else:
        unchecked = [
            Msg(what)
            for what, present in (
                (N_("non-persistent buffers"), table.names(NON_PERSISTENT_BUFFER)),
                (N_("plain 0-dim tensors"), [r for r in table if _plain_scalar(r)]),
            )
            if present
        ]
        if unchecked:
            notes.append(
                render(
                    "{what} were not run: pass audit(model, sample) to check that none of them changes while "
                    "the model trains.",
                    what=Listed(unchecked, N_(" and ")),
                )
            )
    return Audit(table.title, findings, len(table), notes)
