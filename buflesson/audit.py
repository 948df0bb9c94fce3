"""`audit(model)`: state problems in any model, found with `inventory` and PyTorch itself.

The problems, each a mistake people report in public issue trackers:

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
  `train()` or `_apply()` (timm's LeViT attention biases), or that a module above it
  clears, is no problem, nor is one a PyTorch class keeps itself (the biases of
  dynamically quantized RNN cells). A 0-dim CPU tensor is not reported either:
  arithmetic treats it as a number next to tensors of any device, though some
  operators (`clamp(min=t)`, `index_select`, `gcd`) refuse it next to GPU tensors;
  a change to one is reported as unsaved state.
- broken tie: a parameter also registered as a buffer, which `.to()` splits in two.
- name with a dot: a module registered under a dotted name, whose keys collide.
- unsaved state: a non-persistent buffer or a plain 0-dim tensor that changes when
  the model runs in training mode. Found only when `audit` is given a `sample` input.

Tensors that `torch.nn.utils` recomputes (weight_norm, spectral_norm, pruning,
parametrizations) are computed, not plain, and are never reported.

A finding's `problem` is one of the English names above (data); its message, fix and the notes are
written in the language current when `audit` runs, the labels when the audit is shown.
"""

from __future__ import annotations

import collections
import copy
import dis
import functools
import html
import keyword
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from buflesson import textwidth
from buflesson.grouping import short_list
from buflesson.i18n import N_, Listed, Msg, after_label, render, tr
from buflesson.inventory import (
    COMPUTED,
    NON_PERSISTENT_BUFFER,
    PARAMETER,
    PLAIN,
    REFERENCE,
    REGISTERED,
    Inventory,
    TensorRow,
    inventory,
)

UNREGISTERED_MODULE = N_("unregistered module")
STALE_REFERENCE = N_("stale reference")
PLAIN_TENSOR = N_("plain tensor")
UNSAVED_STATE = N_("unsaved state")
BROKEN_TIE = N_("broken tie")
DOTTED_NAME = N_("name with a dot")
FORWARD_FAILS = N_("forward fails")

BUFFER_RULE = N_(
    ".to(), .cuda(), .double() and .half() replace a buffer with a new tensor whenever they change its "
    "device or dtype (a conversion that changes nothing keeps the same object)"
)
PARAMETER_RULE = N_(
    "they keep a parameter's nn.Parameter object but give it new .data (a move onto or off the meta device, "
    ".to('meta') or .to_empty(), replaces the object too)"
)
PARAMETER_RULE_ALONE = N_(
    ".to(), .cuda(), .double() and .half() keep a parameter's nn.Parameter object but give it new .data "
    "(a move onto or off the meta device, .to('meta') or .to_empty(), replaces the object too)"
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


def _step(expression: str, key: str, holder: nn.Module | None) -> str:
    """`expression` followed by the Python that reads `key` of the module `holder` (None: unknown)."""
    if isinstance(holder, (nn.ModuleDict, nn.ParameterDict)):
        return f"{expression}[{key!r}]"
    if key.isdigit() and (holder is None or isinstance(holder, _INDEXED)):
        return f"{expression}[{int(key)}]"
    if key.isidentifier() and not keyword.iskeyword(key):
        return f"{expression}.{key}"
    return f"getattr({expression},{key!r})"  # no space: the expression reads as one word in a sentence


_INDEXED = (nn.ModuleList, nn.Sequential, nn.ParameterList)


def _child(holder: nn.Module, key: str) -> object:
    for table in (holder._modules, holder._parameters, holder._buffers):
        if key in table:
            return table[key]
    return None


def python_path(name: str, root: str = "model", module: nn.Module | None = None) -> str:
    """A qualified tensor name as a Python expression: `0.weight_orig` -> `model[0].weight_orig`.

    With `module` (the module `root` stands for) each step is read the way that module keeps
    it: `d['0']` in an nn.ModuleDict, `layers[3]` in an nn.ModuleList, `getattr(x, 'lambda')`
    for a name that is no Python identifier, and a module name with a '.' is one step.
    Without it, numbers are indices and the rest attribute names.
    """
    if module is not None and "[" not in name:
        parts = name.split(".")
        out, holder, start = root, module, 0
        while start < len(parts):
            for end in range(len(parts), start, -1):
                key = ".".join(parts[start:end])
                found = _child(holder, key) if isinstance(holder, nn.Module) else None
                if found is not None or end == start + 1:
                    out = _step(out, key, holder if isinstance(holder, nn.Module) else None)
                    holder, start = found, end
                    break
        return out
    out = root
    for part in re.split(r"\.(?![^\[]*\])", name):
        base, _, rest = part.partition("[")
        rest = "[" + rest if rest else ""
        if base:
            out = _step(out, base, None)
        out += rest
    return out


def _owner_of(row: TensorRow, name: str, modules: dict[str, nn.Module]) -> tuple[str, str]:
    """(owner module's path, attribute) of a plain attribute's name, from the walk when it knows."""
    place = row.place(name)
    if place is not None:
        return place
    return _split_owner(name, modules)


def _split_owner(name: str, modules: dict[str, nn.Module]) -> tuple[str, str]:
    """(owner module's path, attribute path in it) for a qualified plain-attribute name."""
    head = _INDEX.sub("", name)
    parts = head.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in modules and name.startswith(prefix + "."):
            return prefix, name[len(prefix) + 1 :]
    return "", name


def _read(owner: str, target: str, model: nn.Module, modules: dict[str, nn.Module]) -> str:
    """How the module at `owner` reads the registered tensor `target`: `self.mean`, or from the model."""
    if not owner:
        return python_path(target, "self", model)
    if target.startswith(owner + ".") and owner in modules:
        return python_path(target[len(owner) + 1 :], "self", modules[owner])
    return python_path(target, "model", model)


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
        if row.kind in REGISTERED:
            for name in row.held_by:
                found[name] = (row, True)
        if row.kind == REFERENCE and row.unregistered_in is None and row.refers_to in table:
            found[row.name] = (table[row.refers_to], False)
    return found


def _mixed_ties(table: Inventory) -> list[TensorRow]:
    """Tensors registered as a parameter under one name and as a buffer under another."""
    return [
        row for row in table if row.kind == PARAMETER and any(kind != PARAMETER for _, kind in row.name_kinds)
    ]


def _held(table: Inventory, name: str) -> torch.Tensor | None:
    """The tensor a name (registered, or a plain attribute's) holds in an inventory, or None."""
    row = table._names().get(name)
    return None if row is None else row.tensor


def _after_conversion(
    model: nn.Module, table: Inventory, references: dict[str, tuple[TensorRow, bool]], ties: list[TensorRow]
) -> tuple[set[str], set[str]]:
    """Which references stop pointing at the model's tensors when the model is converted, and which
    tied tensors (first names) become several.

    `.to()`, `.cuda()`, `.double()` and `.half()` all go through `Module._apply(fn)`;
    `clone` as `fn` converts every tensor to a new one of the same kind, as a move to
    another GPU does. This runs on a copy, so the model itself is not changed. A reference
    is stale when it still holds the very tensor it held before while that is no longer the
    model's: one that the module refreshes itself (`nn.LSTM`'s `_flat_weights` in its own
    `_apply`) is not. Where the copy cannot answer (the model cannot be copied), PyTorch's
    rule stands in: buffers are replaced, and parameters keep their object but get new
    memory, so only a reference to the parameter object itself stays valid.
    """
    by_rule = {
        name for name, (target, itself) in references.items() if not (itself and target.kind == PARAMETER)
    }
    try:
        twin = _copy(model, table)
        before = inventory(twin)
        held = {name: _held(before, name) for name in references}
        with torch.no_grad():
            twin._apply(lambda t: t.clone())
    except Exception:
        return by_rule, {row.name for row in ties}
    after = inventory(twin)
    stale = set()
    for name in references:
        row = after._names().get(name)
        if row is None or row.tensor is not held[name]:
            continue  # gone or replaced: the module looks after it
        if name in row.held_by and row.kind in REGISTERED:
            continue  # still the registered tensor itself
        stale.add(name)
    broken = {row.name for row in ties if len({id(_held(after, name)) for name in row.names}) > 1}
    return stale, broken


def _reference_findings(model: nn.Module, table: Inventory, modules: dict[str, nn.Module]) -> list[Finding]:
    references = _references(table)
    ties = _mixed_ties(table)
    if not references and not ties:
        return []
    stale, broken = _after_conversion(model, table, references, ties)
    findings = []
    for name, (target, itself) in references.items():
        if name not in stale:
            continue
        owner, _ = _owner_of(_row_holding(table, name), name, modules)
        read = _read(owner, target.name, model, modules)
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
    for row in ties:
        if row.name not in broken:
            continue
        buffers = [name for name, kind in row.name_kinds if kind != PARAMETER]
        owner = buffers[0].rpartition(".")[0]
        findings.append(
            Finding(
                buffers[0],
                BROKEN_TIE,
                render(
                    "The parameter {parameter!r} is registered as a buffer too ({buffers}). .to(), .cuda(), "
                    ".double() and .half() replace a buffer with a new tensor but keep a parameter's "
                    "object, so after a move these names hold two tensors: the buffer no longer sees what "
                    "the optimizer does to the parameter.",
                    parameter=row.name,
                    buffers=", ".join(buffers),
                ),
                render(
                    "Register it once, as the parameter: read {read} where you need it (or use a @property "
                    "that returns it) instead of register_buffer.",
                    read=_read(owner, row.name, model, modules),
                ),
            )
        )
    return findings


def _row_holding(table: Inventory, name: str) -> TensorRow:
    return table._names()[name]


def _rule(target: TensorRow) -> str:
    return tr(PARAMETER_RULE_ALONE if target.kind == PARAMETER else BUFFER_RULE)


# -- modules kept in plain containers -------------------------------------------------------

# Where a module is kept, in prose, by the type of the attribute's value.
_WHERE = {
    "list": N_("a plain list"),
    "tuple": N_("a tuple"),
    "dict": N_("a plain dict"),
    "deque": N_("a deque"),
    "set": N_("a set"),
    "attribute": N_("an attribute set around nn.Module.__setattr__"),
}
_IN_OBJECT = N_("an object kept as an attribute")


def _holds_module(value: object, depth: int = 0) -> bool:
    if isinstance(value, nn.Module):
        return True
    if depth > 4:
        return False
    if isinstance(value, Mapping):
        return any(_holds_module(item, depth + 1) for item in value.values())
    if isinstance(value, (list, tuple, set, frozenset, collections.deque)):
        return any(_holds_module(item, depth + 1) for item in value)
    return False


def _module_form(value: object, depth: int = 0) -> str | None:
    """The registered container that does what `value` does: `nn.ModuleList([...])`, or for a list
    of dicts of modules `nn.ModuleList([nn.ModuleDict({...}), ...])`; None for other objects."""
    if depth > 4:
        return None
    if isinstance(value, Mapping):
        items = [(key, item) for key, item in value.items() if _holds_module(item)]
        if all(isinstance(item, nn.Module) for _, item in items):
            return "nn.ModuleDict({...})"
        key, item = next((key, item) for key, item in items if not isinstance(item, nn.Module))
        inner = _module_form(item, depth + 1)
        return None if inner is None else f"nn.ModuleDict({{{str(key)!r}: {inner}}})"
    if isinstance(value, (list, tuple, set, frozenset, collections.deque)) and not hasattr(value, "_fields"):
        items = [item for item in value if _holds_module(item)]
        if all(isinstance(item, nn.Module) for item in items):
            return "nn.ModuleList([...])"
        inner = _module_form(next(item for item in items if not isinstance(item, nn.Module)), depth + 1)
        return None if inner is None else f"nn.ModuleList([{inner}, ...])"
    return None


def _string_keys(value: object, depth: int = 0) -> bool:
    """Whether every dict on the way to the modules has string keys (nn.ModuleDict needs them)."""
    if depth > 4:
        return True
    if isinstance(value, Mapping):
        return all(isinstance(key, str) and _string_keys(item, depth + 1) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset, collections.deque)):
        return all(_string_keys(item, depth + 1) for item in value)
    return True


def _identifier(attr: str) -> str:
    """`attr` itself when Python reads it as `self.attr`, else a name close to it that it does."""
    if attr.isidentifier() and not keyword.iskeyword(attr):
        return attr
    name = re.sub(r"\W", "_", attr)
    return f"_{name}" if not name or name[0].isdigit() else f"{name}_" if keyword.iskeyword(name) else name


def _unregistered_findings(
    model: nn.Module, table: Inventory, modules: dict[str, nn.Module]
) -> list[Finding]:
    holders: dict[tuple[str, str], list[TensorRow]] = {}
    for row in table:
        if row.unregistered_in is not None:
            place = row.place(row.name) or _split_owner(row.unregistered_in, modules)
            if place[1] == row.unregistered_in.removeprefix(place[0] + "."):  # parsed: cut the path
                place = (place[0], place[1].split("[", 1)[0])
            holders.setdefault(place, []).append(row)
    findings = []
    for (owner, attr), rows in holders.items():
        holder = modules.get(owner, model)
        value = vars(holder).get(attr, getattr(type(holder), attr, None))
        kind = type(value).__name__
        if isinstance(value, nn.Module):
            where, fixed, code = _WHERE["attribute"], tr(N_("a registered submodule")), None
        else:
            form = _module_form(value)
            where = _WHERE.get(kind, _IN_OBJECT) if not hasattr(value, "_fields") else _IN_OBJECT
            fixed = form.split("(", 1)[0] if form else tr(N_("a registered submodule"))
            code = form
        assign = f"self.{_identifier(attr)} = {code or 'module'}"
        if code is None:
            how = render("assign it as {code}", code=assign)
        elif not _string_keys(value):
            how = render("{code} (keys must be strings)", code=assign)
        else:
            how = assign
        if _identifier(attr) != attr:  # a name with a dot is read as a path, one with a space not at all
            fixed = render("{fixed}, under a name Python reads as one attribute", fixed=fixed)
        held = sorted({row.unregistered_in for row in rows})
        tensors = [row for row in rows if row.kind == PLAIN]
        name = f"{owner}.{attr}" if owner else attr
        findings.append(
            Finding(
                name,
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
                render("Keep them in {fixed}: {how}.", fixed=fixed, how=how),
            )
        )
    return findings


def _constructor(value: object) -> str:
    """`nn.Linear(...)`: how the code that made `value` reads, arguments left out."""
    kind = type(value)
    if isinstance(value, nn.Parameter):
        return "nn.Parameter(...)"
    if isinstance(value, nn.Module):
        return (
            f"nn.{kind.__name__}(...)"
            if getattr(nn, kind.__name__, None) is kind
            else f"{kind.__name__}(...)"
        )
    return "tensor"


def _dotted_findings(model: nn.Module) -> list[Finding]:
    """Modules, parameters and buffers registered under a name with a '.' (setattr with a dotted name)."""
    findings = []
    for path, module in model.named_modules(remove_duplicate=False):
        for key, _ in (*module._modules.items(), *module._parameters.items(), *module._buffers.items()):
            if "." not in key:
                continue
            name = f"{path}.{key}" if path else key
            findings.append(
                Finding(
                    name,
                    DOTTED_NAME,
                    render(
                        "Registered under a name with a '.', which PyTorch reads as a path: {name} names "
                        "the same keys as a submodule path would, state_dict() keeps only one tensor per "
                        "key, and load_state_dict() loads each key into every tensor of that name.",
                        name=name,
                    ),
                    render(
                        "Register it under a name without '.': {code}.",
                        code=f"self.{_identifier(key)} = {_constructor(_child(module, key))}",
                    ),
                )
            )
    return findings


# -- plain tensors --------------------------------------------------------------------------


def _ancestors(path: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `a.b`, `a`, ``]: a module's path and the paths of the modules above it."""
    parts = path.split(".") if path else []
    return [".".join(parts[:cut]) for cut in range(len(parts), -1, -1)]


def _cleared_by_module(
    model: nn.Module, table: Inventory, rows: list[TensorRow], modules: dict[str, nn.Module]
) -> set[str]:
    """Plain tensors that their module, or a module above it, drops or rebuilds itself in its own
    train() or _apply().

    Asked of the module: a copy of it is put in training mode, another goes through
    `_apply`, and a tensor that is gone or replaced afterwards is a cache it manages.
    """
    by_owner: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        owner, _ = _owner_of(row, row.name, modules)
        for above in _ancestors(owner):
            module = modules.get(above, model if not above else None)
            if module is None:
                continue
            if type(module).train is not nn.Module.train or type(module)._apply is not nn.Module._apply:
                relative = row.name[len(above) + 1 :] if above else row.name
                by_owner.setdefault(above, []).append((row.name, relative))
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


@functools.lru_cache(maxsize=1024)
def _library_names(kind: type) -> frozenset[str]:
    """Attribute names that PyTorch's own classes among `kind`'s bases assign in their code (beyond
    nn.Module's): attributes that PyTorch sets and looks after itself."""
    names: set[str] = set()
    for klass in kind.__mro__:
        if klass in (nn.Module, object) or not (klass.__module__ or "").startswith("torch."):
            continue
        for value in vars(klass).values():
            function = getattr(value, "__func__", getattr(value, "fget", value))
            code = getattr(function, "__code__", None)
            if code is not None:
                names.update(i.argval for i in dis.get_instructions(code) if i.opname == "STORE_ATTR")
    return frozenset(names)


def _set_by_pytorch(row: TensorRow, modules: dict[str, nn.Module], model: nn.Module) -> bool:
    """A plain tensor attribute that a PyTorch module class keeps itself (the biases of dynamically
    quantized RNN cells, saved inside their packed weights)."""
    owner, attr = _owner_of(row, row.name, modules)
    module = modules.get(owner, model if not owner else None)
    return module is not None and attr in _library_names(type(module))


def _computed_from(tensor: torch.Tensor, table: Inventory) -> list[TensorRow]:
    """The registered tensors a tensor with a grad_fn was computed from (a bounded walk of its graph)."""
    by_id = {id(row.tensor): row for row in table if row.kind in REGISTERED}
    found: dict[int, TensorRow] = {}
    todo, seen = [tensor.grad_fn], set()
    while todo and len(seen) < 500:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor) and id(variable) in by_id:
            found[id(variable)] = by_id[id(variable)]
        todo += [next_node for next_node, _ in getattr(node, "next_functions", ())]
    return list(found.values())


def is_scalar(row: TensorRow) -> bool:
    """A 0-dim tensor on the CPU: in arithmetic with tensors on any device or of any dtype PyTorch
    treats it as a Python number, so leaving it behind at `.to()` breaks arithmetic nowhere; some
    operators do refuse it next to GPU tensors (`clamp(min=t)`, `index_select`, `gcd`,
    `nextafter`), which is why a note names such tensors. A change to it (state that is not
    saved) is a problem, which needs `audit(model, sample)` to see."""
    return row.shape == () and row.device == "cpu"


def _plain_scalar(row: TensorRow) -> bool:
    return row.kind == PLAIN and row.unregistered_in is None and is_scalar(row)


def _plain_findings(model: nn.Module, table: Inventory, modules: dict[str, nn.Module]) -> list[Finding]:
    plain = [row for row in table if row.kind == PLAIN and row.unregistered_in is None and not is_scalar(row)]
    if not plain:
        return []
    plain = [row for row in plain if not _set_by_pytorch(row, modules, model)]
    cleared = _cleared_by_module(model, table, plain, modules) if plain else set()
    devices = sorted({row.device for row in table if row.kind == PARAMETER or "buffer" in row.kind})
    findings = []
    for row in plain:
        if row.name in cleared:
            continue
        computed = _computed_finding(row, table, modules, model)
        findings.append(computed if computed is not None else _plain_finding(row, devices, modules, model))
    return findings


def _computed_finding(
    row: TensorRow, table: Inventory, modules: dict[str, nn.Module], model: nn.Module
) -> Finding | None:
    """A plain tensor computed from parameters (it has a grad_fn): a result kept, not state."""
    if row.tensor is None or row.tensor.grad_fn is None:
        return None
    sources = _computed_from(row.tensor, table)
    if not sources:
        return None
    names = [source.name for source in sources]
    owner, _ = _owner_of(row, row.name, modules)
    recomputed = next(
        (other for other in table if other.kind == COMPUTED and set(other.sources) & set(names)), None
    )
    message = render(
        "A tensor computed from {names} (it has a grad_fn), kept in a plain attribute: it keeps the "
        "values they had when it was computed, so training them and .to() leave it behind.",
        names=short_list(names, 3),
    )
    if recomputed is not None:
        fix = render(
            "Keep the name, not the result: read {read} where you need it; PyTorch recomputes it from "
            "{names} on each access.",
            read=_read(owner, recomputed.name, model, modules),
            names=short_list(names, 3),
        )
    else:
        fix = tr(
            "Compute it where you need it (in forward()) from the parameters, instead of keeping the result."
        )
    return Finding(row.name, PLAIN_TENSOR, message, fix)


def _plain_finding(
    row: TensorRow, devices: list[str], modules: dict[str, nn.Module], model: nn.Module
) -> Finding:
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
            _parameter_fix(row, modules, model),
        )
    owner, attr = _owner_of(row, row.name, modules)
    holder = modules.get(owner, model if not owner else None)
    if holder is not None and attr == row.name.rpartition(".")[2] and attr not in vars(holder):
        if isinstance(getattr(type(holder), attr, None), torch.Tensor):  # a class attribute
            return Finding(
                row.name,
                PLAIN_TENSOR,
                render(
                    "A tensor kept as a class attribute: every instance shares it, PyTorch does not track "
                    "it, so it is not in state_dict() and .to() does not move it. {where}.",
                    where=where,
                ),
                render(
                    "Register it in __init__ instead of on the class: self.register_buffer({attr!r}, "
                    "tensor) (delete the class attribute: register_buffer refuses a name the class "
                    "already has).",
                    attr=attr,
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
        _buffer_fix(row, modules, model),
    )


def _local_name(row: TensorRow, modules: dict[str, nn.Module], model: nn.Module) -> str | None:
    """The name a plain tensor attribute has in its module (`mask`), when it is one attribute and
    register_buffer accepts the name; None for a tensor inside a container."""
    owner, attr = _owner_of(row, row.name, modules)
    direct = row.name == (f"{owner}.{attr}" if owner else attr)
    return attr if direct and attr and "." not in attr else None


def _buffer_fix(row: TensorRow, modules: dict[str, nn.Module], model: nn.Module) -> str:
    name = _local_name(row, modules, model)
    if name is None:
        return tr(
            "Register it as a buffer: register_buffer(name, tensor, persistent=False) if it is "
            "computed from the constructor's arguments, or with persistent=True if it is state to save."
        )
    return render(
        "Register it as a buffer, in place of the plain assignment: "
        "self.register_buffer({name!r}, tensor, persistent=False) if it is computed from the "
        "constructor's arguments, or self.register_buffer({name!r}, tensor) if it is state to save.",
        name=name,
    )


def _parameter_fix(row: TensorRow, modules: dict[str, nn.Module], model: nn.Module) -> str:
    owner, attr = _owner_of(row, row.name, modules)
    holder = modules.get(owner, model if not owner else None)
    value = vars(holder).get(attr) if holder is not None else None
    if isinstance(value, Mapping):
        code = f"self.{_identifier(attr)} = nn.ParameterDict({{...}})"
    elif isinstance(value, (list, tuple)):
        code = f"self.{_identifier(attr)} = nn.ParameterList([...])"
    else:
        code = f"self.{_identifier(attr)} = nn.Parameter(...)"
    return render("Register it: {code}.", code=code)


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


def _unsaved_findings(
    table: Inventory, model: nn.Module, sample: object, modules: dict[str, nn.Module]
) -> tuple[list[Finding], list[str]]:
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
            fix = render(
                "Register it as a buffer, so it is saved and moved: self.register_buffer({name!r}, tensor).",
                name=_local_name(row, modules, model) or "name",
            )
        else:
            message = tr(
                "A non-persistent buffer that changed when the model ran in training mode: it is "
                "state the model learns, yet state_dict() leaves it out, so every checkpoint loses "
                "it and a reloaded model starts again from its initial value."
            )
            fix = render(
                "Register it with persistent=True (the default) so it is saved: "
                "self.register_buffer({name!r}, tensor).",
                name=row.name.rpartition(".")[2],
            )
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
    modules = dict(model.named_modules(remove_duplicate=False))
    findings = _dotted_findings(model)
    findings += _unregistered_findings(model, table, modules)
    findings += _reference_findings(model, table, modules)
    findings += _plain_findings(model, table, modules)
    notes: list[str] = []
    if sample is not None:
        unsaved, notes = _unsaved_findings(table, model, sample, modules)
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
    scalars = [row.name for row in table if _plain_scalar(row)]
    elsewhere = sorted({row.device for row in table if row.kind in REGISTERED} - {"cpu"})
    if scalars and elsewhere:
        notes.append(
            render(
                "{names}: plain 0-dim CPU tensors. Arithmetic treats them as numbers next to tensors on "
                "{devices}, but some operators (clamp(min=t), index_select, gcd) refuse them there.",
                names=short_list(scalars, 3),
                devices=", ".join(elsewhere),
            )
        )
    return Audit(table.title, findings, len(table), notes)
