"""A seccomp filter for the notebook's process: the system calls that would let it outgrow its limits
or leave something behind are refused (EPERM), whatever its uid or namespace.

- new namespaces (`unshare`, `setns`, `clone` with a `CLONE_NEW*` flag): a user namespace of its
  own would let it mount a tmpfs of any size, outside `--disk`;
- mounts of any kind (`mount`, the new mount API, `pivot_root`);
- `memfd_create`, System V shared memory, message queues and semaphores, POSIX message queues:
  memory that no file size limit, address-space limit or tmpfs caps (and, at the basic level,
  that outlives the notebook);
- the kernel keyrings (`add_key`, `request_key`, `keyctl`): they are kept per uid, so a key outlives
  the notebook and is read by the next notebook that runs as that uid;
- `bpf`, `perf_event_open`, `userfaultfd`, `io_uring_setup`: nothing a lesson needs.

`clone3` answers ENOSYS, so that the C library falls back to `clone`, whose flags the filter can
read. A system call of another ABI (32-bit x86 on x86_64, x32) is refused too. The filter is
installed after `no_new_privs`, in the notebook's process only, and every process it starts
inherits it; no student code has run when it is installed.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from buflesson.grading.child import linux

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# classic BPF
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000

CLONE_NEW_ANY = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
X32_BIT = 0x40000000

# (audit arch, clone, clone3, refused) by machine
_SYSCALLS = {
    "x86_64": (
        0xC000003E,
        56,
        435,
        {
            "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
            "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
            "fspick": 433, "mount_setattr": 442, "memfd_create": 319, "memfd_secret": 447,
            "shmget": 29, "msgget": 68, "semget": 64, "mq_open": 240, "add_key": 248, "request_key": 249,
            "keyctl": 250, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
            "io_uring_setup": 425,
        },
    ),
    "aarch64": (
        0xC00000B7,
        220,
        435,
        {
            "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
            "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
            "fspick": 433, "mount_setattr": 442, "memfd_create": 279, "memfd_secret": 447,
            "shmget": 194, "msgget": 186, "semget": 190, "mq_open": 180, "add_key": 217, "request_key": 218,
            "keyctl": 219, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
            "io_uring_setup": 425,
        },
    ),
}  # fmt: skip


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for `machine` (this one by default) as BPF instructions; None where unknown."""
    known = _SYSCALLS.get(machine or platform.machine())
    if known is None:
        return None
    arch, clone, clone3, refused = known
    code = [
        _op(LD_W_ABS, 4),  # seccomp_data.arch
        _op(JEQ_K, arch, 1, 0),
        _op(RET_K, RET_KILL_PROCESS),
        _op(LD_W_ABS, 0),  # seccomp_data.nr
        _op(JGE_K, X32_BIT, 0, 1),
        _op(RET_K, RET_ERRNO | errno.ENOSYS),
        _op(JEQ_K, clone3, 0, 1),
        _op(RET_K, RET_ERRNO | errno.ENOSYS),
    ]
    for number in sorted(refused.values()):
        code += [_op(JEQ_K, number, 0, 1), _op(RET_K, RET_ERRNO | errno.EPERM)]
    code += [
        _op(JEQ_K, clone, 0, 4),
        _op(LD_W_ABS, 16),  # the low half of seccomp_data.args[0]: clone's flags
        _op(JSET_K, CLONE_NEW_ANY, 0, 1),
        _op(RET_K, RET_ERRNO | errno.EPERM),
        _op(RET_K, RET_ALLOW),
        _op(RET_K, RET_ALLOW),
    ]
    return b"".join(code)


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> bool:
    """Install the filter in this process (no_new_privs must be set); False where this machine's
    system call numbers are not known here (the filter is then left out, as on other systems)."""
    code = program()
    if code is None:
        return False
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = _Program(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    zero = ctypes.c_ulong(0)
    result = linux._libc.prctl(
        ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), zero, zero
    )
    linux._check(result, "prctl PR_SET_SECCOMP")
    return True
