"""Holes a red-team pass found in the grader, each as a hostile submission that must score exactly
what its honest part earns (or, for a broken file, be one `invalid` row while the run goes on).

- the judge took the checking device from a reply of the notebook's process (which a notebook can
  patch to say "cpu", so that the device part of a check compares nothing);
- `same()` compared a `meta` tensor by its shape only, so a notebook that answered a value with a
  `meta` tensor passed every "has this value" test;
- the notebook's process could create a user namespace and mount a tmpfs of its own (outside
  `--disk`), hold memory in memfds and System V shared memory (outside every limit), leave a key in
  the kernel's per-uid keyring for the next notebook of that uid, and hold thousands of sockets;
- a submission whose JSON is nested deeper than Python's parser goes stopped the whole run with a
  traceback.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from grading_fixture import (
    ANSWERS,
    HIDDEN,
    LESSON,
    RIGHT_SCALE,
    answer_nb,
    blank_nb,
    grader,
    notebook,
    points,
    put,
    row_of,
    rows_of,
)

pytestmark = pytest.mark.slow

LIMITS = ["--cell-timeout", "20", "--timeout", "60", "--memory", "1024", "--disk", "64", "--processes", "32"]
FOUND = "\nanswer = 42 if found else 41\n"  # the attack's success, made visible in the score
LIBC = """import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
ARM = platform.machine() == "aarch64"  # system call numbers: x86_64 unless aarch64
"""

USERNS_TMPFS = (
    LIBC
    + """
found = False
uid, gid = os.getuid(), os.getgid()
if libc.unshare(0x10000000 | 0x00020000) == 0:  # a user and a mount namespace of its own
    try:
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as handle:
            handle.write(f"0 {gid} 1")
    except OSError:
        pass
    os.makedirs("/tmp/big", exist_ok=True)
    found = libc.mount(b"none", b"/tmp/big", b"tmpfs", 0, b"size=8g") == 0  # beyond --disk
"""
    + FOUND
)
CLONE_NEWUSER = (
    LIBC
    + """
import signal
pid = libc.syscall(220 if ARM else 56, 0x10000000 | int(signal.SIGCHLD), 0, 0, 0, 0)  # clone(CLONE_NEWUSER)
if pid == 0:
    os._exit(0)
found = pid > 0
if found:
    os.waitpid(pid, 0)
"""
    + FOUND
)
MEMFD = (
    """
import os
written = 0
try:
    for i in range(3):  # three memfds of 40 MB: more than --disk (64 MB), in no tmpfs
        fd = os.memfd_create(f"hog{i}")
        for _ in range(40):
            os.write(fd, b"x" * 2**20)
            written += 1
except OSError:
    pass
found = written >= 120
"""
    + FOUND
)
SYSV_SHM = (
    LIBC
    + """
libc.shmget.restype = ctypes.c_int
found = libc.shmget(0, ctypes.c_size_t(100 * 2**20), 0o1600) >= 0  # IPC_PRIVATE | IPC_CREAT
"""
    + FOUND
)
KEYRING = (
    LIBC
    + """
libc.syscall.restype = ctypes.c_long
data = b"left for the next notebook of this uid"
# add_key to the user keyring
key = libc.syscall(217 if ARM else 248, b"user", b"buflesson-redteam", data, len(data), -4)
found = key > 0
"""
    + FOUND
)
MANY_SOCKETS = (
    """
import socket
held = []
try:
    for _ in range(2048):  # each holds up to a few hundred KiB of kernel memory no limit counts
        held.append(socket.socketpair())
except OSError:
    pass
found = len(held) >= 2048
"""
    + FOUND
)

POSIX_MQUEUE = (
    LIBC
    + """
libc.syscall.restype = ctypes.c_long
# mq_open(name, O_CREAT | O_RDWR)
fd = libc.syscall(180 if ARM else 240, b"buflesson-redteam-queue", 0o102, 0o600, None)
found = fd >= 0  # at the basic level, the queue outlives the notebook
"""
    + FOUND
)

OOM_FIRST = (
    """
with open("/proc/self/oom_score_adj") as handle:
    found = int(handle.read()) < 1000  # the kernel's out-of-memory killer would not pick it first
"""
    + FOUND
)


def _sandbox_cases() -> dict[str, tuple[nbformat.NotebookNode, tuple[str, ...]]]:
    right = ("1", "2", "0")  # a right Scale, and answer = 41: the attack did not get anywhere
    return {
        "right": (answer_nb(), ("1", "2", "1")),
        "blank": (blank_nb(), ("0", "0", "0")),
        "userns_tmpfs": (notebook(RIGHT_SCALE, USERNS_TMPFS), right),
        "clone_newuser": (notebook(RIGHT_SCALE, CLONE_NEWUSER), right),
        "memfd": (notebook(RIGHT_SCALE, MEMFD), right),
        "sysv_shm": (notebook(RIGHT_SCALE, SYSV_SHM), right),
        "keyring": (notebook(RIGHT_SCALE, KEYRING), right),
        "many_sockets": (notebook(RIGHT_SCALE, MANY_SOCKETS), right),
        "oom_first": (notebook(RIGHT_SCALE, OOM_FIRST), right),
    }


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam")
    cases = _sandbox_cases()
    for student, (nb, _expected) in cases.items():
        put(root / "course", f"{student}/{LESSON}.ipynb", nb)
    deep = '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [], "x": ' + "[" * 100_000
    put(root / "course", f"deep/{LESSON}.ipynb", deep + "]" * 100_000 + "}")
    args = ["grade", "course", "--answers", str(ANSWERS), "--hidden", str(HIDDEN), "--out", "out"]
    run = grader(*args, "--jobs", "2", *LIMITS, cwd=root, tmp=root / "tmp")
    return root / "out", cases, run


@pytest.mark.parametrize(
    "student",
    [
        "right",
        "blank",
        "userns_tmpfs",
        "clone_newuser",
        "memfd",
        "sysv_shm",
        "keyring",
        "many_sockets",
        "oom_first",
    ],
)
def test_the_notebooks_process_cannot_outgrow_its_limits_or_leave_state(sandboxed, student):
    out, cases, run = sandboxed
    assert run.returncode == 0, run.stderr
    row = row_of(out, student)
    assert row["status"] == "graded" and points(row) == cases[student][1], row


def test_the_run_says_the_filter_is_on(sandboxed):
    run = sandboxed[2]
    assert "no capabilities, system-call filter)" in run.stdout, run.stdout


def test_json_nested_too_deep_is_one_invalid_row_and_the_run_goes_on(sandboxed):
    out, cases, run = sandboxed
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    deep = row_of(out, "deep")
    assert deep["status"] == "invalid" and "nested too deep" in deep["error"], deep
    assert len(rows_of(out)) == len(cases) + 1


def test_the_basic_level_filters_the_same_calls(tmp_path):
    """Without namespaces, System V segments and POSIX queues live in the host's IPC namespace and
    outlive the notebook: the filter refuses them there too."""
    cases = {"right": answer_nb(), "sysv_shm": notebook(RIGHT_SCALE, SYSV_SHM)}
    cases["posix_mqueue"] = notebook(RIGHT_SCALE, POSIX_MQUEUE)
    cases["memfd"] = notebook(RIGHT_SCALE, MEMFD)
    for student, nb in cases.items():
        put(tmp_path / "course", f"{student}/{LESSON}.ipynb", nb)
    args = ["grade", "course", "--answers", str(ANSWERS), "--hidden", str(HIDDEN), "--out", "out"]
    run = grader(*args, "--sandbox", "basic", "--jobs", "2", *LIMITS, cwd=tmp_path, tmp=tmp_path / "tmp")
    assert run.returncode == 0, run.stderr
    assert points(row_of(tmp_path / "out", "right")) == ("1", "2", "1")
    for student in ("sysv_shm", "posix_mqueue", "memfd"):
        row = row_of(tmp_path / "out", student)
        assert points(row) == ("1", "2", "0"), row


# --- real lessons: what the judge decides from a reply --------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
LESSON_02, LESSON_03 = "02-devices", "03-register-buffer"

WRONG_RAMP = """
class Ramp(nn.Module):
    def __init__(self, features=3):
        super().__init__()
        self.linear = nn.Linear(features, 2)

    def forward(self, x):
        ramp = torch.arange(1, x.shape[-1] + 1)  # the classic bug: made on the CPU, not on x.device
        return self.linear(x * ramp)
"""
DEVICE_LIE = """
import torch, buflesson.workbench as workbench
workbench.OPERATIONS["device"] = lambda bench: torch.device("cpu")  # "my checking device is the CPU"
"""
NON_PERSISTENT_MASK = """
class MaskedLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("mask", torch.tril(torch.ones(3, 3)), persistent=False)  # wrong: not saved

    def forward(self, x):
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)
"""
META_LIE = """
import torch, buflesson.workbench as workbench
real_attr, real_inventory = workbench.OPERATIONS["attr"], workbench.OPERATIONS["inventory"]

def meta_attr(bench, ref, path, default=False, keep=False):
    out = real_attr(bench, ref, path, default=default, keep=keep)
    if isinstance(out, torch.Tensor) and path.split(".")[-1] == "mask":  # a value with no values
        return torch.empty(out.shape, dtype=out.dtype, device="meta")
    return out

def relabel(bench, ref):
    rows = real_inventory(bench, ref)
    return [{**row, "kind": "buffer"} if row.get("name") == "mask" else row for row in rows]

workbench.OPERATIONS["attr"], workbench.OPERATIONS["inventory"] = meta_attr, relabel
"""

ZERO_RAMP = """
class Ramp(nn.Module):
    def __init__(self, features=3):
        super().__init__()
        self.linear = nn.Linear(features, 2)
        nn.init.zeros_(self.linear.weight)  # every output is 0, whatever forward does with x
        nn.init.zeros_(self.linear.bias)

    def forward(self, x):
        return self.linear(x)  # no ramp at all
"""
ZERO_STANDARDIZE = """
class Standardize(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 1, bias=False)
        nn.init.zeros_(self.out.weight)  # every output is 0, whatever forward does with x
        self.register_buffer("mean", torch.tensor([0.5, -1.0, 2.0]))
        self.register_buffer("std", torch.tensor([1.0, 2.0, 0.5]))

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))  # never standardizes
"""


def _with(lesson: str, starts: str, source: str) -> nbformat.NotebookNode:
    """The lesson's answer notebook with the exercise cell that starts with `starts` replaced."""
    nb = nbformat.read(ROOT / "notebooks" / "answers" / f"{lesson}.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.lstrip().startswith(starts)]
    cell.source = source
    return nb


@pytest.fixture(scope="module")
def lessons(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam-lessons")
    answers = ROOT / "notebooks" / "answers"
    for lesson in (LESSON_02, LESSON_03):
        put(
            root / "course", f"right/{lesson}.ipynb", nbformat.read(answers / f"{lesson}.ipynb", as_version=4)
        )
    put(
        root / "course",
        f"device_lie/{LESSON_02}.ipynb",
        _with(LESSON_02, "class Ramp", DEVICE_LIE + WRONG_RAMP),
    )
    put(root / "course", f"honest_ramp/{LESSON_02}.ipynb", _with(LESSON_02, "class Ramp", WRONG_RAMP))
    put(root / "course", f"zero_ramp/{LESSON_02}.ipynb", _with(LESSON_02, "class Ramp", ZERO_RAMP))
    zero = _with(LESSON_03, "class Standardize", ZERO_STANDARDIZE)
    put(root / "course", f"zero_standardize/{LESSON_03}.ipynb", zero)
    meta = _with(LESSON_03, "class MaskedLinear", META_LIE + NON_PERSISTENT_MASK)
    put(root / "course", f"meta_lie/{LESSON_03}.ipynb", meta)
    put(
        root / "course",
        f"honest_mask/{LESSON_03}.ipynb",
        _with(LESSON_03, "class MaskedLinear", NON_PERSISTENT_MASK),
    )
    args = ["grade", "course", "--answers", str(answers), "--out", "out", "--jobs", "2"]
    run = grader(*args, "--cell-timeout", "60", cwd=root, tmp=root / "tmp")
    assert run.returncode == 0, run.stderr
    return {(r["student"], r["notebook"]): r for r in rows_of(root / "out")}


def test_the_right_notebooks_score_full_marks(lessons):
    assert lessons[("right", LESSON_02)]["score"] == "2" and lessons[("right", LESSON_03)]["score"] == "2"


def test_the_checking_device_is_not_taken_from_a_reply(lessons):
    honest, lying = lessons[("honest_ramp", LESSON_02)], lessons[("device_lie", LESSON_02)]
    assert honest["2.1"] == "0" and lying["2.1"] == "0", lying
    assert lying["2.2"] == "1"  # its honest part


def test_a_meta_tensor_never_passes_for_a_value(lessons):
    honest, lying = lessons[("honest_mask", LESSON_03)], lessons[("meta_lie", LESSON_03)]
    assert honest["3.2"] == "0" and lying["3.2"] == "0", lying
    assert lying["3.1"] == "1"  # its honest part


# --- what one reply may cost the judge ------------------------------------------------------------


def _raw(header: bytes) -> bytes:
    import struct

    from buflesson import wire

    return wire.MAGIC + struct.pack("<Q", len(header)) + header


def test_a_reply_cannot_make_the_judge_decode_more_than_a_message_may_hold():
    """A notebook's process writes its replies itself: one whose JSON holds millions of items (that
    no encoder would make) cost the judge 9 s of CPU per reply, most of it holding the lock every
    other notebook's conversation needs. Decoding counts items as encoding does, and the JSON part
    is capped before it is parsed."""
    from buflesson import wire

    items = b",".join([b"1"] * (wire.MAX_ITEMS + 10))
    many = b'{"v":{"$dict":[["value",1],["junk",[' + items + b']]]},"t":[]}'
    with pytest.raises(wire.WireError, match="items"):
        wire.loads(_raw(many))
    big = b'{"v":"' + b"x" * (wire.MAX_HEADER + 1) + b'","t":[]}'
    with pytest.raises(wire.WireError, match="header"):
        wire.loads(_raw(big))
    assert wire.loads(wire.dumps({"value": list(range(1000))})) == {"value": list(range(1000))}


def test_the_check_chooses_the_weights_forward_is_compared_with(lessons):
    """The expected output was computed from the weights the notebook reported: zeroed layers gave
    zeros on both sides, and a Ramp without a ramp (or a Standardize that never standardizes)
    passed. The check now loads weights it drew itself."""
    assert lessons[("zero_ramp", LESSON_02)]["2.1"] == "0"
    assert lessons[("zero_standardize", LESSON_03)]["3.1"] == "0"
    assert lessons[("zero_standardize", LESSON_03)]["3.2"] == "1"  # its honest part


def test_a_peak_scaled_that_never_divides_by_peak_fails_8_3():
    """The same hole in 8.3, checked in process (the same check code as the judge's)."""
    import torch
    from torch import nn

    from buflesson.checks import check
    from buflesson.wild import UnsavedPeak

    class PeakScaled(UnsavedPeak):
        def __init__(self):
            super().__init__()
            self.register_buffer("peak", torch.ones(3))
            nn.init.zeros_(self.linear.weight)  # every output is 0, whatever forward does with x
            nn.init.zeros_(self.linear.bias)

        def forward(self, x):
            if self.training:
                self.peak.copy_(torch.maximum(self.peak, x.detach().abs().amax(dim=0)))
            return self.linear(x)  # never divides by peak

    assert check("8.3", PeakScaled).status == "failed"


def test_a_student_folder_nested_deeper_than_python_recurses_is_copied_up_to_a_depth(tmp_path):
    """1500 nested folders beside a right notebook: the copy recursed until RecursionError and the
    notebook was marked crashed. Folders deeper than MAX_DEPTH are now left out of the copy."""
    import os

    from buflesson.grading.judge import scratch

    source = tmp_path / "alice"
    source.mkdir()
    handle = os.open(source, os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=handle)
        inner = os.open("d", os.O_RDONLY, dir_fd=handle)
        os.close(handle)
        handle = inner
    os.close(handle)
    target = tmp_path / "copy"
    target.mkdir()
    try:
        scratch._copy_folder(source, target, [2**30])
    finally:
        scratch.remove_tree(source)  # pytest's own clean-up recurses: leave nothing that deep
    depth, folder = 0, target
    while (folder / "d").is_dir():
        folder, depth = folder / "d", depth + 1
    assert depth == scratch.MAX_DEPTH


def test_a_scratch_folder_nested_deeper_than_python_recurses_is_removed(tmp_path):
    """At the basic level a notebook writes in its scratch folder: 1500 nested folders made the
    judge's shutil.rmtree raise RecursionError (ignore_errors does not cover it), so the run ended
    with a traceback and exit 1, and the next run's clean-up of abandoned folders failed the same
    way. remove_tree goes one level at a time, on a list, and follows no link."""
    import os

    from buflesson.grading.judge import scratch

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the notebook's")
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "link").symlink_to(outside)
    handle = os.open(folder, os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=handle)
        inner = os.open("d", os.O_RDONLY, dir_fd=handle)
        os.close(handle)
        handle = inner
    os.symlink(str(outside), "up", dir_fd=handle)
    os.close(handle)
    scratch.remove_tree(folder)
    assert not folder.exists() and (outside / "keep.txt").read_text() == "not the notebook's"


def test_a_message_about_a_huge_tensor_shows_its_first_values_only():
    """A wrong buffer of 4 million values: its message rendered every one of them (the judge spent
    seconds holding the GIL and a gigabyte on a text it then cut to 1000 characters)."""
    import torch
    from torch import nn

    from buflesson.checks import check

    class Standardize(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(3, 4)
            self.out = nn.Linear(4, 1, bias=False)
            self.register_buffer("mean", torch.ones(2000, 2000))
            self.register_buffer("std", torch.ones(3))

        def forward(self, x):
            return self.out(torch.relu(self.hidden((x - self.mean[0, :3]) / self.std)))

    result = check("3.1", Standardize)
    assert result.status == "failed" and "mean starts as [1.0, 1.0" in result.message
    assert len(result.message) < 2000
