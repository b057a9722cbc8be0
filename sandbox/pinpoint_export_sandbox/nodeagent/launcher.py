"""The container's first process: a private mount namespace and root, then exec the program.

Run by the node agent as `python -I -S launcher.py SPEC.json` (standard library only, so it
starts fast) in a new session, with the agent's end of a close-on-exec error pipe as
`error_fd`: if anything fails before the program is exec'd, the message is written there and the
launcher exits 128, so the agent can report a StartError; a successful exec closes the pipe.

Where it runs as root, it gives the container what a container runtime would:
- its own mount and UTS namespaces (hostname = pod name);
- a root that is a tmpfs whose entries are recursive bind mounts of the host's. Mount points that
  do not exist (`/data`, `/var/run/secrets/kubernetes.io/serviceaccount`, `/dev/termination-log`)
  are created in memory: the directory that should hold one is "shadowed" by a tmpfs filled with
  bind mounts of its entries, and the mount point is made in that tmpfs. The host is untouched.
- volumes bind-mounted at their mount paths (read-only where asked), the root read-only for
  readOnlyRootFilesystem (except /dev and /proc), then pivot_root into it;
- the container's user, groups and no_new_privs, and death with the agent (PR_SET_PDEATHSIG).
Without root, the program runs on the host as is (no mounts).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import signal
import stat
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
MOUNT_ATTR_RDONLY = 0x1
AT_RECURSIVE = 0x8000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_MOUNT_SETATTR = 442  # the same on every architecture
STAGE = "/.stage"  # in the new root's own tmpfs, removed before the program runs

_libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source or fstype} on {target}",
    )


def _umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def _read_only(target: str, recursive: bool) -> None:
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    result = _libc.syscall(
        SYS_MOUNT_SETATTR, -100, target.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr)
    )
    _check(result, f"make {target} read-only")


def _touch(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def _bind(source: str, target: str, read_only: bool = False) -> None:
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        _read_only(target, recursive=True)


class Root:
    """The container's root, built under `path` (a host directory) before pivot_root."""

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/")
        self.owned = {"/"}  # directories we may create entries in: our tmpfs, writable volumes
        self.shadows: list[str] = []  # tmpfs that must become read-only like what they shadow
        _mount("tmpfs", self.path, "tmpfs", 0, "mode=755")
        # Recursive binds of host directories must not copy this tree into itself.
        _mount(None, self.path, None, MS_UNBINDABLE)
        self._mirror("/", "/")

    def host(self, path: str) -> str:
        return self.path + path

    def _mirror(self, source: str, directory: str) -> None:
        """Fill our `directory` with bind mounts of the entries of `source`."""
        for entry in os.scandir(source):
            target = self.host(os.path.join(directory, entry.name))
            try:
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), target)
                elif entry.is_dir(follow_symlinks=False):
                    os.mkdir(target)
                    _bind(entry.path, target)
                else:
                    _touch(target)
                    _bind(entry.path, target)
            except OSError as error:  # e.g. an entry that vanished; the rest is still usable
                sys.stderr.write(f"launcher: skipping {entry.path}: {error}\n")

    def shadow(self, directory: str, extra_mode: int = 0) -> None:
        """Replace our `directory` by a tmpfs holding bind mounts of its entries."""
        here = self.host(directory)
        stage = self.host(STAGE)
        os.mkdir(stage)
        _bind(here, stage)
        info = os.stat(stage)
        read_only = bool(os.statvfs(stage).f_flag & os.ST_RDONLY)
        mode = stat.S_IMODE(info.st_mode) | extra_mode
        _mount("tmpfs", here, "tmpfs", 0, f"mode={mode:o},uid={info.st_uid},gid={info.st_gid}")
        self._mirror(stage, directory)
        _umount(stage)
        os.rmdir(stage)
        self.owned.add(directory)
        if read_only:
            self.shadows.append(directory)

    def ensure(self, path: str, directory: bool) -> str:
        """Resolve `path` inside the root (symlinks included), creating what is missing in
        memory; returns the resolved path."""
        current = "/"
        parts = [p for p in path.split("/") if p]
        hops = 0
        while parts:
            name = parts.pop(0)
            if name in (".", ".."):
                current = os.path.dirname(current) if name == ".." else current
                continue
            candidate = os.path.join(current, name)
            here = self.host(candidate)
            if os.path.islink(here):
                hops += 1
                if hops > 40:
                    raise OSError(errno.ELOOP, f"too many symbolic links in {path}")
                link = os.readlink(here)
                parts = [p for p in link.split("/") if p] + parts
                current = "/" if link.startswith("/") else current
                continue
            if not os.path.lexists(here):
                if current not in self.owned:
                    self.shadow(current)
                if parts or directory:
                    os.mkdir(here, 0o755)
                    self.owned.add(candidate)
                else:
                    _touch(here)
            current = candidate
        return current

    def traversable(self, path: str) -> None:
        """Let any user reach `path` (the interpreter under a 0700 home): shadow its closed
        ancestors with an execute-only bit added; their entries keep their own permissions."""
        resolved = self.ensure(path, os.path.isdir(path))
        ancestors = []
        while resolved != "/":
            resolved = os.path.dirname(resolved)
            ancestors.append(resolved)
        for ancestor in reversed(ancestors):
            if os.stat(self.host(ancestor)).st_mode & 0o001 == 0:
                self.shadow(ancestor, extra_mode=0o111)

    def finish(self, read_only_root: bool) -> None:
        for directory in self.shadows:
            _read_only(self.host(directory), recursive=False)
        if read_only_root:
            _read_only(self.path, recursive=False)

    def pivot(self) -> None:
        os.chdir(self.path)
        _check(_libc.syscall(SYS_PIVOT_ROOT[platform.machine()], b".", b"."), "pivot_root")
        _umount(".")  # the old root, stacked under the new one
        os.chdir("/")


def isolate(spec: dict[str, Any]) -> None:
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    hostname = spec["hostname"].encode()
    _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount reaches the host
    root = Root(spec["rootfs"])
    if spec["read_only_root"]:
        for entry in os.listdir(root.path):
            target = root.host("/" + entry)
            if entry not in ("dev", "proc") and os.path.ismount(target):
                _read_only(target, recursive=True)
    for path in spec["traversable"]:
        root.traversable(path)
    for mount in sorted(spec["mounts"], key=lambda m: m["target"].rstrip("/").count("/")):
        directory = os.path.isdir(mount["source"])
        target = root.ensure(mount["target"], directory)
        _bind(mount["source"], root.host(target), mount["read_only"])
        if directory and not mount["read_only"]:
            root.owned.add(target)  # like runtimes, nested mount points go into the volume
    working_dir = root.ensure(spec["working_dir"], directory=True)
    root.finish(spec["read_only_root"])
    root.pivot()
    os.chdir(working_dir)


def weigh(spec: dict[str, Any]) -> None:
    """The container's CPU weight: its CPU group (kept across exec and by its children), else
    the nearest nice value. Before isolation, whose root may hide /sys or make it read-only."""
    if spec["cgroup_procs"]:
        with open(spec["cgroup_procs"], "w") as procs:
            procs.write(str(os.getpid()))
    else:
        os.setpriority(os.PRIO_PROCESS, 0, spec["nice"])


def become(spec: dict[str, Any]) -> None:
    if os.geteuid() == 0:
        os.setgroups(spec["groups"])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    if spec["no_new_privileges"]:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # Set after the credentials change, which clears it.
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    if os.getppid() != spec["agent_pid"]:
        raise RuntimeError("the node agent has exited")


def exec_error(program: str, error: OSError) -> str:
    """The message containerd/runc give, which users recognise."""
    if error.errno == errno.ENOENT and "/" not in program:
        return f'exec: "{program}": executable file not found in $PATH'
    reason = os.strerror(error.errno or 0)
    return f'exec: "{program}": {reason[:1].lower()}{reason[1:]}'


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    error_fd: int = spec["error_fd"]
    try:
        os.umask(0o022)
        weigh(spec)
        if spec["isolate"]:
            isolate(spec)
        elif os.path.isdir(spec["working_dir"]):
            os.chdir(spec["working_dir"])
        become(spec)
        os.set_inheritable(error_fd, False)
        argv = spec["argv"]
        try:
            os.execvpe(argv[0], argv, spec["env"])
        except OSError as error:
            raise RuntimeError(exec_error(argv[0], error)) from error
    except Exception as error:
        os.write(error_fd, str(error).encode(errors="replace"))
        os._exit(128)


if __name__ == "__main__":
    main()
