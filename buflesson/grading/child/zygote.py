"""The zygote: the process the judge starts once per run, which forks one child per notebook.

    python -I -m buflesson.grading.child.zygote FD

It is started with a scrubbed environment, no argument but the number of its control socket, and a
scratch folder as its working directory, and it is never told where the course, the hidden checks
or the output are. It imports torch, IPython, matplotlib, buflesson's public modules and what the
lessons' given cells import, warms PyTorch up generically (a small module of its own: build, run,
save and load, move, an optimizer step) without running any notebook's code, and then forks a
sandboxed child for each notebook the judge asks for (`sandbox.launch`). It runs no student code.

Control messages (JSON; file descriptors ride along with SCM_RIGHTS):
    judge -> zygote  {"imports", "sandbox", "limits"}, then {"masks"}, then {"op": "fork", "job",
                     "scratch", "slot"} + the child's channel, or {"op": "kill", "job"}
    zygote -> judge  {"ready", "level", "describe", "binds"} or {"error"},
                     {"forked", "pid"} + a pidfd, {"exited", "status"}
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile

from buflesson.grading.child import linux, sandbox
from buflesson.grading.child.runner import serve_notebook
from buflesson.grading.child.warmup import preload, warm_up

MAX_MESSAGE = 1 << 16


class Zygote:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.keepers: dict[int, int] = {}  # keeper pid -> job id
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        self.sandbox: sandbox.Sandbox | None = None
        self.shell = None
        self.cell_timeout = 60.0

    # --- messages ------------------------------------------------------------------------------

    def send(self, message: dict, fds: list[int] = ()) -> None:
        data = json.dumps(message).encode()
        if fds:
            socket.send_fds(self.control, [data], list(fds))
        else:
            self.control.send(data)

    def receive(self) -> tuple[dict | None, list[int]]:
        data, fds, _flags, _address = socket.recv_fds(self.control, MAX_MESSAGE, 4)
        if not data:
            return None, fds
        return json.loads(data), fds

    # --- start-up ------------------------------------------------------------------------------

    def start(self) -> None:
        preload()  # while the judge reads the course
        config, _ = self.receive()
        if config is None:
            raise SystemExit(0)
        limits = config["limits"]
        self.cell_timeout = float(limits["cell_timeout"])
        self.shell = warm_up(config.get("imports", []))
        self.sandbox = sandbox.Sandbox(
            level=sandbox.BASIC,
            memory_mb=int(limits["memory"]),
            disk_mb=int(limits["disk"]),
            processes=int(limits["processes"]),
            cpu_seconds=int(float(limits["timeout"])) + 5,
        )
        level, why = self.detect(config.get("sandbox", sandbox.AUTO))
        if level is None:
            self.send({"error": why})
            raise SystemExit(0)
        self.sandbox = sandbox.with_binds(
            dataclasses.replace(self.sandbox, level=level), sandbox.software_folders(), []
        )
        self.send(
            {
                "ready": True,
                "level": level,
                "describe": self.sandbox.describe(),
                "binds": list(self.sandbox.binds),
                "why": why,
            }
        )
        answer, _ = self.receive()
        if answer is None:
            raise SystemExit(0)
        self.sandbox = sandbox.with_binds(self.sandbox, list(self.sandbox.binds), answer.get("masks", []))

    def detect(self, requested: str) -> tuple[str | None, str]:
        """The best level that works here (or the one asked for): namespaces are tried for real."""
        if requested == sandbox.BASIC:
            return sandbox.BASIC, "asked for"
        folders = sandbox.software_folders()
        why = ""
        for user_namespace in [False, True] if os.geteuid() == 0 else [True]:
            trial = dataclasses.replace(
                self.sandbox, level=sandbox.NAMESPACES, binds=tuple(folders), user_namespace=user_namespace
            )
            works, why = self.try_namespaces(trial)
            if works:
                self.sandbox = dataclasses.replace(self.sandbox, user_namespace=user_namespace)
                return sandbox.NAMESPACES, "user namespaces" if user_namespace else "root"
        if requested == sandbox.NAMESPACES:
            return None, f"--sandbox namespaces does not work here: {why}"
        return sandbox.BASIC, f"namespaces are not available here ({why})"

    def try_namespaces(self, trial: sandbox.Sandbox) -> tuple[bool, str]:
        """Start a child in that sandbox that only says hello; True if it did."""
        scratch = tempfile.mkdtemp(prefix="probe-", dir=os.getcwd())
        for name in ("files", "home", "tmp", "root"):
            os.mkdir(os.path.join(scratch, name))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            self.forget()
            ours.detach()
            sandbox.launch(trial, scratch, 0, theirs.detach(), _hello_only)
            os._exit(sandbox.SETUP_FAILED)
        theirs.close()
        ours.settimeout(30)
        try:
            data = ours.recv(4096)
        except OSError as error:
            data = str(error).encode()
        ours.close()
        _, status = os.waitpid(pid, 0)
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            said = json.loads(data[5:]) if data[:1] == b"H" else {"error": data.decode(errors="replace")}
        except ValueError:
            said = {"error": "an unreadable hello"}
        if said == {} and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return True, ""
        return False, str(said.get("error") or f"the trial child ended with status {status}")

    # --- the loop ------------------------------------------------------------------------------

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        poller = select.poll()
        poller.register(self.control.fileno(), select.POLLIN)
        poller.register(self.wake_read, select.POLLIN)
        while True:
            for fd, _event in poller.poll(1000):
                if fd == self.wake_read:
                    try:
                        os.read(self.wake_read, 4096)
                    except BlockingIOError:
                        pass
                    continue
                message, fds = self.receive()
                if message is None:
                    self.shutdown()
                    return
                self.on_message(message, fds)
            self.reap()

    def on_message(self, message: dict, fds: list[int]) -> None:
        op = message.get("op")
        if op == "fork" and fds:
            self.fork(int(message["job"]), str(message["scratch"]), int(message["slot"]), fds[0])
            for extra in fds[1:]:
                os.close(extra)
        elif op == "kill":
            for pid, job in self.keepers.items():
                if job == message.get("job"):
                    _kill(pid)
        else:
            for fd in fds:
                os.close(fd)

    def fork(self, job: int, scratch: str, slot: int, channel_fd: int) -> None:
        pid = os.fork()
        if pid == 0:
            self.forget()
            sandbox.launch(
                self.sandbox, scratch, slot, channel_fd, serve_notebook(self.shell, self.cell_timeout)
            )
            os._exit(sandbox.SETUP_FAILED)
        self.keepers[pid] = job
        os.close(channel_fd)
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            self.send({"forked": job, "pid": pid})
        else:
            self.send({"forked": job, "pid": pid}, [pidfd])
            os.close(pidfd)

    def forget(self) -> None:
        """In a fresh fork: let go of the zygote's own descriptors without closing anything twice."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.control.detach())
        os.close(self.wake_read)
        os.close(self.wake_write)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            job = self.keepers.pop(pid, None)
            if job is not None:
                self.send({"exited": job, "status": status})
        # Orphans of the basic level (a keeper killed before its leftovers) end up here: kill them.
        for pid in sandbox.children_of(os.getpid()):
            if pid not in self.keepers:
                _kill(pid)

    def shutdown(self) -> None:
        for pid in list(self.keepers):
            _kill(pid)
        for pid in list(self.keepers):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _hello_only(channel_fd: int) -> None:
    os.write(channel_fd, b"H\x00\x00\x00\x02{}")


def main() -> None:
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)  # orphans of a killed keeper come here, to be killed
    control = socket.socket(fileno=int(sys.argv[1]))
    zygote = Zygote(control)
    try:
        zygote.start()
    except SystemExit:
        os._exit(0)
    except Exception as error:  # noqa: BLE001 - tell the judge rather than die silently
        try:
            zygote.send({"error": f"{type(error).__name__}: {error}"})
        except OSError:
            pass
        raise
    zygote.serve()
    os._exit(0)  # no interpreter teardown: nothing to flush, and torch's is slow


if __name__ == "__main__":
    main()
