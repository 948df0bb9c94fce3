"""The check's side: handles on objects that live with the student's code.

A check holds `Remote`s, never the student's objects. Each method of a `Remote` is one request to
the student's `Workbench` (`buflesson.workbench`) through a `Link`, and what comes back is plain data
(`buflesson.wire`) or another `Remote`. The same check code therefore runs in a notebook, where the
link is a function call (`LocalLink`), and in the grader's judge, where the link is a pipe to the
process that runs the student's notebook and the judge never executes a line the student wrote.
"""

from __future__ import annotations

from typing import Protocol

import torch

from buflesson import wire
from buflesson.wire import Ref


class StudentError(Exception):
    """The student's code raised while the check was running it: what it raised, as text."""

    def __init__(self, type_name: str, message: str, not_implemented: bool = False) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message
        self.not_implemented = not_implemented

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


class Refused(Exception):
    """The student's side refused a request (not plain data, unknown object) or broke the protocol."""


class Link(Protocol):
    """Carries one request to the student's side and brings its reply back."""

    def ask(self, request: bytes) -> bytes: ...


class LocalLink:
    """The link inside one process: a notebook's `check()`. Requests still travel as bytes, so a
    check sees the same copies of the data here as in the grader."""

    def __init__(self, bench) -> None:
        self.bench = bench

    def ask(self, request: bytes) -> bytes:
        return self.bench.handle(request)


class Session:
    """One check's conversation with the student's side."""

    def __init__(self, link: Link, device: torch.device | None = None) -> None:
        self.link = link
        self.requests = 0
        self.known_device = device  # the judge's: learnt before the notebook's code ran

    def ask(self, op: str, **args: object) -> object:
        """Send one operation; return its value, raise `StudentError` or `Refused`."""
        self.requests += 1
        request = wire.dumps({"op": op, "args": {k: _out(v) for k, v in args.items()}})
        try:
            reply = wire.loads(self.link.ask(request))
        except wire.WireError as error:
            raise Refused(f"unreadable reply: {error}") from None
        if not isinstance(reply, dict):
            raise Refused("malformed reply")
        if "error" in reply:
            info = reply["error"] if isinstance(reply["error"], dict) else {}
            raise StudentError(
                str(info.get("type", "Exception")),
                str(info.get("message", "")),
                bool(info.get("not_implemented", False)),
            )
        if "refused" in reply:
            raise Refused(str(reply["refused"]))
        if "value" not in reply:
            raise Refused("malformed reply")
        return self._in(reply["value"])

    def _in(self, value: object) -> object:
        """Replace every `Ref` in a reply with a `Remote`."""
        if isinstance(value, Ref):
            return Remote(self, value)
        if isinstance(value, list):
            return [self._in(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self._in(item) for item in value)
        if isinstance(value, dict) and not hasattr(value, "_metadata"):
            return {key: self._in(item) for key, item in value.items()}
        return value

    def lib(self, name: str) -> Remote:
        """A torch or buflesson object on the student's side, e.g. `lib("torch:save")`."""
        return self.ask("lib", name=name)

    def keep(self, value: object) -> Remote:
        """Send plain data (a tensor, a state dict) to the student's side and keep it there."""
        return self.ask("keep", value=value)

    def state(self) -> dict:
        """The global state there: grad mode, default dtype and device, random state (digests)."""
        return self.ask("state")

    def device(self) -> torch.device:
        """The lessons' device there: an accelerator, else the stand-in. Where the session was
        told it (the grader's judge), that, never what the student's side answers now."""
        if self.known_device is not None:
            return self.known_device
        return self.ask("device")

    def folder(self) -> str:
        """A scratch folder there, for files the check writes; removed when the check ends."""
        return self.ask("folder")


def _out(value: object) -> object:
    """Replace every `Remote` in a request with its `Ref`."""
    if isinstance(value, Remote):
        return value.ref
    if isinstance(value, list):
        return [_out(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_out(item) for item in value)
    if isinstance(value, dict) and not hasattr(value, "_metadata"):
        return {key: _out(item) for key, item in value.items()}
    return value


class Remote:
    """A handle on one object on the student's side."""

    def __init__(self, session: Session, ref: Ref) -> None:
        self.session = session
        self.ref = ref
        self._info: dict | None = None

    def __repr__(self) -> str:
        return f"<Remote {self.ref.id}: {self.info.get('type', '?')}>"

    @property
    def info(self) -> dict:
        """What kind of object it is: `kind` (placeholder, none, class, module, tensor, function,
        data), `type`, `name`, and for classes `module_class` and `bases`."""
        if self._info is None:
            self._info = self.session.ask("describe", ref=self.ref)
        return self._info

    @property
    def kind(self) -> str:
        return str(self.info.get("kind"))

    @property
    def name(self) -> str:
        """The class's or function's name, else its type's name."""
        return str(self.info.get("name") or self.info.get("type") or "?")

    def value(self) -> object:
        """The object as plain data; `Refused` when it is not plain data."""
        return self.session.ask("value", ref=self.ref)

    def attr(self, path: str, keep: bool = False) -> object:
        """`obj.path`: plain data, or a `Remote` for anything else (always a `Remote` with `keep`)."""
        return self.session.ask("attr", ref=self.ref, path=path, keep=keep)

    def attr_or_none(self, path: str) -> object:
        """`obj.path`, or None when some part of the path is missing."""
        return self.session.ask("attr", ref=self.ref, path=path, default=True)

    def item(self, key: object) -> object:
        """`obj[key]`."""
        return self.session.ask("item", ref=self.ref, key=key)

    def __call__(self, *args: object, **kwargs: object) -> object:
        """Call it (student code runs); the result as data or a `Remote`."""
        return self.session.ask("call", ref=self.ref, args=list(args), kwargs=kwargs)

    def call(
        self,
        *args: object,
        seed: int | None = None,
        device_rule: bool = False,
        grad: bool | None = None,
        keep: bool = False,
        method: str | None = None,
        **kwargs: object,
    ) -> object:
        """Call it (or its `method`) with options: a forked random state seeded with `seed`, the
        stand-in's device rule, grad mode on or off, `keep` the result there as a `Remote`."""
        return self.session.ask(
            "call",
            ref=self.ref,
            method=method,
            args=list(args),
            kwargs=kwargs,
            seed=seed,
            device_rule=device_rule,
            grad=grad,
            keep=keep,
        )

    def method(self, name: str, *args: object, **kwargs: object) -> object:
        """`obj.name(*args, **kwargs)`."""
        return self.session.ask("call", ref=self.ref, method=name, args=list(args), kwargs=kwargs)

    def drop(self) -> None:
        """Let the student's side forget the object."""
        self.session.ask("drop", refs=[self.ref])

    def inventory(self) -> list[dict]:
        """`inventory(obj)` as plain rows."""
        return self.session.ask("inventory", ref=self.ref)
