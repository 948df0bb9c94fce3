"""The new root filesystem of a child at the `namespaces` level, built on a tmpfs in its own mount
namespace: the system's and Python's folders bound read-only, one writable tmpfs of `--disk` MB for
its folder, /tmp, /var/tmp and /dev/shm, a few device files, a /proc of its PID namespace. Nothing
else of the host is in it. Runs as root of the namespace, before any student code."""

from __future__ import annotations

import os
import shutil

from buflesson.grading.child import linux
from buflesson.grading.limits import BYTES_PER_FILE

ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
ACCELERATORS = ("nvidia", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "dri", "kfd")
INSIDE = "/sandbox"  # the writable tmpfs, inside the new root


def build_root(sandbox, scratch: str, uid: int | None) -> None:
    """A new root on a tmpfs: software read-only, one writable tmpfs, /dev, /proc; then pivot."""
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    root = os.path.join(scratch, "root")
    linux.mount("tmpfs", root, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=4m,mode=755")
    for name in ROOT_LINKS:
        if os.path.islink(f"/{name}"):
            os.symlink(os.readlink(f"/{name}"), f"{root}/{name}")
        elif os.path.isdir(f"/{name}"):
            _bind_readonly(f"/{name}", f"{root}/{name}")
    if os.path.isdir("/sys"):  # devices and CPUs, read-only, without the mounts under it if it may
        try:
            _bind_readonly("/sys", f"{root}/sys", recursive=False)
        except OSError:  # a user namespace may not hide what is mounted under /sys
            _bind_readonly("/sys", f"{root}/sys")
    inside = root + INSIDE
    os.makedirs(inside)
    inodes = max(64, sandbox.disk_mb * 2**20 // BYTES_PER_FILE)
    options = f"size={sandbox.disk_mb}m,nr_inodes={inodes},mode=755"
    linux.mount("tmpfs", inside, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, options)
    for name in ("work", "home", "tmp", "shm"):
        os.mkdir(f"{inside}/{name}")
    shutil.copytree(os.path.join(scratch, "files"), f"{inside}/work", symlinks=True, dirs_exist_ok=True)
    os.chmod(f"{inside}/tmp", 0o1777)
    os.chmod(f"{inside}/shm", 0o1777)
    if uid is not None:
        for folder, dirs, files in os.walk(inside):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(name, uid, uid)
    _make_dev(root, inside)
    for target in ("/tmp", "/var/tmp"):
        os.makedirs(root + target, exist_ok=True)
        linux.mount(f"{inside}/tmp", root + target, None, linux.MS_BIND)
    for folder in sandbox.binds:  # after /tmp: a course or Python installed under /tmp stays visible
        _bind_readonly(folder, root + folder)
    os.makedirs(f"{root}/proc")
    linux.mount("proc", f"{root}/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    for mask in sandbox.masks:
        _mask(root + mask)
    os.makedirs(f"{root}/.old")
    flags = linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    linux.mount(None, root, None, flags)
    linux.pivot_root(root, f"{root}/.old")
    os.chdir("/")
    linux.umount("/.old", linux.MNT_DETACH)


def _make_dev(root: str, inside: str) -> None:
    dev = f"{root}/dev"
    os.makedirs(dev)
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            open(f"{dev}/{name}", "w").close()
            linux.mount(f"/dev/{name}", f"{dev}/{name}", None, linux.MS_BIND)
    for name in sorted(os.listdir("/dev")):
        if name.startswith(ACCELERATORS):  # a GPU's device files, when there is one
            source = f"/dev/{name}"
            if os.path.isdir(source):
                _bind_readonly(source, f"{dev}/{name}", readonly=False)
            else:
                open(f"{dev}/{name}", "w").close()
                linux.mount(source, f"{dev}/{name}", None, linux.MS_BIND)
    os.mkdir(f"{dev}/shm")
    linux.mount(f"{inside}/shm", f"{dev}/shm", None, linux.MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
    ):
        os.symlink(target, f"{dev}/{name}")
    os.symlink("/proc/self/fd/2", f"{dev}/stderr")


def _bind_readonly(source: str, target: str, readonly: bool = True, recursive: bool = True) -> None:
    """Bind `source` (and the mounts under it) at `target`, each of them read-only and nosuid."""
    os.makedirs(target, exist_ok=True)
    linux.mount(source, target, None, linux.MS_BIND | (linux.MS_REC if recursive else 0))
    if not readonly:
        return
    for mount_point in _mounts_under(target) if recursive else [target]:
        flags = (
            linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | _locked_flags(mount_point)
        )
        try:
            linux.mount(None, mount_point, None, flags)
        except OSError:
            if mount_point == target:
                raise


def _locked_flags(path: str) -> int:
    """The flags a remount must keep (a user namespace may not clear them)."""
    try:
        have = os.statvfs(path).f_flag
    except OSError:
        return 0
    keep = 0
    for flag in (linux.MS_NODEV, linux.MS_NOEXEC, linux.MS_NOATIME, linux.MS_NODIRATIME, linux.MS_RELATIME):
        if have & flag:
            keep |= flag
    return keep


def _mounts_under(target: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == target or point.startswith(target.rstrip("/") + "/"):
                found.append(point)
    return found


def _mask(path: str) -> None:
    if os.path.isdir(path):
        linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV, "size=4k")
    elif os.path.exists(path):
        linux.mount("/dev/null", path, None, linux.MS_BIND)
