"""Hostile notebooks: each tries one way to lift its score (or to reach what it must not), and must
score exactly what its honest part earns, graded beside a right notebook (full marks) and an
untouched handout (0).

The honest part of most of them is a wrong `Scale` (a plain attribute, worth 0) and `answer = 41`
(worth 0). Many report through their own score whether their attack got anywhere: they set
`answer = 42` (a point for 90.2) only if it did, so a lifted 90.2 shows the sandbox leaking.
Everything runs in one grading run with namespaces (the default where they work: root here), and a
few again in the basic sandbox.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from grading_fixture import (
    ANSWERS,
    HIDDEN,
    LESSON,
    RIGHT_SCALE,
    WRONG_SCALE,
    answer_nb,
    blank_nb,
    feedback,
    grader,
    notebook,
    points,
    put,
    row_of,
    rows_of,
)

from buflesson.release import handout

pytestmark = pytest.mark.slow

LIMITS = ["--cell-timeout", "20", "--timeout", "60", "--memory", "1024", "--disk", "64", "--processes", "32"]
FOUND = "\nanswer = 42 if found else 41\n"  # the attack's success, made visible in the score

CHANNEL = """
import os, stat, struct

def channel():
    for fd in range(3, 1024):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                return fd
        except OSError:
            pass

def frame(kind, payload):
    os.write(channel(), struct.pack(">cI", kind, len(payload)) + payload)
"""

CODE_SWAP = """
import buflesson, buflesson.checks as checks, buflesson.probes as probes
from buflesson.results import CheckResult

passing = (lambda *args, **kwargs: None).__code__

def fake(exercise_id, answer=None):
    return CheckResult(exercise_id, "t", "passed", "ok")

for known in checks.exercises().values():
    try:
        known.test.__code__ = passing
    except Exception:
        pass
for function in (checks.check, checks.run_check, checks.run_test, buflesson.check):
    try:
        function.__code__ = fake.__code__
    except Exception:
        pass
for name in dir(probes):
    try:
        getattr(probes, name).__code__ = passing
    except Exception:
        pass
answer = 41
"""
SHADOW = """
from collections import OrderedDict

class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.factor = torch.tensor(2.0)

    def forward(self, x):
        return x * self.factor

    def state_dict(self, *args, **kwargs):
        return OrderedDict(factor=self.factor)

    def named_buffers(self, *args, **kwargs):
        yield "factor", self.factor

    def buffers(self, recurse=True):
        yield self.factor

torch.Tensor.cpu = lambda self, *args, **kwargs: self
torch.Tensor.equal = lambda self, other: True
"""
FUNCTION_MODE = """
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

class AlwaysEqual(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.equal, torch.allclose, torch.Tensor.equal):
            return True
        return func(*args, **(kwargs or {}))

class Passthrough(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))

AlwaysEqual().__enter__()
Passthrough().__enter__()
answer = 41
"""
LIBRARY = """
import torch
library = torch.library.Library("aten", "IMPL")
library.impl("equal", lambda a, b: True, "CPU")
library.impl("is_nonzero", lambda a: True, "CPU")
answer = 41
"""
THREAD = """
import threading, time, torch, buflesson.checks as checks, buflesson.probes as probes
from buflesson.results import CheckResult

def patch_forever():
    while True:
        torch.equal = lambda a, b: True
        probes.same = probes.close = lambda *args, **kwargs: True
        checks.run_check = lambda exercise_id, session: CheckResult(exercise_id, "t", "passed", "ok")
        time.sleep(0.001)

threading.Thread(target=patch_forever, daemon=True).start()
answer = 41
"""
SIGNAL = """
import signal, torch, buflesson.probes as probes

def patch(signum, frame):
    torch.equal = lambda a, b: True
    probes.same = probes.close = lambda *args, **kwargs: True

signal.signal(signal.SIGPROF, patch)
signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)
answer = 41
"""
PROFILE = """
import sys, threading, torch, buflesson.probes as probes

def hook(frame, event, arg):
    if event == "call" and frame.f_code.co_name in ("handle", "op_value", "op_call"):
        torch.equal = lambda a, b: True
        probes.same = probes.close = lambda *args, **kwargs: True

sys.setprofile(hook)
threading.setprofile(hook)
answer = 41
"""
INSIDE_CHECK = """
import dataclasses

class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.factor = torch.tensor(2.0)
        # Called by the check: patch what the check runs on, from inside it.
        import buflesson.checks as checks, buflesson.inventory as inventory, buflesson.probes as probes
        real = getattr(inventory, "_real", inventory.inventory)
        inventory._real = real
        inventory.inventory = lambda module: [dataclasses.replace(r, kind="buffer") for r in real(module)]
        torch.equal = lambda a, b: True
        probes.same = probes.close = lambda *args, **kwargs: True
        checks.check = lambda *args, **kwargs: None

    def forward(self, x):
        return x * self.factor
"""
HIDDEN_SWAP = (
    """
import gc, sys
found = [name for name in sys.modules if name.startswith("buflesson_hidden")]
found += [o for o in gc.get_objects() if type(o).__name__ == "HiddenCheck"]
for item in found:
    try:
        item.test.__code__ = (lambda answer: None).__code__
    except Exception:
        pass
"""
    + FOUND
)
GC_HUNT = (
    """
import gc, sys
judge = ("Conversation", "Scheme", "Lesson", "Course", "HiddenCheck", "ResultStore", "Journal", "ChildLink")
found = [name for name in sys.modules if name.startswith(("buflesson.grading.judge", "buflesson_hidden"))]
found += [o for o in gc.get_objects() if type(o).__name__ in judge]
for o in gc.get_objects():
    if callable(o) and getattr(o, "__name__", "") == "check":
        try:
            o.__code__ = (lambda *args, **kwargs: None).__code__
        except Exception:
            pass
"""
    + FOUND
)
SECRETS_MEMORY = (
    """
import hashlib, os, re, sys
# What the judge holds, written so that this cell's own text does not contain it: the output
# folder's secret name (known here only by its digest), the hidden checks' code, the answer's code.
pattern = re.compile(rb"buflesson-secret-[0-9a-f]{16}")
wanted = "{digest}"
held = [
    re.compile(rb"HIDDEN-SECRET-[C]ODE"),
    re.compile(rb'register_buffer[(]"factor", torch[.]tensor[(]2[.]0[)][)]'),
]
found = []

def look(data):
    for match in pattern.findall(data):
        if hashlib.sha256(match).hexdigest() == wanted:
            found.append(match)
    found.extend(p.pattern for p in held if p.search(data))

look(" ".join(sys.argv).encode())
look(repr(dict(os.environ)).encode())
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for name in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                look(handle.read())
        except OSError:
            pass
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as memory:
    for line in maps:
        fields = line.split()
        if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        for at in range(start, end, 16 * 2**20):
            try:
                memory.seek(at)
                look(memory.read(min(16 * 2**20 + 64, end - at)))
            except (OSError, ValueError, OverflowError, MemoryError):
                break
"""
    + FOUND
)
SECRETS_FILES = (
    """
import os
found = []
for path in {readable!r}:
    try:
        if os.path.isdir(path):
            found += os.listdir(path)
        else:
            with open(path, "rb") as handle:
                found.append(handle.read(10))
    except OSError:
        pass
for path in {writable!r}:
    try:
        with open(path, "a") as handle:
            handle.write("pwned")
        found.append(path)
    except OSError:
        pass
"""
    + FOUND
)
DAEMON = """
import os, subprocess, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        subprocess.Popen(["sleep", "987.654"], start_new_session=True)
        time.sleep(3)
        for path in {paths!r}:
            try:
                with open(path, "w") as handle:
                    handle.write("daemon")
            except OSError:
                pass
        os._exit(0)
    os._exit(0)
time.sleep(0.2)
answer = 42
"""
FORGE_WRONG_EXERCISE = RIGHT_SCALE + CHANNEL + 'frame(b"C", b\'{"exercise": "90.2"}\')\n'
FORGE_AGAIN = CHANNEL + 'frame(b"C", b\'{"exercise": "90.1"}\')\n'
FORGE_OVERSIZE = CHANNEL + 'os.write(channel(), b"P" + (2**31).to_bytes(4, "big"))\nanswer = 42\n'
FORGE_GARBAGE = CHANNEL + 'os.write(channel(), b"garbage!" * 100)\nanswer = 42\n'
CLOSE_FDS = "import os\nos.closerange(0, 65536)\nanswer = 42\n"
SHM_FILL = (
    """
chunk = b"x" * 2**20
written = 0
try:
    with open("/dev/shm/buflesson-shm-test", "wb") as handle:
        for _ in range(600):
            handle.write(chunk)
            written += 1
except OSError:
    pass
found = written < 600
"""
    + FOUND
)
MANY_FILES = (
    """
made = 0
try:
    for i in range(200_000):
        with open(f"f{i}", "wb") as handle:
            handle.write(b"x" * 1024)
        made += 1
except OSError:
    pass
found = made < 200_000
"""
    + FOUND
)
FORK_BOMB = (
    """
import os, time
count = 0
try:
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        count += 1
except OSError:
    pass
found = count >= 300
"""
    + FOUND
)
KILL_PARENTS = (
    """
import os, signal
found = []
pid = os.getpid()
for _ in range(6):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        break
    if pid <= 1:
        break
    try:
        os.kill(pid, signal.SIGKILL)
        found.append(pid)
    except OSError:
        pass
"""
    + FOUND
)


def hostile(root: Path, out: Path, digest: str) -> dict[str, tuple]:
    """student -> (notebook, statuses allowed, points (90.1, hidden, 90.2), words in the reason)."""
    readable = [
        str(ANSWERS / f"{LESSON}.ipynb"),
        str(ANSWERS),
        str(HIDDEN),
        str(root / "course" / "right" / f"{LESSON}.ipynb"),
        str(root / "course"),
        str(out),
    ]
    writable = [str(out / "gradebook.csv"), str(out / "pwned.txt"), str(out / "results" / "x.json")]
    daemon_paths = [str(root / "daemon-was-here"), str(out / "gradebook.csv")]
    zero, graded = ("0", "0", "0"), ("graded",)
    return {
        "right": (answer_nb(), graded, ("1", "2", "1"), ""),
        "blank": (blank_nb(), graded, zero, ""),
        "code_swap": (notebook(WRONG_SCALE, CODE_SWAP), graded, zero, ""),
        "shadow": (notebook(SHADOW, "answer = 41"), graded, zero, ""),
        "function_mode": (notebook(WRONG_SCALE, FUNCTION_MODE), graded, zero, ""),
        "library": (notebook(WRONG_SCALE, LIBRARY), graded, zero, ""),
        "thread": (notebook(WRONG_SCALE, THREAD), graded, zero, ""),
        "signal": (notebook(WRONG_SCALE, SIGNAL), graded, zero, ""),
        "profile": (notebook(WRONG_SCALE, PROFILE), ("graded", "timeout"), zero, ""),
        "inside_check": (notebook(INSIDE_CHECK, "answer = 42"), graded, ("0", "0", "1"), ""),
        "hidden_swap": (notebook(WRONG_SCALE, HIDDEN_SWAP), graded, zero, ""),
        "gc_hunt": (notebook(WRONG_SCALE, GC_HUNT), graded, zero, ""),
        "secrets_memory": (
            notebook(WRONG_SCALE, SECRETS_MEMORY.replace("{digest}", digest)),
            graded,
            zero,
            "",
        ),
        "secrets_files": (
            notebook(WRONG_SCALE, SECRETS_FILES.format(readable=readable, writable=writable)),
            graded,
            zero,
            "",
        ),
        "daemon": (notebook(RIGHT_SCALE, DAEMON.format(paths=daemon_paths)), graded, ("1", "2", "1"), ""),
        "forge_wrong_exercise": (
            notebook(FORGE_WRONG_EXERCISE),
            graded,
            ("1", "2", "0"),
            "Ignored: a check of",
        ),
        "forge_again": (
            notebook(RIGHT_SCALE, "answer = 42", [FORGE_AGAIN]),
            graded,
            ("1", "2", "1"),
            "Ignored",
        ),
        "forge_oversize": (notebook(RIGHT_SCALE, FORGE_OVERSIZE), ("crashed",), ("1", "2", "0"), "protocol"),
        "forge_garbage": (notebook(RIGHT_SCALE, FORGE_GARBAGE), ("crashed",), ("1", "2", "0"), "protocol"),
        "close_fds": (
            notebook(RIGHT_SCALE, CLOSE_FDS),
            ("crashed",),
            ("1", "2", "0"),
            "closed its connection",
        ),
        "shm_fill": (notebook(RIGHT_SCALE, SHM_FILL), graded, ("1", "2", "1"), ""),
        "many_files": (notebook(RIGHT_SCALE, MANY_FILES), graded, ("1", "2", "1"), ""),
        "fork_bomb": (notebook(RIGHT_SCALE, FORK_BOMB), graded, ("1", "2", "0"), ""),
        "kill_parents": (notebook(RIGHT_SCALE, KILL_PARENTS), graded, ("1", "2", "0"), ""),
    }


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    secret = f"buflesson-secret-{secrets.token_hex(8)}"  # in the output folder's path: no child may learn it
    out = root / secret
    cases = hostile(root, out, hashlib.sha256(secret.encode()).hexdigest())
    for student, (nb, *_rest) in cases.items():
        put(root / "course", f"{student}/{LESSON}.ipynb", nb)
    args = ["grade", "course", "--answers", str(ANSWERS), "--hidden", str(HIDDEN), "--out", str(out)]
    run = grader(*args, "--jobs", "2", *LIMITS, cwd=root, tmp=root / "tmp")
    assert run.returncode == 0, run.stderr
    return root, out, cases, run


def test_the_run_says_which_sandbox(attacked):
    run = attacked[3]
    assert "sandbox: namespaces (private filesystem" in run.stdout


@pytest.mark.parametrize(
    "student",
    [
        "right", "blank", "code_swap", "shadow", "function_mode", "library", "thread", "signal", "profile",
        "inside_check", "hidden_swap", "gc_hunt", "secrets_memory", "secrets_files", "daemon",
        "forge_wrong_exercise", "forge_again", "forge_oversize", "forge_garbage", "close_fds", "shm_fill",
        "many_files", "fork_bomb", "kill_parents",
    ],
)  # fmt: skip
def test_a_hostile_notebook_scores_what_its_honest_part_earns(attacked, student):
    _root, out, cases, _run = attacked
    _nb, statuses, expected, words = cases[student]
    row = row_of(out, student)
    assert row["status"] in statuses and points(row) == expected, row
    assert words in row["error"] or words in feedback(out, student), row


def test_nothing_a_notebook_did_reached_the_output_or_outlived_it(attacked):
    root, out, _cases, _run = attacked
    time.sleep(4)  # the daemon would have written by now
    assert not (root / "daemon-was-here").exists()
    assert not (out / "pwned.txt").exists() and not (out / "results" / "x.json").exists()
    assert len(rows_of(out)) == len(attacked[2]) and not (out / "gradebook.csv").read_text().startswith(
        "daemon"
    )
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "987.654" not in ps
    assert not Path("/dev/shm/buflesson-shm-test").exists()
    assert [p.name for p in (root / "tmp").iterdir()] == []  # scratch folders removed
    before = (out / "gradebook.csv").read_text()
    args = ["grade", "course", "--answers", str(ANSWERS), "--hidden", str(HIDDEN), "--out", str(out)]
    again = grader(*args, *LIMITS, cwd=root, tmp=root / "tmp")  # a resume: every result kept as stored
    assert again.returncode == 0, again.stderr
    assert (out / "gradebook.csv").read_text() == before and points(row_of(out, "right")) == ("1", "2", "1")


def test_feedback_never_shows_hidden_code_or_a_traceback(attacked):
    out = attacked[1]
    for path in (out / "feedback").iterdir():
        text = path.read_text(encoding="utf-8")
        assert "HIDDEN-SECRET-CODE" not in text and "Traceback" not in text


# --- the basic sandbox (no namespaces): what it still guarantees --------------------------------

BASIC_LIMITS = ["--cell-timeout", "20", "--timeout", "60", "--memory", "1024", "--disk", "16"]
DISK_HOG = """
for i in range(40):
    with open(f"big{i}", "wb") as handle:
        handle.write(b"x" * 2**20)
import time
time.sleep(3)
answer = 42
"""


def test_basic_sandbox_kills_leftovers_and_watches_the_disk(tmp_path):
    root = tmp_path
    out = root / "out"
    put(root / "course", f"right/{LESSON}.ipynb", answer_nb())
    put(root / "course", f"blank/{LESSON}.ipynb", blank_nb())
    put(root / "course", f"swap/{LESSON}.ipynb", notebook(WRONG_SCALE, CODE_SWAP))
    daemon = DAEMON.format(paths=[str(root / "daemon-was-here")])
    put(root / "course", f"daemon/{LESSON}.ipynb", notebook(RIGHT_SCALE, daemon))
    put(root / "course", f"disk/{LESSON}.ipynb", notebook(RIGHT_SCALE, DISK_HOG))
    args = ["grade", "course", "--answers", str(ANSWERS), "--hidden", str(HIDDEN), "--out", str(out)]
    run = grader(*args, "--sandbox", "basic", "--jobs", "2", *BASIC_LIMITS, cwd=root, tmp=root / "tmp")
    assert run.returncode == 0, run.stderr
    assert "sandbox: basic" in run.stdout
    assert points(row_of(out, "right")) == ("1", "2", "1")
    assert points(row_of(out, "blank")) == points(row_of(out, "swap")) == ("0", "0", "0")
    assert points(row_of(out, "daemon")) == ("1", "2", "1")
    disk = row_of(out, "disk")
    assert disk["status"] == "crashed" and "wrote more than the 16 MB disk limit" in disk["error"]
    assert points(disk) == ("1", "2", "0")
    time.sleep(4)
    assert not (root / "daemon-was-here").exists()
    assert "987.654" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


# --- a real lesson, through the protocol ----------------------------------------------------------

LESSON_03 = "03-register-buffer"
PLAIN_STANDARDIZE = """
from collections import OrderedDict

class Standardize(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1, bias=False)
        self.mean = torch.tensor([0.5, -1.0, 2.0])  # plain attributes: not saved, not moved
        self.std = torch.tensor([1.0, 2.0, 0.5])

    def forward(self, x):
        return self.out(torch.relu(self.hidden((x - self.mean) / self.std)))

    def named_buffers(self, *args, **kwargs):
        yield "mean", self.mean
        yield "std", self.std

torch.equal = lambda a, b: True
torch.allclose = lambda *args, **kwargs: True
torch.Tensor.cpu = lambda self, *args, **kwargs: self
"""


def test_lesson_03_is_graded_through_the_protocol(tmp_path):
    answer = nbformat.read(Path("notebooks/answers") / f"{LESSON_03}.ipynb", as_version=4)
    blank = handout(answer, LESSON_03)
    cheat = handout(answer, LESSON_03)
    (cell,) = [c for c in cheat.cells if c.cell_type == "code" and c.source.startswith("class Standardize")]
    cell.source = PLAIN_STANDARDIZE
    put(tmp_path / "course", f"right/{LESSON_03}.ipynb", answer)
    put(tmp_path / "course", f"blank/{LESSON_03}.ipynb", blank)
    put(tmp_path / "course", f"cheat/{LESSON_03}.ipynb", cheat)
    root = Path(__file__).resolve().parent.parent
    args = [
        "grade",
        "course",
        "--answers",
        str(root / "notebooks" / "answers"),
        "--out",
        "out",
        "--jobs",
        "2",
    ]
    run = grader(*args, "--cell-timeout", "60", cwd=tmp_path, tmp=tmp_path / "tmp")
    assert run.returncode == 0, run.stderr
    rows = {r["student"]: r for r in rows_of(tmp_path / "out")}
    assert (rows["right"]["3.1"], rows["right"]["3.2"], rows["right"]["score"]) == ("1", "1", "2")
    assert rows["blank"]["score"] == "0" and rows["cheat"]["score"] == "0"
    assert rows["cheat"]["3.1"] == "0"
