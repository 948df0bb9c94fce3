"""The judge's handle on the zygote: start it, ask it for one child per notebook, learn how each
child ended, kill one. `Grader` is the child side of one run: its scratch folder and its zygote.

The zygote (`buflesson.grading.child.zygote`) is started with `python -I`, a scrubbed environment,
the number of its control socket as its only argument and the run's scratch folder as its working
directory: it is never told where the course, the hidden checks or the output are. Each child gets a
socket of its own to the judge (passed with SCM_RIGHTS); the judge kills a child through a pidfd
of its keeper, which takes every process of the notebook with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from buflesson.grading.channel import MAX_REPLY, Channel
from buflesson.grading.judge.scratch import ScratchRoot
from buflesson.grading.limits import Limits

START_TIMEOUT = 300.0  # seconds for the zygote's imports and warm-up
FORK_TIMEOUT = 60.0
MAX_MESSAGE = 1 << 16


class ZygoteError(Exception):
    """The zygote could not start, or died."""


@dataclass
class Child:
    """One notebook's process, seen from the judge."""

    job: int
    channel: Channel
    zygote: Zygote
    pid: int = 0
    pidfd: int | None = None
    status: int | None = None  # its wait status, once it ended
    lost: bool = False  # the zygote died: how the child ended is unknown
    ended: threading.Event = field(default_factory=threading.Event)

    def kill(self) -> None:
        """SIGKILL the child's keeper: the notebook's processes all go with it."""
        if self.ended.is_set():
            return
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                return
            except OSError:
                pass
        self.zygote.ask_kill(self.job)

    def wait(self, timeout: float) -> bool:
        """True once the child has ended (within `timeout` seconds)."""
        return self.ended.wait(timeout)

    def close(self) -> None:
        self.channel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def zygote_environment(scratch_root: Path) -> dict[str, str]:
    """What the zygote (and so every child) may know of the judge's environment: no path of the
    course or the output, nothing but locale, hash seed, accelerator selection and where to cache."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if name in ("LANG", "LC_ALL", "TZ", "PYTHONHASHSEED", "LD_LIBRARY_PATH")
        or name.endswith("_VISIBLE_DEVICES")
    }
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib"
    kept.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=str(scratch_root),
        TMPDIR=str(scratch_root),
        MPLBACKEND="Agg",
        PYTORCH_NVML_BASED_CUDA_CHECK="1",  # asking whether CUDA is there must not start it before a fork
        MPLCONFIGDIR=str(cache if cache.is_dir() else scratch_root / "matplotlib"),
    )
    return kept


class Zygote:
    """The running zygote of one grading run."""

    def __init__(self, scratch_root: Path) -> None:
        """Start the zygote (it begins importing at once); `configure` completes the start."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        self.lock = threading.Lock()
        self.log = scratch_root / "zygote.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-m", "buflesson.grading.child.zygote", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=zygote_environment(scratch_root),
                cwd=scratch_root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C at the terminal is the judge's to handle
            )
        theirs.close()
        self.children: dict[int, Child] = {}
        self.forked: dict[int, threading.Event] = {}
        self.next_job = 0
        self.alive = False
        self.level = self.describe = self.why = ""

    def configure(self, imports: list[str], sandbox: str, limits: Limits, secrets: list[Path]) -> None:
        """Tell the zygote what to import and how to confine children; wait until it is ready."""
        limits_sent = {
            "cell_timeout": limits.cell_timeout,
            "timeout": limits.timeout,
            "memory": limits.memory,
            "disk": limits.disk,
            "processes": limits.processes,
        }
        try:
            self._send({"imports": imports, "sandbox": sandbox, "limits": limits_sent})
        except OSError:
            pass
        ready = self._receive(START_TIMEOUT)[0]
        if not ready or "error" in ready or not ready.get("ready"):
            self.close()
            why = (ready or {}).get("error") or f"it exited (see {self.log})"
            raise ZygoteError(f"the grader's child process could not start: {why}")
        self.level, self.describe, self.why = ready["level"], ready["describe"], ready.get("why", "")
        binds = [Path(p) for p in ready.get("binds", [])]
        self._send({"masks": hidden_inside(binds, secrets)})
        self.alive = True
        self.reader = threading.Thread(target=self._read, name="zygote-reader", daemon=True)
        self.reader.start()

    # --- messages ----------------------------------------------------------------------------

    def _send(self, message: dict, fds: list[int] = ()) -> None:
        data = json.dumps(message).encode()
        with self.lock:
            if fds:
                socket.send_fds(self.control, [data], list(fds))
            else:
                self.control.send(data)

    def _receive(self, timeout: float | None) -> tuple[dict | None, list[int]]:
        self.control.settimeout(timeout)
        try:
            data, fds, _flags, _address = socket.recv_fds(self.control, MAX_MESSAGE, 4)
        except (OSError, TimeoutError):
            return None, []
        if not data:
            return None, fds
        try:
            return json.loads(data), fds
        except ValueError:
            return None, fds

    def _read(self) -> None:
        """The reader thread: forks done, children ended; the zygote's death ends every child."""
        while True:
            message, fds = self._receive(None)
            if message is None:
                break
            if "forked" in message:
                child = self.children.get(message["forked"])
                if child is None:
                    for fd in fds:
                        os.close(fd)
                    continue
                child.pid = int(message.get("pid", 0))
                child.pidfd = fds[0] if fds else None
                self.forked[child.job].set()
            elif "exited" in message:
                child = self.children.pop(message["exited"], None)
                if child is not None:
                    child.status = int(message["status"])
                    child.ended.set()
        self.alive = False
        for child in list(self.children.values()):
            child.lost = True
            child.ended.set()
        for event in self.forked.values():
            event.set()

    # --- the judge's requests ----------------------------------------------------------------

    def fork(self, scratch: Path, slot: int) -> Child:
        """A new child in `scratch`, running as worker slot `slot`."""
        if not self.alive:
            raise ZygoteError("the grader's child process has died")
        judge_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.lock:
            job = self.next_job
            self.next_job += 1
        child = Child(job, Channel(judge_end, MAX_REPLY), self)
        self.children[job] = child
        self.forked[job] = threading.Event()
        try:
            self._send(
                {"op": "fork", "job": job, "scratch": str(scratch), "slot": slot}, [child_end.fileno()]
            )
            sent = True
        except OSError:  # the zygote is gone (or being closed): no answer will come
            self.alive = sent = False
        finally:
            child_end.close()
        done = sent and self.forked[job].wait(FORK_TIMEOUT)
        del self.forked[job]
        if not done or not child.pid:
            child.close()
            self.children.pop(job, None)
            raise ZygoteError("the grader's child process did not fork a child")
        return child

    def ask_kill(self, job: int) -> None:
        try:
            self._send({"op": "kill", "job": job})
        except OSError:
            pass

    def close(self) -> None:
        """End the zygote: it kills every child still running, then exits."""
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.control.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def hidden_inside(binds: list[Path], secrets: list[Path]) -> list[str]:
    """The secret paths (course, hidden checks, submissions, output, scratch) that lie inside a
    folder the sandbox shows read-only: the sandbox mounts something empty over each of them."""
    masks = []
    for secret in secrets:
        real = Path(os.path.realpath(secret))
        if any(real == bind or bind in real.parents for bind in binds):
            masks.append(str(real))
    return masks


class Grader:
    """The child side of this run: its scratch folder and its zygote (restarted if it dies).

    The zygote starts importing as soon as this is made; `configure` waits until it is ready."""

    def __init__(self) -> None:
        self.scratch = ScratchRoot()
        self.zygote = Zygote(self.scratch.path)
        self.settings: tuple = ()

    def configure(self, imports: list[str], sandbox: str, limits: Limits, secrets: list[Path]) -> None:
        self.settings = (imports, sandbox, limits, secrets)
        self.zygote.configure(imports, sandbox, limits, [*secrets, self.scratch.path])

    def restart(self) -> None:
        """A fresh zygote after the last one died."""
        self.zygote.close()
        self.zygote = Zygote(self.scratch.path)
        self.configure(*self.settings)

    def abort(self) -> None:
        """End every child now (the run is being stopped)."""
        self.zygote.close()

    def close(self) -> None:
        self.zygote.close()
        self.scratch.close()
