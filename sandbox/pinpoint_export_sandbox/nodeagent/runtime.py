"""The host side of running containers: volumes on disk, the launcher process, exit codes and
termination messages, and the handle (`Handle`) a started container is, as a process here or as
an OCI container (`containers`). One pod's files live in its directory:

    <work-dir>/pods/<ns>_<name>_<uid>/<container>.log      the container's output, kept
                                     /volumes/<volume>/     emptyDir, secret, configMap, projected
                                     /containers/<container>/termination-log, launch.json
                                                            (a process), cid, oom (a container)
                                     /rootfs                where each process's root is built
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pinpoint_export_operator.runtime.timestamps import now

from . import launcher
from .errors import VolumeError
from .plan import ContainerPlan
from .volumes import Volume, container_dir

MAX_MESSAGE = 4096  # the kubelet's limits for termination messages
MAX_LOG_MESSAGE = 2048
MAX_LOG_LINES = 80


class StartFailed(Exception):
    """The container's program could not be started (kubelet's StartError)."""


def isolation_available() -> bool:
    """Mount namespaces need root; without it programs run on the host as they are."""
    return os.geteuid() == 0


# --- volumes --------------------------------------------------------------------------------


def set_ownership(path: str, gid: int, read_only: bool, policy: str | None) -> None:
    """The kubelet's fsGroup handling: group-own everything, group-readable (and writable unless
    read-only), directories setgid so new files inherit the group."""
    mask = 0o440 if read_only else 0o660
    if policy == "OnRootMismatch":
        info = os.stat(path)
        wanted = mask | 0o110 | stat.S_ISGID
        if info.st_gid == gid and info.st_mode & wanted == wanted:
            return
    names = [path]
    for directory, dirs, files in os.walk(path):
        names += (os.path.join(directory, n) for n in (*dirs, *files))
    for name in names:
        info = os.lstat(name)
        os.lchown(name, -1, gid)
        if not stat.S_ISLNK(info.st_mode):
            extra = 0o110 | stat.S_ISGID if stat.S_ISDIR(info.st_mode) else 0
            os.chmod(name, stat.S_IMODE(info.st_mode) | mask | extra)


def materialize(volumes: Iterable[Volume], fs_group: int | None, policy: str | None) -> None:
    """Create the pod's volumes on the host."""
    for volume in volumes:
        path = Path(volume.path)
        if volume.kind == "files":
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
            for file in volume.files:
                target = path / file.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.data)
                target.chmod(file.mode)
        elif volume.create:
            path.mkdir(parents=True, exist_ok=True)  # hostPath's default: created if missing
            if volume.kind == "empty":
                path.chmod(0o777)
        elif not path.exists():
            raise VolumeError(f"hostPath {volume.path} does not exist")
        if fs_group is not None and volume.manages_ownership:  # not hostPath, as the kubelet
            set_ownership(volume.path, fs_group, volume.kind == "files", policy)


# --- processes ------------------------------------------------------------------------------


class Handle(Protocol):
    """A started container, as a process here or as a container (`containers.Container`)."""

    popen: subprocess.Popen[bytes]
    started_at: str
    log: Path
    log_offset: int  # where this run's output starts in the log
    start_error: str | None  # after wait(): it never ran, and why (StartError)
    oom_killed: bool  # after wait(): the OOM killer ended it

    @property
    def container_id(self) -> str: ...

    def wait(self) -> int: ...

    def signal(self, sig: signal.Signals) -> None: ...


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    started_at: str
    log: Path
    log_offset: int  # where this run's output starts in the log
    start_error: str | None = None  # a process that cannot start fails in start() instead
    oom_killed: bool = False  # no memory limit is set on a process

    @property
    def container_id(self) -> str:
        return f"sandbox://{self.popen.pid}"

    def wait(self) -> int:
        """The exit code as a runtime reports it: 128 + signal when killed."""
        code = self.popen.wait()
        return 128 - code if code < 0 else code

    def signal(self, sig: signal.Signals) -> None:
        """Signal the whole process group, so the program's children go too."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


def prepare_files(plan: ContainerPlan, pod_dir: str) -> Path:
    """What the kubelet makes before a container starts, whatever runs it: an empty
    termination log and missing subPath directories. The container's directory."""
    directory = Path(container_dir(pod_dir, plan.name))
    directory.mkdir(parents=True, exist_ok=True)
    termination_log = directory / "termination-log"
    termination_log.write_bytes(b"")
    termination_log.chmod(0o666)  # whoever the container runs as writes it, as with the kubelet
    for mount in plan.mounts:
        if mount.create:
            Path(mount.source).mkdir(parents=True, exist_ok=True)
    return directory


def start(
    plan: ContainerPlan, pod_dir: str, isolate: bool, cgroup_procs: Path | None = None
) -> Process:
    """Start a container's program through the launcher, in the CPU group whose
    `cgroup.procs` is given (else niced); raises StartFailed with the reason."""
    if plan.start_error:
        raise StartFailed(plan.start_error)
    directory = prepare_files(plan, pod_dir)
    rootfs = Path(pod_dir) / "rootfs"
    rootfs.mkdir(exist_ok=True)
    read_end, write_end = os.pipe()
    spec = {
        "argv": list(plan.argv),
        "env": dict(plan.env),
        "working_dir": plan.working_dir,
        "uid": plan.uid,
        "gid": plan.gid,
        "groups": list(plan.groups),
        "hostname": plan.hostname,
        "mounts": [
            {"source": m.source, "target": m.target, "read_only": m.read_only} for m in plan.mounts
        ],
        "read_only_root": plan.read_only_root,
        "no_new_privileges": plan.no_new_privileges,
        "nice": plan.nice,
        "cgroup_procs": str(cgroup_procs) if cgroup_procs else None,
        # The interpreter is on every container's PATH; a non-root user must reach it even
        # if it sits under a closed home directory.
        "traversable": [sys.executable] if plan.uid != 0 else [],
        "isolate": isolate,
        "rootfs": str(rootfs),
        "error_fd": write_end,
        "agent_pid": os.getpid(),
    }
    spec_file = directory / "launch.json"
    spec_file.touch(mode=0o600)
    spec_file.write_text(json.dumps(spec, indent=1))
    log = Path(pod_dir) / f"{plan.name}.log"
    started_at = now()
    try:
        with log.open("ab") as out:
            offset = log.stat().st_size
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", launcher.__file__, str(spec_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(write_end,),
                env={},
            )
    except OSError as error:
        os.close(read_end)
        raise StartFailed(f"starting the launcher: {error}") from error
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        failure = pipe.read()  # EOF once the program is exec'd
    if failure:
        popen.wait()
        raise StartFailed(failure.decode(errors="replace"))
    return Process(popen, started_at, log, offset)


def ending(plan: ContainerPlan, pod_dir: str, process: Handle, exit_code: int) -> tuple[str, str]:
    """The terminated state's reason and message, as the kubelet reports them."""
    if process.start_error is not None:
        return "StartError", process.start_error
    message = termination_message(plan, pod_dir, process, exit_code)
    if process.oom_killed:
        return "OOMKilled", message
    return ("Completed" if exit_code == 0 else "Error"), message


def termination_message(plan: ContainerPlan, pod_dir: str, process: Handle, exit_code: int) -> str:
    """What the container wrote to its terminationMessagePath, else, for
    FallbackToLogsOnError and a failure, the tail of this run's output."""
    path = Path(container_dir(pod_dir, plan.name)) / "termination-log"
    try:
        with path.open("rb") as f:
            message = f.read(MAX_MESSAGE)
    except OSError:
        message = b""
    if not message and plan.fallback_to_logs and exit_code != 0:
        with process.log.open("rb") as f:
            f.seek(max(process.log_offset, process.log.stat().st_size - MAX_LOG_MESSAGE))
            message = b"\n".join(f.read().splitlines()[-MAX_LOG_LINES:])
    return message.decode(errors="replace")


def clean_up(pod_dir: str) -> None:
    """Remove what only running containers need (secrets included); keep the logs."""
    for name in ("volumes", "containers", "rootfs"):
        shutil.rmtree(Path(pod_dir) / name, ignore_errors=True)
