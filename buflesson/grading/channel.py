"""Frames between the judge and a child: what crosses the process boundary, and nothing else.

A frame is one kind byte, a 4-byte length and the payload. Payloads are JSON (small control
messages) or `buflesson.wire` messages (a check's requests and the replies): plain data, nothing
pickled, so reading a frame runs no code. The receiving side caps the size of what it accepts.

    judge -> child   STEP     {"n", "kind", "label", "source"}   run this cell
                     REQUEST  wire bytes                          one operation of a check
                     RESULT   {"status", "message", ...}          the check is over (what it showed)
                     REFUSED  {"reason"}                          a check request that was not accepted
    child -> judge   HELLO    {}                                  ready for the first cell
                     DONE     {"n", "error", "timeout", ...}      the cell has run
                     CHECK    {"exercise"}                        the check cell asks for its check
                     REPLY    wire bytes                          the answer to one REQUEST
"""

from __future__ import annotations

import json
import socket
import struct
import time

STEP, REQUEST, RESULT, REFUSED = b"S", b"Q", b"R", b"X"
HELLO, DONE, CHECK, REPLY = b"H", b"D", b"C", b"P"
KINDS = {STEP, REQUEST, RESULT, REFUSED, HELLO, DONE, CHECK, REPLY}

HEADER = struct.Struct(">cI")

# How a child's process ends when its own code (not the notebook's) ends it.
EXIT_BROKEN = 70  # the child's machinery failed: the notebook broke something it relies on
EXIT_SETUP = 71  # the sandbox could not be set up (before any student code ran)
EXIT_CHANNEL = 75  # the channel to the judge was closed from inside the child
EXIT_WORDS = {
    EXIT_BROKEN: "the notebook broke the grader's code in its process",
    EXIT_SETUP: "its sandbox could not be set up",
    EXIT_CHANNEL: "the notebook closed its connection to the grader",
}
MAX_REPLY = 64 * 2**20  # what the judge accepts in one frame from a child (a lesson's tensors are tiny)
MAX_CONTROL = 2**20  # a JSON frame
MAX_STEP = 64 * 2**20  # what a child accepts from the judge (a cell's source)


class ChannelError(Exception):
    """The other side broke the protocol, closed the channel or did not answer in time."""


class Closed(ChannelError):
    """The other side closed the channel (or died)."""


class TimedOut(ChannelError):
    """Nothing came before the deadline."""


class Broken(ChannelError):
    """A frame that is not one: unknown kind, over the size cap, not JSON where JSON was due."""


class Channel:
    """One end of a judge-child channel, over a connected stream socket."""

    def __init__(self, sock: socket.socket, max_frame: int) -> None:
        self.sock = sock
        self.max_frame = max_frame

    def send(self, kind: bytes, payload: bytes = b"", deadline: float | None = None) -> None:
        """Send one frame; with a `deadline`, `TimedOut` when the other side does not take it in time."""
        try:
            self.sock.settimeout(None if deadline is None else max(0.001, deadline - time.monotonic()))
            self.sock.sendall(HEADER.pack(kind, len(payload)) + payload)
        except TimeoutError:
            raise TimedOut("the other side did not read in time") from None
        except OSError as error:
            raise Closed(f"the channel is closed ({error.strerror or error})") from None

    def send_json(self, kind: bytes, message: dict, deadline: float | None = None) -> None:
        self.send(kind, json.dumps(message, ensure_ascii=True).encode(), deadline)

    def receive(self, deadline: float | None = None) -> tuple[bytes, bytes]:
        """The next frame (kind, payload); `deadline` is a `time.monotonic()` value or None."""
        kind, length = HEADER.unpack(self._exactly(HEADER.size, deadline))
        if kind not in KINDS:
            raise Broken(f"a frame of unknown kind {kind!r}")
        if length > self.max_frame:
            raise Broken(f"a frame of {length} bytes (at most {self.max_frame} are accepted)")
        return kind, self._exactly(length, deadline)

    def _exactly(self, count: int, deadline: float | None) -> bytes:
        chunks, got = [], 0
        while got < count:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimedOut("no answer in time")
                self.sock.settimeout(left)
            else:
                self.sock.settimeout(None)
            try:
                chunk = self.sock.recv(min(count - got, 1 << 20))
            except TimeoutError:
                raise TimedOut("no answer in time") from None
            except OSError as error:
                raise Closed(f"the channel is closed ({error.strerror or error})") from None
            if not chunk:
                raise Closed("the channel was closed")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def parse_json(payload: bytes) -> dict:
    """A JSON control message (a dict), or `Broken`."""
    if len(payload) > MAX_CONTROL:
        raise Broken("a control message over 1 MiB")
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError):
        raise Broken("a control message that is not JSON") from None
    if not isinstance(message, dict):
        raise Broken("a control message that is not an object")
    return message
