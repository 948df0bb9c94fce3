"""The child's notebook: run the cells the judge sends, one at a time, in an IPython shell.

Student and given cells run as IPython runs them (magics, `display`); their output goes nowhere.
A check cell runs with `check` bound to the grader's (`serve.grader_check`). After each cell the
child reports whether it raised (and what) or ran out of time; the judge uses that only to explain
a row (the points come from the checks the judge ran itself).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

from buflesson.grading import channel as frames
from buflesson.grading.child.alarm import CellTimeout, CellTimer
from buflesson.grading.child.serve import grader_check

CHECK = "check"
MAX_TEXT = 300


def describe_error(error: BaseException) -> str:
    """`Type: message`, on one line and short."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a hostile __str__
        text = ""
    text = " ".join(f"{type(error).__name__}: {text}".split()) if text else type(error).__name__
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def serve_notebook(shell, cell_timeout: float) -> Callable[[int], None]:
    """What the sandbox runs in the child: `run(channel_fd)`."""

    def run(channel_fd: int) -> None:
        device = _device()  # before the notebook's folder is on sys.path: no module of its runs here
        sys.path.insert(0, "")  # the student's own modules, in the notebook's folder
        channel = frames.Channel(socket.socket(fileno=channel_fd), frames.MAX_STEP)
        timer = CellTimer(cell_timeout)
        check = grader_check(channel, timer)
        channel.send_json(frames.HELLO, {"device": device})
        while True:
            try:
                kind, payload = channel.receive()
            except frames.Closed:
                return  # the judge has sent every cell
            if kind != frames.STEP:
                continue  # a late RESULT or REFUSED: nothing to do
            step = frames.parse_json(payload)
            channel.send_json(frames.DONE, run_step(shell, step, timer, check))

    return run


def _device() -> str:
    """The device checks move models to in this process, said in the hello, before any of the
    notebook's code has run: the judge takes it from there, never from a later answer."""
    from buflesson.devices import checking_device

    return str(checking_device())


_MISSING = object()


def run_step(shell, step: dict, timer: CellTimer, check) -> dict:
    """Run one cell; what the judge needs to know about how it ended."""
    source, label = str(step.get("source", "")), str(step.get("label", "cell"))
    error: BaseException | None = None
    try:
        timer.start()
        if step.get("kind") == CHECK:
            namespace = shell.user_ns
            saved = namespace.get("check", _MISSING)
            namespace["check"] = check
            try:
                exec(compile(shell.transform_cell(source), label, "exec"), namespace)  # noqa: S102
            finally:
                if saved is _MISSING:
                    namespace.pop("check", None)
                else:
                    namespace["check"] = saved
        else:
            outcome = shell.run_cell(source, silent=True)
            error = outcome.error_before_exec or outcome.error_in_exec
    except BaseException as caught:  # noqa: BLE001 - whatever a cell raises ends only that cell
        error = caught
    finally:
        timer.stop()
    report: dict = {"n": step.get("n")}
    if isinstance(error, CellTimeout):
        report["timeout"] = True
    elif error is not None:
        report["error"] = describe_error(error)
        report["not_implemented"] = isinstance(error, NotImplementedError)
    return report
