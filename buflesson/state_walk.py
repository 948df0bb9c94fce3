"""PyTorch's own account of a module's tensors, one `TensorRow` per tensor: the work behind `inventory`.

Registered tensors come from the same walk `named_parameters(remove_duplicate=False)`
and `named_buffers(remove_duplicate=False)` make, so a tensor registered under several
names (tied weights, a module used twice) is one row with the other names as aliases.
`state_dict()` itself says which names are saved; its keys that are no registered
tensor (packed quantized weights, `get_extra_state`) get rows of their own, unless the value
is a tensor some row already has (a plain attribute saved through `get_extra_state`). Then the
plain attributes of every module, looked into through containers and objects (`_Finder`):
tensors, and modules kept in plain lists, dicts or tuples, whose tensors PyTorch never sees.
TorchScript modules are not looked into: their Python attributes mirror what TorchScript keeps.
A plain attribute that holds a registered tensor itself is named on that tensor's row
(`held_by`); one that holds a view of a registered tensor is a reference; a tensor recomputed
from registered ones (parametrizations, the forward pre-hooks of `weight_norm`,
`spectral_norm` and pruning) is computed.

A row's `note` is written in the language current when the walk runs (`buflesson.i18n`).
"""

from __future__ import annotations

import collections
import copy
import enum
import functools
import sys
import types
import weakref
from collections.abc import Generator, Iterator, Mapping

import torch
from torch import nn

from buflesson.i18n import N_, listing, render, tr
from buflesson.rows import (
    BUFFER,
    COMPUTED,
    EXTRA_STATE,
    NON_PERSISTENT_BUFFER,
    NONE_BUFFER,
    PARAMETER,
    PLAIN,
    REFERENCE,
    REGISTERED,
    TensorRow,
    describe,
    is_uninitialized,
    make_row,
)

_INTERNAL = frozenset(vars(nn.Module()))  # training, _parameters, _buffers, _modules, the hook dicts
_MAX_DEPTH = 8  # how deep to look into containers and objects held as attributes
_CONTAINERS = (list, tuple, dict, set, frozenset)


class _Entry:
    """A row being built: mutable until the walk ends."""

    __slots__ = (
        "name",
        "kind",
        "tensor",
        "aliases",
        "note",
        "refers_to",
        "sources",
        "info",
        "in_sd",
        "hidden_in",
        "module",
        "held_by",
        "name_kinds",
        "unsaved",
    )

    def __init__(self, name: str, kind: str, tensor: torch.Tensor | None, info: dict | None = None) -> None:
        self.name = name
        self.kind = kind
        self.tensor = tensor
        self.aliases: list[str] = []
        self.note = ""
        self.refers_to: _Entry | None = None
        self.sources: tuple[str, ...] = ()
        self.info = info if info is not None else (describe(tensor) if tensor is not None else None)
        self.in_sd = False
        self.hidden_in: str | None = None
        self.module = ""  # the type name of the module that holds it
        self.held_by: list[str] = []  # plain attributes that hold this very tensor
        self.name_kinds: dict[str, str] | None = None  # each registered name's kind, once it has two
        self.unsaved: list[str] | tuple[()] = ()  # names of a tied tensor that are no state_dict() key


class _Owned:
    """The rows one module owns, in the order they are shown."""

    __slots__ = ("registered", "computed", "extra", "plain")

    def __init__(self) -> None:
        self.registered: list[_Entry] = []
        self.computed: list[_Entry] = []
        self.extra: list[_Entry] = []
        self.plain: list[_Entry] = []

    def __iter__(self) -> Iterator[_Entry]:
        yield from self.registered
        yield from self.computed
        yield from self.extra
        yield from self.plain


def collect(module: nn.Module) -> list[TensorRow]:
    """Every tensor `module` holds, one row each, in the order of `named_modules()`."""
    return Walk(module).rows()


class Walk:
    """One walk over a module: `rows()`, and `state_dict_error` when state_dict() raised."""

    def __init__(self, root: nn.Module) -> None:
        self.root = root
        self.owned: dict[int, _Owned] = {}  # id(module) -> its rows
        self.modules: list[nn.Module] = []  # each module once, first path first
        self.prefixes: dict[int, list[str]] = {}  # id(module) -> "a.b." for each path to it
        self.tensors: dict[int, _Entry] = {}  # id(tensor) -> the row of a registered tensor
        self.empty: dict[tuple[int, str], _Entry] = {}  # (id(module), name) -> a None buffer's row
        self.untracked: dict[int, _Entry] = {}  # id(tensor) -> the row of a plain attribute's tensor
        self.names: dict[str, _Entry] = {}  # every name and alias -> its row
        self._storages: dict[tuple[str, int], _Entry] | None = None
        self._active: set[int] = set()  # unregistered modules being walked (a cycle stops there)
        self.collisions: set[str] = set()  # names PyTorch gives to two different tensors
        self.places: dict[str, tuple[str, str]] = {}  # plain name -> (owner module's path, attribute)
        self.state_dict_error: str | None = None
        self._finder = _Finder()

    # -- registered tensors --------------------------------------------------------------------

    def _registered(self) -> None:
        for path, module in self.root.named_modules(remove_duplicate=False):
            key = id(module)
            prefix = f"{path}." if path else ""
            if key in self.prefixes:
                self.prefixes[key].append(prefix)
            else:
                self.prefixes[key] = [prefix]
                self.modules.append(module)
                self.owned[key] = _Owned()
            owned = self.owned[key]
            for name, param in module._parameters.items():
                if param is not None:
                    self._register(prefix + name, PARAMETER, param, owned, module)
            persistent_off = module._non_persistent_buffers_set
            for name, buf in module._buffers.items():
                if buf is None:
                    slot = (key, name)
                    if slot in self.empty:
                        self._alias(self.empty[slot], prefix + name)
                    else:
                        entry = _Entry(prefix + name, NONE_BUFFER, None, _NO_TENSOR)
                        entry.module = type(module).__name__
                        self.empty[slot] = entry
                        self.names[entry.name] = entry
                        owned.registered.append(entry)
                    continue
                kind = NON_PERSISTENT_BUFFER if name in persistent_off else BUFFER
                self._register(prefix + name, kind, buf, owned, module)

    def _register(self, name: str, kind: str, tensor: torch.Tensor, owned: _Owned, module: nn.Module) -> None:
        entry = self.tensors.get(id(tensor))
        if entry is not None:
            self._alias(entry, name)
            if entry.name_kinds is None:
                entry.name_kinds = {entry.name: entry.kind}
            entry.name_kinds.setdefault(name, kind)
            return
        if name in self.names:  # a module name with a dot: PyTorch gives two tensors one name
            self.collisions.add(name)
        entry = _Entry(name, kind, tensor)
        entry.module = type(module).__name__
        if is_uninitialized(tensor):
            entry.note = tr(UNINITIALIZED_NOTE)
        self.tensors[id(tensor)] = entry
        self.names[name] = entry
        owned.registered.append(entry)

    def _alias(self, entry: _Entry, name: str) -> None:
        if name != entry.name and name not in entry.aliases:
            entry.aliases.append(name)
            self.names.setdefault(name, entry)

    # -- computed tensors: parametrizations and the hooks of torch.nn.utils ------------------

    def _computed(self) -> dict[int, dict[str, tuple[str, tuple[str, ...]]]]:
        """Per module, the plain attributes a forward pre-hook recomputes: name -> (how, sources)."""
        hooked: dict[int, dict[str, tuple[str, tuple[str, ...]]]] = {}
        for module in self.modules:
            key = id(module)
            prefix = self.prefixes[key][0]
            parametrizations = (
                module._modules["parametrizations"] if "parametrizations" in module._modules else None
            )
            if isinstance(parametrizations, nn.ModuleDict):
                for tensor_name, chain in parametrizations.items():
                    self._parametrized(module, prefix, tensor_name, chain)
            for hook in module._forward_pre_hooks.values():
                attr = _recomputed_attribute(hook)
                if attr is None or not isinstance(vars(module).get(attr), torch.Tensor):
                    continue
                sources = tuple(
                    prefix + name
                    for name in (*module._parameters, *module._buffers)
                    if name.startswith(f"{attr}_") and name in self._registered_names(module)
                )
                hooked.setdefault(key, {})[attr] = (_hook_label(hook), sources)
        return hooked

    @staticmethod
    def _registered_names(module: nn.Module) -> set[str]:
        return {n for n, t in (*module._parameters.items(), *module._buffers.items()) if t is not None}

    def _parametrized(self, module: nn.Module, prefix: str, tensor_name: str, chain: nn.Module) -> None:
        originals = [
            name
            for name, tensor in (*chain._parameters.items(), *chain._buffers.items())
            if name.startswith("original") and tensor is not None
        ]
        sources = tuple(f"{prefix}parametrizations.{tensor_name}.{name}" for name in originals)
        first = getattr(chain, originals[0]) if originals else None
        info = _parametrized_info(chain, first)
        entry = _Entry(prefix + tensor_name, COMPUTED, None, info)
        entry.module = type(module).__name__
        entry.sources = sources
        steps = ", ".join(type(step).__name__ for step in chain)
        entry.note = render(
            "computed on access from {sources} by {steps} (torch.nn.utils.parametrize)",
            sources=_names(sources),
            steps=steps,
        )
        self.names.setdefault(entry.name, entry)
        for other in self.prefixes[id(module)][1:]:
            self._alias(entry, other + tensor_name)
        self.owned[id(module)].computed.append(entry)

    # -- plain attributes ----------------------------------------------------------------------

    def _plain(self, hooked: dict[int, dict[str, tuple[str, tuple[str, ...]]]]) -> None:
        for module in self.modules:
            key = id(module)
            owned = self.owned[key]
            recomputed = hooked.get(key, {})
            holder = type(module).__name__
            found = list(self._finder.attributes(module))
            for prefix in self.prefixes[key]:
                place = prefix[:-1]
                for name, value, container, attr in found:
                    full = prefix + name
                    self.places.setdefault(full, (place, attr))
                    if isinstance(value, nn.Module):
                        self._hidden_module(full, value, container, owned, place=(place, attr))
                    elif name in recomputed:
                        self._recomputed(full, value, recomputed[name], owned, holder)
                    elif container == _CLASS_ATTRIBUTE:
                        note = render(
                            "a class attribute of {holder}: one tensor shared by every instance, not "
                            "registered",
                            holder=holder,
                        )
                        self._plain_tensor(full, value, container, owned, holder, note)
                    else:
                        self._plain_tensor(full, value, container, owned, holder)

    def _recomputed(
        self, name: str, tensor: torch.Tensor, how: tuple[str, tuple[str, ...]], owned: _Owned, holder: str
    ) -> None:
        entry = self.untracked.get(id(tensor))
        if entry is not None:
            self._alias(entry, name)
            return
        label, sources = how
        entry = _Entry(name, COMPUTED, tensor)
        entry.module = holder
        entry.sources = sources
        entry.note = render(
            "recomputed from {sources} before each forward by the {label} hook: after .to() it holds the "
            "old tensor until the next forward",
            sources=_names(sources),
            label=label,
        )
        self.untracked[id(tensor)] = entry
        self.names.setdefault(name, entry)
        owned.computed.append(entry)

    def _plain_tensor(
        self,
        name: str,
        tensor: torch.Tensor,
        container: str,
        owned: _Owned,
        holder: str,
        note: str | None = None,
        hidden_in: str | None = None,
    ) -> None:
        registered = self.tensors.get(id(tensor))
        if registered is not None:  # the registered tensor itself: one tensor, one row
            if name not in registered.held_by:
                registered.held_by.append(name)
            self.names.setdefault(name, registered)
            return
        entry = self.untracked.get(id(tensor))
        if entry is not None:
            self._alias(entry, name)
            return
        target = self._viewed(tensor)
        if target is not None:
            entry = _Entry(name, REFERENCE, tensor)
            entry.refers_to = target
            entry.note = render(
                "a view of the {kind} {name} (shares its memory)", kind=tr(target.kind), name=target.name
            )
        else:
            entry = _Entry(name, PLAIN, tensor)
            if note is not None:
                entry.note = note
            elif isinstance(tensor, nn.Parameter):
                entry.note = render(
                    "an nn.Parameter kept in a plain {container}: never registered",
                    container=_container(container),
                )
        entry.hidden_in = hidden_in
        entry.module = holder
        self.untracked[id(tensor)] = entry
        self.names.setdefault(name, entry)
        owned.plain.append(entry)

    def _hidden_module(
        self,
        name: str,
        module: nn.Module,
        container: str,
        owned: _Owned,
        top: str | None = None,
        place: tuple[str, str] = ("", ""),
    ) -> None:
        """A module kept in a plain attribute: registered elsewhere it is fine, else PyTorch never sees it."""
        if id(module) in self.prefixes or id(module) in self._active:
            return
        top = top or name
        self._active.add(id(module))
        try:
            for path, sub in module.named_modules(remove_duplicate=False):
                if id(sub) in self.prefixes:
                    continue
                prefix = f"{name}.{path}." if path else f"{name}."
                kind = type(sub).__name__
                for key, tensor in (*sub._parameters.items(), *sub._buffers.items()):
                    if tensor is None:
                        continue
                    note = render(
                        "a parameter of a {module} kept in a plain {container}: never registered"
                        if key in sub._parameters
                        else "a buffer of a {module} kept in a plain {container}: never registered",
                        module=kind,
                        container=_container(container),
                    )
                    self.places.setdefault(prefix + key, place)
                    self._plain_tensor(prefix + key, tensor, container, owned, kind, note, top)
                for attr, value, inner, _ in self._finder.attributes(sub):
                    self.places.setdefault(prefix + attr, place)
                    if isinstance(value, nn.Module):
                        self._hidden_module(prefix + attr, value, inner, owned, top, place)
                    else:
                        self._plain_tensor(prefix + attr, value, inner, owned, kind, None, top)
        finally:
            self._active.discard(id(module))

    def _viewed(self, tensor: torch.Tensor) -> _Entry | None:
        """The registered row whose memory `tensor` shares (a view, a detached copy), or None."""
        base = tensor._base
        if base is not None and id(base) in self.tensors:
            return self.tensors[id(base)]
        storage = _storage(tensor)
        if storage is None:
            return None
        if self._storages is None:
            self._storages = {}
            for registered in self.tensors.values():
                where = _storage(registered.tensor)
                if where is not None:
                    self._storages.setdefault(where, registered)
        return self._storages.get(storage)

    # -- state_dict() --------------------------------------------------------------------------

    def _state_dict(self) -> None:
        try:
            state = self.root.state_dict(keep_vars=True)
        except Exception as error:  # a module whose state_dict() fails: say what the kinds predict
            self.state_dict_error = f"{type(error).__name__}: {error}"
            for entry in self.tensors.values():
                kinds = entry.name_kinds.values() if entry.name_kinds else (entry.kind,)
                entry.in_sd = any(kind in (PARAMETER, BUFFER) for kind in kinds)
            return
        owners = {prefix: module for module in self.modules for prefix in self.prefixes[id(module)]}
        for key, value in state.items():
            entry = self.names.get(key)
            if entry is not None and entry.kind != COMPUTED and key not in entry.held_by:
                entry.in_sd = True
                continue
            module, prefix = _owner(key, owners)
            if isinstance(value, torch.Tensor) and self._saved_as_extra(key, value, module):
                continue
            entry = _Entry(key, EXTRA_STATE, None, _value_info(value, self._known(value)))
            entry.module = type(module).__name__
            entry.in_sd = True
            entry.note = _extra_note(key[len(prefix) :], module, value, entry.info)
            self.names[key] = entry
            self.owned[id(module)].extra.append(entry)
        for entry in self.tensors.values():
            if entry.aliases and entry.in_sd:
                entry.unsaved = [name for name in (entry.name, *entry.aliases) if name not in state]

    def _known(self, value: object) -> dict[int, str]:
        """The tensors inside a state_dict value that already have a row: id -> that row's name."""
        known = {}
        for tensor in _flat_tensors(value):
            entry = self.tensors.get(id(tensor)) or self.untracked.get(id(tensor))
            if entry is not None:
                known[id(tensor)] = entry.name
        return known

    def _saved_as_extra(self, key: str, tensor: torch.Tensor, module: nn.Module) -> bool:
        """A state_dict entry that is a tensor some row already has: one tensor, one row."""
        registered = self.tensors.get(id(tensor))
        if registered is not None:  # get_extra_state() returned a registered tensor
            self._alias(registered, key)
            registered.in_sd = True
            return True
        plain = self.untracked.get(id(tensor))
        if plain is None or plain.kind != PLAIN:
            return False
        # a plain attribute saved through get_extra_state(): the row is the state_dict entry,
        # held by the attribute
        for owned in self.owned.values():
            if plain in owned.plain:
                owned.plain.remove(plain)
        plain.held_by = [plain.name, *plain.aliases]
        plain.aliases = []
        plain.name = key
        plain.kind = EXTRA_STATE
        plain.in_sd = True
        plain.module = type(module).__name__
        plain.note = _extra_note(key.rsplit(".", 1)[-1], module, tensor, plain.info)
        self.names[key] = plain
        self.owned[id(module)].extra.append(plain)
        return True

    def _mixed_kinds(self) -> None:
        """One tensor registered under names of different kinds: the row takes the kind that says
        most (a parameter is trained, a persistent buffer saved) and notes the others."""
        order = (PARAMETER, BUFFER, NON_PERSISTENT_BUFFER)
        for entry in self.tensors.values():
            if entry.name_kinds is None:
                continue
            kinds = set(entry.name_kinds.values())
            if len(kinds) < 2:
                continue
            kind = next(k for k in order if k in kinds)
            if entry.name_kinds[entry.name] != kind:
                first = next(name for name, k in entry.name_kinds.items() if k == kind)
                names = [entry.name, *entry.aliases]
                names.remove(first)
                entry.name, entry.aliases = first, names
            entry.kind = kind
            entry.note = "; ".join(
                render(
                    "also registered as a {kind}: {names}",
                    kind=tr(other),
                    names=", ".join(n for n, k in entry.name_kinds.items() if k == other),
                )
                for other in order
                if other in kinds and other != kind
            )

    def _collided(self) -> None:
        for name in self.collisions:
            for entry in self.tensors.values():
                if name in (entry.name, *entry.aliases):
                    entry.note = render(
                        "another tensor has this name too (a module registered under a name with a "
                        "'.'): state_dict() keeps one of them under {name}",
                        name=name,
                    )

    # -- the rows ------------------------------------------------------------------------------

    def rows(self) -> list[TensorRow]:
        self._registered()
        self._mixed_kinds()
        self._collided()
        hooked = self._computed()
        self._plain(hooked)
        self._state_dict()
        return [_row(entry, self.places) for module in self.modules for entry in self.owned[id(module)]]


_NO_TENSOR = {
    "device": "-",
    "dtype": "-",
    "requires_grad": False,
    "shape": None,
    "elements": None,
    "nbytes": None,
}


def _row(entry: _Entry, places: dict[str, tuple[str, str]]) -> TensorRow:
    info = entry.info or _NO_TENSOR
    kind = entry.kind
    target = entry.refers_to
    if kind == PARAMETER:
        follows, stepped = True, info["requires_grad"]
    elif kind in (BUFFER, NON_PERSISTENT_BUFFER):
        follows, stepped = True, False
    elif kind == COMPUTED:  # computed on access follows; a hook's result waits for the next forward
        follows, stepped = entry.tensor is None, False
    elif kind == REFERENCE and target is not None:  # a view: new memory after .to() is not its memory
        follows, stepped = False, target.kind == PARAMETER and target.info["requires_grad"]
    else:
        follows = stepped = False
    return make_row(
        name=entry.name,
        kind=kind,
        in_state_dict=entry.in_sd,
        follows_to=follows,
        stepped_by_optimizer=stepped,
        requires_grad=info["requires_grad"],
        device=info["device"],
        dtype=info["dtype"],
        shape=info["shape"],
        tensor=entry.tensor,
        aliases=tuple(entry.aliases),
        note=entry.note,
        refers_to=target.name if target is not None else None,
        sources=entry.sources,
        elements=info["elements"],
        nbytes=info["nbytes"],
        unregistered_in=entry.hidden_in,
        module=entry.module,
        held_by=tuple(entry.held_by),
        name_kinds=tuple(entry.name_kinds.items())
        if entry.name_kinds and len(set(entry.name_kinds.values())) > 1
        else (),
        unsaved=tuple(entry.unsaved),
        places=()
        if kind in REGISTERED and not entry.held_by
        else tuple(
            (name, *places[name]) for name in (entry.name, *entry.aliases, *entry.held_by) if name in places
        ),
    )


UNINITIALIZED_NOTE = N_("uninitialized (lazy module): the first forward sets its shape")
_CONTAINER_WORDS = {"attribute": N_("attribute"), "container": N_("container")}


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else tr("tensors it does not register")


def _container(container: str) -> str:
    """What holds a plain tensor, as a note names it: `attribute`, or a type such as `list`."""
    return tr(_CONTAINER_WORDS[container]) if container in _CONTAINER_WORDS else container


_CLASS_ATTRIBUTE = "class attribute"
_MAX_ITEMS = 5000  # values looked at below one attribute
_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None), range, memoryview)
_ATOMS += (torch.dtype, torch.device)
_OPAQUE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
    functools.partial,
    weakref.ReferenceType,
    enum.Enum,
    torch.Generator,
    torch.ScriptObject,
)
_OPAQUE_MODULES = ("torch._", "torch.fx", "torch.jit", "torch.utils.hooks", "builtins", "typing", "abc")


_ATOM_TYPES = frozenset(_ATOMS)


def _enterable(value: object) -> bool:
    """Whether a plain attribute's value may hold tensors: containers and objects, not numbers or code."""
    kind = type(value)
    if kind in _ATOM_TYPES:
        return False
    if kind in _CONTAINER_TYPES or isinstance(value, (*_CONTAINERS, Mapping, collections.deque)):
        return True
    if isinstance(value, _ATOMS) or isinstance(value, _OPAQUE):
        return False
    if (kind.__module__ or "").startswith(_OPAQUE_MODULES):
        return False
    return bool(_slots_of(kind)) or isinstance(_fields(value), dict)


_FLAT_TYPES = frozenset((list, tuple, set, frozenset, dict))


def _atoms_only(value: list | tuple | set | frozenset | dict) -> bool:
    """A container of numbers and strings only (most containers a module keeps): nothing to look into."""
    items = value.values() if type(value) is dict else value
    return all(type(item) in _ATOM_TYPES for item in items)


_CONTAINER_TYPES = frozenset((list, tuple, dict, set, frozenset, collections.deque, collections.OrderedDict))


def _fields(value: object) -> dict | None:
    """An object's `__dict__`, read without running its own `__getattribute__` (configs override it)."""
    try:
        fields = object.__getattribute__(value, "__dict__")
    except (AttributeError, TypeError):
        return None
    return fields if isinstance(fields, dict) else None


@functools.lru_cache(maxsize=4096)
def _slots_of(kind: type) -> tuple[tuple[str, types.MemberDescriptorType], ...]:
    """The `__slots__` a class and its bases (outside torch) declare, with their descriptors."""
    found: dict[str, types.MemberDescriptorType] = {}
    for klass in kind.__mro__:
        slots = vars(klass).get("__slots__")
        if slots is None or (klass.__module__ or "").startswith("torch."):
            continue
        for slot in (slots,) if isinstance(slots, str) else slots:
            descriptor = vars(klass).get(slot)
            if slot not in found and type(descriptor) is types.MemberDescriptorType:
                found[slot] = descriptor
    return tuple(found.items())


def _slot_values(value: object) -> Iterator[tuple[str, object]]:
    """The attributes an object keeps in `__slots__`, read through their descriptors (no code runs)."""
    for slot, descriptor in _slots_of(type(value)):
        try:
            yield slot, descriptor.__get__(value, type(value))
        except AttributeError:  # an empty slot
            continue


_KEY_TYPES = (str, int, float, bool, bytes, type(None), enum.Enum)


def _key_text(key: object, index: int) -> str:
    """A dict key as Python writes it (`'mean'`, `0`); a key such as a tensor, whose repr is its
    values, as its type and position (`<Parameter #0>`)."""
    if isinstance(key, _KEY_TYPES) or (
        isinstance(key, tuple) and all(isinstance(k, _KEY_TYPES) for k in key)
    ):
        text = repr(key)
        if len(text) <= 60:
            return text
    return f"<{type(key).__name__} #{index}>"


def _members(value: object) -> Iterator[tuple[str, object, object]]:
    """(how, key, item) for what a container or an object holds; `_member_name` writes the name."""
    if isinstance(value, Mapping):
        for index, (key, item) in enumerate(list(value.items())):
            yield "key", (key, index), item
    elif isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        for field, item in zip(value._fields, value, strict=False):
            yield "field", field, item
    elif isinstance(value, (list, tuple, collections.deque)):
        for index, item in enumerate(list(value)):
            yield "index", index, item
    elif isinstance(value, (set, frozenset)):
        for index, item in enumerate(list(value)):
            yield "set", index, item
    else:
        fields = _fields(value)
        if fields is not None:
            for field, item in list(fields.items()):
                yield "field", field, item
        for slot, item in _slot_values(value):
            yield "field", slot, item


def _member_name(name: str, how: str, key: object) -> str:
    """The name of a member as Python reads it: `cfg['a']`, `layers[0]`, `stats.mean`, `rows{0}`."""
    if how == "key":
        return f"{name}[{_key_text(*key)}]"
    if how == "index":
        return f"{name}[{key}]"
    if how == "set":
        return f"{name}{{{key}}}"
    return f"{name}.{key}"


def _class_tensors(kind: type) -> tuple[tuple[str, torch.Tensor], ...]:
    """Tensors kept as class attributes by a module class or its bases (outside torch)."""
    found: dict[str, torch.Tensor] = {}
    for klass in kind.__mro__:
        if klass is object or (klass.__module__ or "").startswith("torch."):
            continue
        for name, value in vars(klass).items():
            if name not in found and isinstance(value, torch.Tensor):
                found[name] = value
    return tuple(found.items())


class _Finder:
    """Tensors and modules reachable from a module's plain attributes.

    Looks into lists, tuples (namedtuples too), dicts, sets, deques, dataclasses and other
    objects (their `__dict__` and `__slots__`), down to `_MAX_DEPTH` levels and at most
    `_MAX_ITEMS` values below one attribute. Objects found to hold nothing are remembered,
    so a config shared by every layer is looked into once.
    """

    def __init__(self) -> None:
        self.clean: set[int] = set()
        self.count = 0
        self.classes: dict[type, tuple] = {}  # class -> (TorchScript?, slots, class tensors)
        self.path: set[int] = set()  # the objects being looked into (a cycle stops there)

    def attributes(self, module: nn.Module) -> Iterator[tuple[str, torch.Tensor | nn.Module, str, str]]:
        """(name, value, container, attribute) for each tensor or module in a module's plain attributes."""
        kind = type(module)
        about = self.classes.get(kind)
        if about is None:
            # TorchScript keeps its state itself: its Python attributes are mirrors
            script = issubclass(kind, torch.jit.ScriptModule)
            about = self.classes[kind] = (script, _slots_of(kind), _class_tensors(kind))
        script, slots, class_tensors = about
        if script:
            return
        own = vars(module)
        values = own.items() if not slots else [*own.items(), *_slot_values(module)]
        for name, value in values:
            if type(value) in _ATOM_TYPES or name in _INTERNAL:
                continue
            if isinstance(value, (torch.Tensor, nn.Module)):
                yield name, value, "attribute", name
            elif id(value) not in self.clean and _enterable(value):
                if type(value) in _FLAT_TYPES and len(value) <= 64 and _atoms_only(value):
                    continue
                kind = type(value).__name__ if type(value) in _CONTAINERS else "container"
                self.count = 0
                for inner, item in self._inside(value, name, 1):
                    yield inner, item, kind, name
        for name, value in class_tensors:
            if name not in own and name not in module._parameters and name not in module._buffers:
                yield name, value, _CLASS_ATTRIBUTE, name

    def _inside(
        self, value: object, name: str, depth: int
    ) -> Generator[tuple[str, torch.Tensor | nn.Module], None, bool]:
        """Yields what `value` holds; returns whether it was looked into completely and held nothing."""
        key = id(value)
        if key in self.clean:
            return True
        if key in self.path or depth > _MAX_DEPTH:
            return False
        self.path.add(key)
        try:
            clean = yield from self._members_of(value, name, depth)
        finally:
            self.path.discard(key)
        if clean:
            self.clean.add(key)
        return clean

    def _members_of(
        self, value: object, name: str, depth: int
    ) -> Generator[tuple[str, torch.Tensor | nn.Module], None, bool]:
        clean = True
        for how, key, item in _members(value):
            self.count += 1
            if self.count > _MAX_ITEMS:
                return False
            if type(item) in _ATOM_TYPES:
                continue
            if isinstance(item, (torch.Tensor, nn.Module)):
                clean = False
                yield _member_name(name, how, key), item
            elif id(item) not in self.clean and _enterable(item):
                inner = _member_name(name, how, key)
                clean = (yield from self._inside(item, inner, depth + 1)) and clean
        return clean


def _storage(tensor: torch.Tensor) -> tuple[str, int] | None:
    """Where a tensor's memory lives, to spot views that share it; None when there is no memory."""
    if tensor.device.type == "meta" or is_uninitialized(tensor):
        return None
    try:
        pointer = tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError, TypeError):
        return None
    return (str(tensor.device), pointer) if pointer else None


def _utils_hooks() -> tuple[type, ...]:
    import torch.nn.utils.prune  # noqa: F401  (the submodules, not the functions of the same name)
    import torch.nn.utils.spectral_norm  # noqa: F401
    import torch.nn.utils.weight_norm  # noqa: F401

    return (
        sys.modules["torch.nn.utils.weight_norm"].WeightNorm,
        sys.modules["torch.nn.utils.spectral_norm"].SpectralNorm,
        sys.modules["torch.nn.utils.prune"].BasePruningMethod,
    )


_UTILS_HOOKS = _utils_hooks()


def _recomputed_attribute(hook: object) -> str | None:
    """The attribute a forward pre-hook of torch.nn.utils recomputes (weight_norm, spectral_norm, prune).

    Only those hooks: any other hook with a `name` attribute (a logger) recomputes nothing.
    """
    if not isinstance(hook, _UTILS_HOOKS):
        return None
    value = getattr(hook, "name", None) or getattr(hook, "_tensor_name", None)
    return value if isinstance(value, str) and value else None


def _hook_label(hook: object) -> str:
    module = type(hook).__module__
    known = {
        "torch.nn.utils.weight_norm": "weight_norm",
        "torch.nn.utils.spectral_norm": "spectral_norm",
        "torch.nn.utils.prune": "prune",
    }
    return known.get(module, type(hook).__name__)


def _parametrized_info(chain: nn.Module, original: torch.Tensor | None) -> dict:
    """Device, dtype and shape of a parametrized tensor, computed on the meta device (no side effect)."""
    info = dict(_NO_TENSOR)
    if original is None:
        return info
    info.update(device=str(original.device), dtype=str(original.dtype).removeprefix("torch."))
    info["requires_grad"] = any(
        t.requires_grad for t in (*chain._parameters.values(), *chain._buffers.values()) if t is not None
    )
    memo = {}
    for tensor in (*chain.parameters(), *chain.buffers()):
        if is_uninitialized(tensor):
            return info
        memo[id(tensor)] = torch.empty_like(tensor, device="meta")
    try:
        twin = copy.deepcopy(chain, memo)
        with torch.no_grad():
            value = twin()
    except Exception:
        return info
    if isinstance(value, torch.Tensor):
        info.update(shape=tuple(value.shape), dtype=str(value.dtype).removeprefix("torch."))
    return info


def _owner(key: str, owners: dict[str, nn.Module]) -> tuple[nn.Module, str]:
    """The deepest module whose path is a prefix of a state_dict key, and that prefix."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut]) + "."
        if prefix in owners:
            return owners[prefix], prefix
    return owners[""], ""


def _extra_note(local: str, module: nn.Module, value: object, info: dict) -> str:
    owner = type(module).__name__
    parts = render(" ({parts})", parts=info["parts"]) if info.get("parts") else ""
    held = render("; it holds {names}, counted in their rows", names=info["held"]) if info.get("held") else ""
    if local == "_extra_state":
        return render(
            "returned by {owner}.get_extra_state(){parts}: saved by state_dict(), handed to "
            "set_extra_state() by load_state_dict(); not moved, not trained{held}",
            owner=owner,
            parts=parts,
            held=held,
        )
    if type(module)._save_to_state_dict is not nn.Module._save_to_state_dict:
        return render(
            "packed weights{parts} written by {owner}._save_to_state_dict: saved, not a registered "
            "tensor{held}"
            if "packed" in local.lower() or _is_packed(value)
            else "a value{parts} written by {owner}._save_to_state_dict: saved, not a registered "
            "tensor{held}",
            owner=owner,
            parts=parts,
            held=held,
        )
    return render(
        "added to state_dict() by a hook{parts}: not a registered tensor{held}", parts=parts, held=held
    )


def _is_packed(value: object) -> bool:
    return isinstance(value, torch.ScriptObject) or (
        isinstance(value, tuple) and any(isinstance(v, torch.Tensor) and v.is_quantized for v in value)
    )


def _flat_tensors(value: object, depth: int = 0) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > 3:
        return []
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _flat_tensors(item, depth + 1)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _flat_tensors(item, depth + 1)]
    if isinstance(value, torch.ScriptObject):
        try:
            return _flat_tensors(value.__getstate__(), depth + 1)
        except Exception:
            return []
    return []


def _value_info(value: object, known: dict[int, str] | None = None) -> dict:
    """Device, dtype, shape, elements and bytes of a state_dict value that is not a registered tensor.

    Tensors in it that have rows of their own (`known`: id -> row name) are named, not counted again.
    """
    if isinstance(value, torch.Tensor):
        return describe(value)
    info = dict(_NO_TENSOR)
    if isinstance(value, torch.dtype):
        return {**info, "dtype": str(value).removeprefix("torch.")}
    tensors = _flat_tensors(value)
    if known:
        info["held"] = ", ".join(dict.fromkeys(known[id(t)] for t in tensors if id(t) in known))
        tensors = [t for t in tensors if id(t) not in known]
    if not tensors:
        return {**info, "dtype": type(value).__name__}
    parts = [describe(t) for t in tensors]
    for part in parts:
        part["shape_text"] = tr("uninitialized") if part["shape"] is None else str(part["shape"])
    devices = sorted({p["device"] for p in parts})
    dtypes = list(dict.fromkeys(p["dtype"] for p in parts))
    info.update(device=", ".join(devices), dtype=", ".join(dtypes))
    if len(parts) == 1:
        info["shape"] = parts[0]["shape"]
    else:
        info["parts"] = listing((f"{p['dtype']} {p['shape_text']}" for p in parts), N_(" and "))
    if all(p["elements"] is not None for p in parts):
        info["elements"] = sum(p["elements"] for p in parts)
        info["nbytes"] = sum(p["nbytes"] for p in parts)
    return info


__all__ = ["collect", "REGISTERED", "Walk"]
