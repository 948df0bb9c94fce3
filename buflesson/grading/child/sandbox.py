"""The sandbox a notebook runs in, in two levels the zygote detects (and `--sandbox` can force).

Both levels (`basic`):
- the notebook's process has its own session, a scrubbed environment and `sys.argv`, every file
  descriptor closed but its channel to the judge, stdin/stdout/stderr on /dev/null, and resource
  limits: address space (`--memory`), CPU time, file size (`--disk`), no core files, and the
  process count (`--processes`) where the kernel applies it (never to uid 0);
- a keeper process that runs no student code waits for it and, as a subreaper, kills every process
  the notebook left behind (double-forked daemons included) the moment it ends;
- a seccomp filter (`seccomp`: no namespaces, mounts, memfds, IPC or keyrings), at most
  `MAX_FILES` open files per process, and the out-of-memory killer's first pick (oom_score_adj).

`namespaces` (when the grader runs as root, or user namespaces work) adds, per notebook:
- new mount, PID, network, IPC and UTS namespaces: no network, no other process in sight, and
  every process the notebook starts dies with it (the namespace's init runs no student code);
- a new root filesystem holding only what Python needs, read-only: /usr, /etc, the Python
  installation, its site-packages and buflesson's package folder. The course, the hidden checks,
  the submissions, the output folder and other notebooks' folders are not in it at all;
- one private tmpfs of `--disk` MB for every place it can write: its folder (/sandbox/work), /tmp,
  /var/tmp and /dev/shm; it vanishes with the namespace;
- as root: each worker slot's notebooks run as their own unprivileged uid (`UID_BASE + slot`), with
  every capability dropped and no_new_privs set, so they cannot undo the mounts, gain privileges
  through a setuid program, or exceed the process limit. With user namespaces (not root): uid 0 of
  its own namespace, with every capability dropped.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

from buflesson.grading.channel import EXIT_BROKEN, EXIT_CHANNEL, EXIT_SETUP, Closed
from buflesson.grading.child import linux, seccomp
from buflesson.grading.child.rootfs import INSIDE, build_root

AUTO, NAMESPACES, BASIC = "auto", "namespaces", "basic"
LEVELS = (AUTO, NAMESPACES, BASIC)
UID_BASE = 2_100_000_000  # a notebook of worker slot k runs as uid UID_BASE + k (as root, with namespaces)
SETUP_FAILED = EXIT_SETUP
SYSTEM = ("/usr", "/etc")
MAX_FILES = 1024  # open files per process: each socket or pipe holds kernel memory no limit counts


@dataclass(frozen=True)
class Sandbox:
    """How every child of this run is confined; the same for all of them."""

    level: str
    memory_mb: int
    disk_mb: int
    processes: int
    cpu_seconds: int
    binds: tuple[str, ...] = ()  # read-only software folders (namespaces)
    masks: tuple[str, ...] = ()  # paths inside `binds` to hide (normally none)
    user_namespace: bool = False  # not root: a user namespace instead of a uid of its own

    def describe(self) -> str:
        """One line for the instructor: what this level gives."""
        calls = (
            "system-call filter" if seccomp.program() is not None else "no system-call filter on this machine"
        )
        if self.level == BASIC:
            return (
                f"basic (own session, scrubbed environment, resource limits, {calls}, leftovers killed; "
                "the notebook runs as the grader's user and sees what that user sees)"
            )
        who = "uid 0 of its own user namespace" if self.user_namespace else f"its own uid ({UID_BASE}+slot)"
        return (
            f"namespaces (private filesystem with the course hidden, no network, own PID namespace, "
            f"{self.disk_mb} MB tmpfs for all writes, {who}, no capabilities, {calls})"
        )


def software_folders() -> list[str]:
    """The folders a notebook's Python needs, read-only: the system's, Python's and its packages'
    (as the zygote found them after its imports; the zygote's sys.path holds no course folder)."""
    found = set(SYSTEM)
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        found.add(path)
    found.add(os.path.dirname(os.path.realpath(sys.executable)))
    found.update(p for p in sys.path if p and os.path.isdir(p))
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if "." not in name and file and os.path.basename(file) == "__init__.py":
            found.add(os.path.dirname(file))  # a package outside sys.path (an editable install)
    real = sorted({os.path.realpath(p) for p in found if os.path.isdir(p)})
    return [p for p in real if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in real)]


# --- entering the sandbox (each function below runs in a forked process and never returns) --------


def launch(
    sandbox: Sandbox, scratch: str, slot: int, channel_fd: int, notebook: Callable[[int], None]
) -> None:
    """Run in the keeper (a fresh fork of the zygote): confine a child to `scratch` and run
    `notebook(channel_fd)` in it; exit with the child's own status (a signal is raised again)."""
    try:
        os.setsid()
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        _set_limit(resource.RLIMIT_CORE, 0)
        if sandbox.level == NAMESPACES:
            status = _keep_namespace(sandbox, scratch, slot, channel_fd, notebook)
        else:
            status = _keep_basic(sandbox, scratch, channel_fd, notebook)
    except BaseException as error:  # noqa: BLE001 - report and leave: no student code ran here
        _say(f"the keeper failed: {type(error).__name__}: {error}")
        os._exit(SETUP_FAILED)
    _mirror(status)


def _mirror(status: int) -> None:
    """Exit the way the child did: the same code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else SETUP_FAILED)


def _keep_basic(sandbox: Sandbox, scratch: str, channel_fd: int, notebook: Callable[[int], None]) -> int:
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    pid = os.fork()
    if pid == 0:
        _run_child(sandbox, channel_fd, notebook, os.path.join(scratch, "files"), scratch, uid=None)
    os.close(channel_fd)
    status = _wait_for(pid)
    _kill_descendants()
    return status


def _wait_for(pid: int) -> int:
    """Reap children until `pid` ends (orphans of a subreaper are reaped on the way)."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if reaped == pid:
            return status


def _kill_descendants() -> None:
    """SIGKILL every process left under this subreaper, until none is left."""
    while True:
        children = children_of(os.getpid())
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return
        if not children:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


def children_of(pid: int) -> list[int]:
    """The children of process `pid` (from /proc; by each process's parent where the kernel does
    not list children)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(n) for n in handle.read().split()]
        return out
    except FileNotFoundError:
        pass
    except OSError:
        return out
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _keep_namespace(
    sandbox: Sandbox, scratch: str, slot: int, channel_fd: int, notebook: Callable[[int], None]
) -> int:
    flags = (
        linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWNET | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS
    )
    uid, gid = os.getuid(), os.getgid()
    if sandbox.user_namespace:
        linux.unshare(linux.CLONE_NEWUSER | flags)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    else:
        linux.unshare(flags)
    status_read, status_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pid 1 of the new namespace
        os.close(status_read)
        _namespace_init(sandbox, scratch, slot, channel_fd, notebook, status_write)
    os.close(status_write)
    os.close(channel_fd)
    status = _wait_for(pid)
    reported = os.read(status_read, 16)
    return int(reported) if reported.strip().lstrip(b"-").isdigit() else status


def _namespace_init(
    sandbox: Sandbox, scratch: str, slot: int, channel_fd: int, notebook: Callable[[int], None], report: int
) -> None:
    """pid 1 of the namespace: build the filesystem, start the child, reap until it ends, then exit
    (which kills whatever the notebook left in the namespace)."""
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        uid = None if sandbox.user_namespace else UID_BASE + slot
        build_root(sandbox, scratch, uid)
        pid = os.fork()
        if pid == 0:
            os.close(report)
            work = f"{INSIDE}/work"
            _run_child(sandbox, channel_fd, notebook, work, INSIDE, uid=uid)
        os.close(channel_fd)
        status = _wait_for(pid)
        os.write(report, str(status).encode())
    except BaseException as error:  # noqa: BLE001 - no student code ran in this process
        _report_setup_failure(channel_fd, error)
        os._exit(SETUP_FAILED)
    os._exit(0)


def _report_setup_failure(channel_fd: int, error: BaseException) -> None:
    """Tell the judge why the sandbox could not be set up (before any student code ran)."""
    import json

    from buflesson.grading.channel import HEADER, HELLO

    text = json.dumps({"error": f"{type(error).__name__}: {error}"[:500]}).encode()
    try:
        os.write(channel_fd, HEADER.pack(HELLO, len(text)) + text)
    except OSError:
        pass


# --- the child itself --------------------------------------------------------------------------


def _run_child(
    sandbox: Sandbox,
    channel_fd: int,
    notebook: Callable[[int], None],
    work: str,
    scratch: str,
    uid: int | None,
) -> None:
    """The notebook's process: confine it, then hand over to `notebook` (which runs student code)."""
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        _only_fd(channel_fd)
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        if null > 2:
            os.close(null)
        os.chdir(work)
        _scrub_environment(home=os.path.join(scratch, "home"), tmp=os.path.join(scratch, "tmp"))
        _set_limits(sandbox, uid)
        if sandbox.level == NAMESPACES:
            _drop_privileges(uid)
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        seccomp.install()
    except BaseException as error:  # noqa: BLE001 - no student code has run yet
        _report_setup_failure(channel_fd, error)
        os._exit(SETUP_FAILED)
    code = 0
    try:
        notebook(channel_fd)
    except Closed:
        code = EXIT_CHANNEL
    except BaseException:  # noqa: BLE001 - the notebook's own process: its end is its exit status
        code = EXIT_BROKEN
    os._exit(code)


def _only_fd(keep: int) -> None:
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 20)


def _scrub_environment(home: str, tmp: str) -> None:
    import tempfile

    kept = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "PYTHONHASHSEED", "TZ")}
    kept.update(
        HOME=home,
        TMPDIR=tmp,
        USER="student",
        LOGNAME="student",
        MPLBACKEND="Agg",
        MPLCONFIGDIR=os.path.join(home, ".matplotlib"),
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
    )
    for name, value in os.environ.items():
        if name.endswith("_VISIBLE_DEVICES"):
            kept[name] = value
    os.environ.clear()
    os.environ.update(kept)
    tempfile.tempdir = None
    sys.argv = ["notebook"]


def address_space() -> int:
    """This process's address space, in bytes."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 2 * 2**30


def _set_limits(sandbox: Sandbox, uid: int | None) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file-size limit fails instead
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_FSIZE, sandbox.disk_mb * 2**20)
    _set_limit(resource.RLIMIT_CPU, sandbox.cpu_seconds, sandbox.cpu_seconds + 1)
    _set_limit(resource.RLIMIT_AS, address_space() + sandbox.memory_mb * 2**20)
    _set_limit(resource.RLIMIT_NOFILE, min(MAX_FILES, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    try:  # when the machine runs out of memory, the kernel ends a notebook's process, not the judge
        _write("/proc/self/oom_score_adj", "1000")
    except OSError:
        pass
    if uid is not None or sandbox.user_namespace:  # a uid (or namespace) of its own: counted from 0
        _set_limit(resource.RLIMIT_NPROC, sandbox.processes)
    elif os.getuid() != 0:  # the grader's own uid: what it runs already, and the notebook's share
        _set_limit(resource.RLIMIT_NPROC, _tasks_of(os.getuid()) + sandbox.processes)
    # uid 0 without namespaces: the kernel never applies RLIMIT_NPROC to it


def _tasks_of(uid: int) -> int:
    """How many processes' threads run as `uid` now (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, ValueError, KeyError):
            continue
    return count


def _set_limit(kind: int, soft: int, hard: int | None = None) -> None:
    try:
        resource.setrlimit(kind, (soft, soft if hard is None else hard))
    except (ValueError, OSError):
        pass


def _drop_privileges(uid: int | None) -> None:
    """No capabilities, and (as root) a uid of its own; dumpable again so that its own /proc files
    stay its own."""
    if uid is None:
        linux.drop_capabilities()
        return
    for cap in range(linux.last_capability() + 1):
        try:
            linux.prctl(linux.PR_CAPBSET_DROP, cap)
        except OSError:
            pass
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    linux.prctl(linux.PR_SET_DUMPABLE, 1)
    if linux.capabilities():
        raise PermissionError("capabilities survived the uid change")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _say(text: str) -> None:
    try:
        os.write(2, (text + "\n").encode())
    except OSError:
        pass


def with_binds(sandbox: Sandbox, binds: list[str], masks: list[str]) -> Sandbox:
    """The same sandbox with its folder lists filled in."""
    return replace(sandbox, binds=tuple(binds), masks=tuple(masks))
