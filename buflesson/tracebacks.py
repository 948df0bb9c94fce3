"""Short tracebacks for errors raised inside torch or buflesson: the student's frames and the message.

An error raised deep inside PyTorch prints a traceback of a hundred lines through its internals,
and the line that matters is the last. In IPython's default mode ("Context"), `install(ip)`
folds every run of library frames (torch, buflesson) into one line that names the innermost frame
outside torch, keeps the student's own frames, and ends with the message; exception
notes (PyTorch's advice for torch.compile users) are left out. `%xmode Verbose` or `%xmode Plain`
shows the full traceback again. Errors raised in the student's own code are left as IPython shows them.
"""

from __future__ import annotations

import linecache
import re
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

import torch

import buflesson
from buflesson.i18n import render

_TORCH = Path(torch.__file__).resolve().parent
_BUFLESSON = Path(buflesson.__file__).resolve().parent
LIBRARIES = {"torch": _TORCH, "buflesson": _BUFLESSON}
# The frames that carry an operation into buflesson's GPU stand-in (a TorchDispatchMode). A GPU run
# has none of them, so a run of them at the end of a traceback is dropped, not counted.
PLUMBING = (
    _TORCH / "_compile.py",
    _TORCH / "_dynamo" / "eval_frame.py",
    _TORCH / "_ops.py",
    _TORCH / "utils" / "_python_dispatch.py",
    _BUFLESSON / "standin.py",
    _BUFLESSON / "cuda_rule.py",
)
CONTEXT_LINES = 2  # lines shown before and after the failing line of a student's frame

RED, GREEN, CYAN, GRAY, RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[90m", "\x1b[39m"


@dataclass(frozen=True)
class Frame:
    """One entry of a traceback: the frame and the line it was at."""

    frame: FrameType
    lineno: int

    @property
    def path(self) -> Path:
        return Path(self.frame.f_code.co_filename)

    @property
    def library(self) -> str | None:
        """The package the frame runs code of ("torch" or "buflesson"), or None."""
        try:
            resolved = self.path.resolve()
        except (OSError, ValueError):
            return None
        return next((name for name, root in LIBRARIES.items() if resolved.is_relative_to(root)), None)

    @property
    def plumbing(self) -> bool:
        try:
            return self.path.resolve() in PLUMBING
        except (OSError, ValueError):
            return False

    @property
    def name(self) -> str:
        return getattr(self.frame.f_code, "co_qualname", self.frame.f_code.co_name)

    def line(self, lineno: int | None = None) -> str:
        return linecache.getline(str(self.path), lineno or self.lineno, self.frame.f_globals).rstrip()


def frames(tb: TracebackType | None, skip: int) -> list[Frame]:
    """The traceback's frames, outermost first, without the first `skip` (IPython's own)."""
    found = []
    while tb is not None:
        found.append(Frame(tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return found[skip:]


def short_traceback(
    ip, etype: type, evalue: BaseException, tb: TracebackType | None, skip: int
) -> list[str] | None:
    """The folded traceback as IPython's structured traceback (a list of strings), or None to leave it."""
    stack = frames(tb, skip)
    if not stack or stack[-1].library is None or all(frame.library for frame in stack):
        return None
    name = etype.__name__
    lines = [
        f"{RED}{'-' * 75}{RESET}",
        f"{RED}{name}{RESET}{' ' * max(1, 42 - len(name))}Traceback (most recent call last)",
    ]
    block: list[Frame] = []
    for frame in stack:
        if frame.library:
            block.append(frame)
            continue
        lines += _folded(block, innermost=False)
        block = []
        lines.append(_shown(ip, frame))
    lines += _folded(block, innermost=True)
    lines.append(f"{RED}{etype.__name__}{RESET}: {evalue}")
    return lines


def _folded(block: list[Frame], innermost: bool) -> list[str]:
    """One line for a run of library frames, naming the innermost one outside torch."""
    if innermost:
        while block and block[-1].plumbing:
            block = block[:-1]
    if not block:
        return []
    packages = ", ".join(dict.fromkeys(frame.library for frame in block))
    count = render(
        "{count} frames in {packages}" if len(block) > 1 else "{count} frame in {packages}",
        count=len(block),
        packages=packages,
    )
    named = next((frame for frame in reversed(block) if frame.library != "torch"), None)
    where = (
        render(", through {function}: {line}", function=named.name, line=named.line().strip())
        if named
        else ""
    )
    return [f"{GRAY}   [{count}{where}]{RESET}\n"]


def _shown(ip, frame: Frame) -> str:
    """A student's frame as IPython shows it: where, then the lines around the failing one."""
    code_name = ip.compile.format_code_name(str(frame.path)) if ip is not None else None
    if code_name:
        where = f"{CYAN}{code_name[0]}{RESET} {GREEN}{code_name[1]}, line {frame.lineno}{RESET}"
    else:
        where = f"{CYAN}File{RESET} {GREEN}{frame.path}:{frame.lineno}{RESET}"
    if frame.name != "<module>":
        where += f", in {CYAN}{frame.name}{RESET}"
    first = max(1, frame.lineno - CONTEXT_LINES)
    width = len(str(frame.lineno + CONTEXT_LINES))
    body = []
    for number in range(first, frame.lineno + CONTEXT_LINES + 1):
        text = frame.line(number)
        if number > frame.lineno and not text:
            break
        marker = f"{GREEN}---->{RESET} " if number == frame.lineno else "      "
        body.append(f"{marker}{GREEN}{str(number).rjust(width)}{RESET} {text}")
    return "\n".join([where, *body]) + "\n"


def install(ip) -> None:
    """Fold library frames in the tracebacks `ip` shows in its default mode (idempotent)."""
    formatter = ip.InteractiveTB
    if getattr(formatter, "_buflesson_folds", False):
        return
    previous = formatter.structured_traceback

    def structured_traceback(etype, evalue=None, etb=None, tb_offset=None, context=5):
        if formatter.mode == "Context" and isinstance(etb, TracebackType) and evalue is not None:
            skip = formatter.tb_offset if tb_offset is None else tb_offset
            try:
                short = short_traceback(ip, etype, evalue, etb, skip or 0)
            except Exception:  # never lose the error itself to a formatting problem
                short = None
            if short is not None:
                formatter.tb = etb  # what %debug reads, as IPython's own formatter sets it
                return short
        return previous(etype, evalue, etb, tb_offset, context)

    formatter.structured_traceback = structured_traceback
    formatter._buflesson_folds = True


def text(stb: list[str]) -> str:
    """A structured traceback as plain text (colours removed), for tests and logs."""
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(stb))
