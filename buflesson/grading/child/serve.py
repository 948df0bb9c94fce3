"""`check(exercise_id, answer)` as the child's notebook sees it: the judge checks, the child serves.

The grader's check cell runs with `check` bound to the function `grader_check` makes. It keeps the
answer in a `Workbench`, tells the judge which exercise the cell checks, and then answers the
judge's requests (`REQUEST` frames: build it, run it, save it...) with what the workbench replies,
until the judge sends the `RESULT` it decided. Nothing it replies is a verdict: a reply is data the
judge compares with what it computes itself, so patching this module, buflesson or torch here only
changes the data, as a wrong answer would.
"""

from __future__ import annotations

from collections.abc import Callable

from buflesson import wire
from buflesson.grading import channel as frames
from buflesson.grading.child.alarm import CellTimeout, CellTimer
from buflesson.results import CheckResult
from buflesson.workbench import Workbench


class CheckRefused(Exception):
    """The judge did not accept this check request (the message says why)."""


def grader_check(channel: frames.Channel, timer: CellTimer) -> Callable[..., CheckResult]:
    """The `check` of check cells in the grader."""

    def check(exercise_id: object, answer: object = ...) -> CheckResult:
        bench = Workbench(answer)
        try:
            with timer.paused():
                channel.send_json(frames.CHECK, {"exercise": str(exercise_id)})
                return _serve(channel, bench, timer)
        finally:
            bench.close()

    return check


def _serve(channel: frames.Channel, bench: Workbench, timer: CellTimer) -> CheckResult:
    while True:
        kind, payload = channel.receive()
        if kind == frames.REQUEST:
            channel.send(frames.REPLY, answer(bench, payload, timer))
        elif kind == frames.RESULT:
            shown = frames.parse_json(payload)
            fields = ("exercise", "title", "status", "message", "hint")
            return CheckResult(*(str(shown.get(name, "")) for name in fields))
        elif kind == frames.REFUSED:
            raise CheckRefused(str(frames.parse_json(payload).get("reason", "")))


def answer(bench: Workbench, request: bytes, timer: CellTimer) -> bytes:
    """The workbench's reply to one request; whatever the student's code raises, a reply, and never
    one larger than the judge accepts."""
    try:
        with timer.running():
            reply = bench.handle(request)
        if len(reply) <= frames.MAX_REPLY:
            return reply
        size = f"{len(reply) / 2**20:.0f} MiB"
        return wire.dumps({"refused": f"the reply ({size}) is larger than the grader takes in one answer"})
    except CellTimeout:
        error = {"type": "TimeoutError", "message": f"ran past the {timer.seconds:g} s limit per cell"}
    except BaseException as caught:  # noqa: BLE001 - SystemExit from a student's __init__ included
        error = {"type": type(caught).__name__, "message": _text(caught)}
    return wire.dumps({"error": {**error, "not_implemented": False}})


def _text(error: BaseException) -> str:
    try:
        return " ".join(str(error).split())[:2000]
    except Exception:  # noqa: BLE001 - a hostile __str__
        return ""
