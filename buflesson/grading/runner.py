"""Running submissions: one fresh process per notebook, forked from a warm grader.

The grader imports torch, buflesson, the exercises, the hidden checks and what the lessons import
once (`Warm`), then forks a child for each notebook. The child leaves the grader's process group,
drops to resource limits (address space, CPU time, file size), runs in a scratch copy of the
submission's folder with stdin/stdout/stderr on /dev/null, and runs the plan's cells one by one
(a SIGALRM per cell). Check cells are not the student's: the grader's copy of the cell runs with
`check` bound to the grader's function, which first puts back everything the grader snapshotted
before any student code ran (buflesson's and torch's module and class attributes, builtins, the
exercise registry), then calls the original `buflesson.checks.check` and the hidden checks.

Results go to the parent over a pipe that the child moves to a random descriptor number, one
line per message, each signed with a key made for that notebook (HMAC-SHA256). Printing,
writing files, editing metadata, redefining `check` or patching buflesson therefore change
nothing. What stays possible for code that studies the grader (it runs in the same process as
the checks): finding the descriptor and the key in memory. For that threat, run the grader in a
throwaway container without network, as the Kubernetes example does.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import hmac
import importlib
import json
import os
import resource
import secrets
import selectors
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from buflesson.grading.course import CHECK, Plan
from buflesson.grading.hidden import HiddenCheck, run_hidden

MAX_CHANNEL_BYTES = 4 * 2**20
MAX_TEXT = 300
EXIT_GRACE = 1.0  # seconds to wait for the pipe to close once the child has exited
MAX_COPY = 50 * 2**20  # bytes: larger files of a student's folder are not copied for the run


def _die_with_parent() -> None:
    """Linux: SIGKILL this child if the grader dies, so no notebook outlives it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 60.0  # seconds of wall time per cell
    timeout: float = 300.0  # seconds of wall time per notebook
    memory_mb: int = 2048  # address space a notebook may add to what the warm grader maps


class CellTimeout(BaseException):
    """Raised in a child when a cell runs past its time limit (not an Exception: checks pass it on)."""


def short(text: object, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(error: BaseException) -> str:
    return short(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)


class Guard:
    """A snapshot of module and class attributes that student code might patch, and its restore."""

    PREFIXES = ("buflesson", "torch")
    STDLIB = ("builtins", "os", "json", "json.encoder", "hmac", "hashlib", "signal")
    CLASSES = ("buflesson", "torch.nn", "torch._tensor", "torch.serialization", "torch.optim", "json")

    def __init__(self) -> None:
        from buflesson import checks

        for name in self.STDLIB:
            importlib.import_module(name)
        mods = [
            module
            for name, module in list(sys.modules.items())
            if name.split(".")[0] in self.PREFIXES or name in self.STDLIB
        ]
        self.modules = [(m, dict(vars(m))) for m in mods if isinstance(getattr(m, "__dict__", None), dict)]
        self.classes = [
            (value, dict(vars(value)))
            for module, names in self.modules
            if module.__name__.startswith(self.CLASSES)
            for value in names.values()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]
        self.sys_modules = {m.__name__: m for m, _ in self.modules}
        self.builtins = dict(vars(builtins))
        self.registry = dict(checks._REGISTRY)
        self.registry_dict = checks._REGISTRY

    def restore_builtins(self) -> None:
        """Put back the builtins only (cheap enough to do after every cell)."""
        current = vars(builtins)
        saved = self.builtins
        for key in [k for k in current if k not in saved]:
            del current[key]
        for key, value in saved.items():
            if current.get(key, _MISSING) is not value:
                current[key] = value

    def restore(self) -> None:
        """Put every snapshotted attribute back (a few milliseconds)."""
        for module, saved in self.modules:
            current = vars(module)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
            if module.__name__.startswith("buflesson") or module is builtins:
                for key in [k for k in current if k not in saved]:
                    del current[key]
        for cls, saved in self.classes:
            for key, value in saved.items():
                if cls.__dict__.get(key, _MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
        for name, module in self.sys_modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
        self.registry_dict.clear()
        self.registry_dict.update(self.registry)


_MISSING = object()


def _address_space() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2 * 2**30


class Warm:
    """Everything imported and built once in the grader, inherited by each forked child."""

    def __init__(self, imports: list[str], hidden: list[HiddenCheck], warm_up: list[str] = ()) -> None:
        os.environ.setdefault("MPLBACKEND", "Agg")
        import torch

        from buflesson import checks

        torch.set_num_threads(1)  # no thread pool in a process that forks
        checks.exercises()
        for name in ["matplotlib.pyplot", *imports]:
            try:
                importlib.import_module(name)
            except Exception:
                pass
        self.check = checks.check
        _warm_up(warm_up)
        self.hidden: dict[str, list[HiddenCheck]] = {}
        for item in hidden:
            self.hidden.setdefault(item.exercise, []).append(item)
        self.shell = _shell()
        self.guard = Guard()
        self.base_address_space = _address_space()


def _warm_up(cells: list[str]) -> None:
    """Run the instructor's answer cells once, in a throwaway namespace and folder, so that what
    PyTorch sets up lazily on first use (meta kernels, serialization, optimizers) is set up before
    forking. Random state and default dtype are put back; nothing of it reaches a student's run."""
    import contextlib
    import io
    import random

    import torch
    from IPython.core.inputtransformer2 import TransformerManager

    rng, py_rng, dtype, cwd = torch.get_rng_state(), random.getstate(), torch.get_default_dtype(), os.getcwd()
    namespace: dict = {"__name__": "__warm_up__"}
    transform = TransformerManager().transform_cell
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                for source in cells:
                    try:
                        exec(compile(transform(source), "<warm-up>", "exec"), namespace)
                    except Exception:
                        pass
        finally:
            os.chdir(cwd)
            namespace.clear()
            torch.set_rng_state(rng)
            random.setstate(py_rng)
            torch.set_default_dtype(dtype)
            if "matplotlib.pyplot" in sys.modules:
                sys.modules["matplotlib.pyplot"].close("all")


def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class GraderShell(InteractiveShell):
        """IPython without history, GUI or traceback printing (nothing is shown to anyone)."""

        def enable_gui(self, gui=None):
            return None

        def enable_matplotlib(self, gui=None):
            return None, None

        def showtraceback(self, *args, **kwargs):
            return None

        def showsyntaxerror(self, *args, **kwargs):
            return None

        showindentationerror = showsyntaxerror

    config = Config()
    config.HistoryManager.enabled = False
    if InteractiveShell.initialized():
        return InteractiveShell.instance()
    return GraderShell.instance(config=config)


# --- the child ------------------------------------------------------------------------------------


_exit = os._exit  # taken before any student code can replace it


class Channel:
    """Signed lines to the parent: `result` and `done` with the results key (sent only after the
    guard has put everything back), progress and errors with the info key (trusted for text only)."""

    def __init__(self, fd: int, result_key: bytes, info_key: bytes, guard: Guard) -> None:
        self.fd, self.result_key, self.info_key, self.guard = fd, result_key, info_key, guard

    def send(self, trusted: bool = False, **message: object) -> None:
        if trusted:
            self.guard.restore()
        body = json.dumps(message, ensure_ascii=True).encode()
        key = self.result_key if trusted else self.info_key
        line = hmac.new(key, body, hashlib.sha256).hexdigest().encode() + b" " + body + b"\n"
        view = memoryview(line)
        while view:
            view = view[os.write(self.fd, view) :]


def _limit(kind: int, value: int) -> None:
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        pass


def _child(warm: Warm, job: Job, limits: Limits, close: list[int]) -> None:
    """Run one notebook in this (forked) process; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with_parent()
        os.setsid()
        fd = fcntl.fcntl(job.write_fd, fcntl.F_DUPFD_CLOEXEC, 300 + secrets.randbelow(700))
        os.close(job.write_fd)
        for other in close:
            try:
                os.close(other)
            except OSError:
                pass
        channel = Channel(fd, job.result_key, job.info_key, warm.guard)
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        os.chdir(job.scratch)
        sys.path.insert(0, "")
        os.environ["HOME"] = os.environ["TMPDIR"] = job.scratch
        tempfile.tempdir = job.scratch
        import torch

        torch.set_num_threads(1)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _limit(resource.RLIMIT_CORE, 0)
        _limit(resource.RLIMIT_FSIZE, 256 * 2**20)
        _limit(resource.RLIMIT_CPU, int(limits.timeout) + 5)
        _limit(resource.RLIMIT_AS, warm.base_address_space + limits.memory_mb * 2**20)
        _run_plan(warm, job.plan, limits, channel)
        channel.send(trusted=True, t="done")
    except BaseException:
        code = 70
    finally:
        _exit(code)


def _run_plan(warm: Warm, plan: Plan, limits: Limits, channel: Channel) -> None:
    shell = warm.shell
    armed = [False]

    def on_alarm(signum, frame):
        if armed[0]:
            raise CellTimeout

    def grader_check(exercise_id: object, answer: object = ...) -> object:
        warm.guard.restore()
        result = warm.check(exercise_id, answer)
        channel.send(trusted=True, t="result", result=result.to_dict())
        for item in warm.hidden.get(result.exercise, []):
            warm.guard.restore()
            hidden = run_hidden(item, answer, result)
            channel.send(trusted=True, t="result", result=hidden.to_dict(), hidden=True)
        return result

    for number, step in enumerate(plan.steps):
        channel.send(t="cell", n=number, label=step.label)
        signal.signal(signal.SIGALRM, on_alarm)
        armed[0] = True
        signal.setitimer(signal.ITIMER_REAL, limits.cell_timeout)
        error: BaseException | None = None
        try:
            if step.kind == CHECK:
                namespace = shell.user_ns
                saved = namespace.get("check", _MISSING)
                namespace["check"] = grader_check
                try:
                    code = shell.transform_cell(step.source)
                    builtins.exec(compile(code, step.label, "exec"), namespace)
                finally:
                    if saved is _MISSING:
                        namespace.pop("check", None)
                    else:
                        namespace["check"] = saved
            else:
                outcome = shell.run_cell(step.source, silent=True)
                error = outcome.error_before_exec or outcome.error_in_exec
        except BaseException as caught:
            error = caught
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            warm.guard.restore_builtins()
        if isinstance(error, CellTimeout):
            channel.send(t="timeout", label=step.label, exercises=list(step.exercises))
        elif error is not None:
            channel.send(
                t="error",
                label=step.label,
                kind=step.kind,
                error=describe_error(error),
                not_implemented=isinstance(error, NotImplementedError),
                exercises=list(step.exercises),
            )


# --- the parent -----------------------------------------------------------------------------------


@dataclass
class Job:
    """One notebook to run: what the caller passes in, and what the parent collects."""

    name: str
    plan: Plan
    source_dir: Path | None  # the student's folder, copied for the run; None: the notebook alone
    notebook: Path  # the submitted file, copied into the scratch folder as it is
    result_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    info_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    scratch: str = ""
    write_fd: int = -1
    read_fd: int = -1
    pid: int = 0
    started: float = 0.0
    buffer: bytes = b""
    received: int = 0
    messages: list[dict] = field(default_factory=list)
    forged: int = 0
    timed_out: bool = False
    flooded: bool = False
    exit_status: int | None = None
    exited: float = 0.0
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return any(m.get("t") == "done" and m["trusted"] for m in self.messages)

    @property
    def last_cell(self) -> str:
        cells = [m["label"] for m in self.messages if m.get("t") == "cell"]
        return cells[-1] if cells else "the start"


def _skip(folder: str, names: list[str]) -> list[str]:
    """What not to copy from a student's folder: notebooks, checkpoints, files over MAX_COPY."""
    skipped = []
    for name in names:
        path = os.path.join(folder, name)
        if name == ".ipynb_checkpoints" or name.endswith(".ipynb") or os.path.islink(path):
            skipped.append(name)
        elif os.path.isfile(path) and os.path.getsize(path) > MAX_COPY:
            skipped.append(name)
    return skipped


def _prepare(job: Job, scratch_root: str | None) -> None:
    job.scratch = tempfile.mkdtemp(prefix="buflesson-grade-", dir=scratch_root)
    if job.source_dir is not None:
        try:
            shutil.copytree(job.source_dir, job.scratch, dirs_exist_ok=True, ignore=_skip)
        except (OSError, shutil.Error):
            pass
    shutil.copyfile(job.notebook, Path(job.scratch, job.notebook.name))


def _collect(job: Job, data: bytes) -> None:
    job.received += len(data)
    job.buffer += data
    *lines, job.buffer = job.buffer.split(b"\n")
    for line in lines:
        mac, _, body = line.partition(b" ")
        signed = {
            key: hmac.new(key, body, hashlib.sha256).hexdigest().encode()
            for key in (job.result_key, job.info_key)
        }
        trusted = hmac.compare_digest(mac, signed[job.result_key])
        if not trusted and not hmac.compare_digest(mac, signed[job.info_key]):
            job.forged += 1
            continue
        try:
            message = json.loads(body)
        except ValueError:
            job.forged += 1
            continue
        if isinstance(message, dict) and (trusted or message.get("t") not in ("result", "done")):
            message["trusted"] = trusted
            job.messages.append(message)
        else:
            job.forged += 1


def _kill(job: Job) -> None:
    """SIGKILL the job's process group, and the child itself while it is not yet reaped."""
    targets = [lambda: os.killpg(job.pid, signal.SIGKILL)]
    if job.exit_status is None:
        targets.append(lambda: os.kill(job.pid, signal.SIGKILL))
    for target in targets:
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def run_jobs(
    warm: Warm,
    jobs: list[Job],
    limits: Limits,
    workers: int,
    on_done: Callable[[Job], None],
    on_start: Callable[[Job], None] = lambda job: None,
    scratch_root: str | None = None,
) -> None:
    """Run every job, at most `workers` at a time; `on_start(job)` before its fork, `on_done(job)`
    as it ends. On any exception (SIGTERM made SystemExit included) running children are killed."""
    pending = list(reversed(jobs))
    running: dict[int, Job] = {}  # read fd -> job
    selector = selectors.DefaultSelector()
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                job = pending.pop()
                _prepare(job, scratch_root)
                job.read_fd, job.write_fd = os.pipe()
                close = [selector.fileno(), job.read_fd, *running]
                on_start(job)
                job.started = time.monotonic()
                pid = os.fork()
                if pid == 0:
                    _child(warm, job, limits, close)
                job.pid = pid
                os.close(job.write_fd)
                os.set_blocking(job.read_fd, False)
                running[job.read_fd] = job
                selector.register(job.read_fd, selectors.EVENT_READ, job)
            now = time.monotonic()
            wake = [
                j.exited + EXIT_GRACE if j.exited else j.started + limits.timeout for j in running.values()
            ]
            for key, _ in selector.select(timeout=min(max(0.01, min(wake) - now), 0.5)):
                job = key.data
                try:
                    data = os.read(job.read_fd, 1 << 16)
                except BlockingIOError:
                    continue
                if data:
                    _collect(job, data)
                    if job.received > MAX_CHANNEL_BYTES and not job.flooded:
                        job.flooded = True
                        _kill(job)
                    continue
                _finish(job, running, selector, on_done)
            now = time.monotonic()
            for job in list(running.values()):
                if job.exit_status is None:
                    pid, status = os.waitpid(job.pid, os.WNOHANG)
                    if pid:
                        job.exit_status, job.exited = status, now
                        _kill(job)  # leftovers in its process group would hold the pipe open
                elif now > job.exited + EXIT_GRACE:  # something outside its group holds the pipe
                    _finish(job, running, selector, on_done)
                    continue
                if now > job.started + limits.timeout and not job.timed_out:
                    job.timed_out = True
                    _kill(job)
    except BaseException:
        for job in running.values():
            _kill(job)
        raise
    finally:
        for job in running.values():
            _reap(job)
        selector.close()


def _reap(job: Job) -> None:
    if job.exit_status is None:
        try:
            job.exit_status = os.waitpid(job.pid, 0)[1]
        except ChildProcessError:
            job.exit_status = 0
    try:
        os.close(job.read_fd)
    except OSError:
        pass
    shutil.rmtree(job.scratch, ignore_errors=True)


def _finish(job: Job, running: dict[int, Job], selector, on_done: Callable[[Job], None]) -> None:
    selector.unregister(job.read_fd)
    del running[job.read_fd]
    _kill(job)
    _reap(job)
    job.seconds = time.monotonic() - job.started
    on_done(job)
