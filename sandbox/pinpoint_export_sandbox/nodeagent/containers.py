"""Containers as real OCI containers: podman with runc, for images built locally.

The pod worker chooses per pod: when every image the pod names is in the project's container
storage (`make image`), its containers run here, otherwise as processes (`runtime`). Both
return a handle the worker treats alike: `wait()` for the exit code, `signal()`, the log.

- `Podman`: the engine, configured as `tools/containers.sh` configures it (its environment
  contract: CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF, taken from the
  agent's environment, else the files under the project's cache), and the images it holds.
- `create_argv`: the `podman create` command line for a container plan (pure, unit-tested):
  the plan's argv as the entrypoint (the image's ENTRYPOINT and CMD already combined with the
  spec's command and args by `images.image_argv`), user and groups, bind mounts, read-only root,
  capabilities, no-new-privileges, seccomp, cgroup CPU weight and limits, host network.
- `start`: `podman create`, then `podman start --attach` with the container's output passed
  straight to its log file (log driver passthrough), as `runtime.start` writes a process's.
- `Container`: after the exit, `podman inspect` tells a start error (the container never ran),
  the exit code and whether the OOM killer ended it. Where cgroup v1 and v2 are mixed, conmon
  2.1 writes its `oom` marker into its working directory instead of telling podman: that
  directory is the container's own, and the marker is read from there too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pinpoint_export_operator.runtime.timestamps import now
from pinpoint_export_sandbox.binaries import CACHE_DIR

from .images import ImageConfig
from .plan import ContainerPlan
from .runtime import StartFailed, prepare_files
from .volumes import container_dir

CONFIG_FILES = {
    "CONTAINERS_CONF": "containers.conf",
    "CONTAINERS_STORAGE_CONF": "storage.conf",
    "CONTAINERS_REGISTRIES_CONF": "registries.conf",
}
CONFIG_DIR = CACHE_DIR / "containers"  # where tools/containers.sh writes them
SANDBOX_LABEL = "dev.pinpoint-export-operator.sandbox"  # value: the agent's work directory
NEVER_STARTED = "0001-01-01T00:00:00Z"
PODMAN_TIMEOUT = 120  # seconds for one podman command (create, inspect, kill, rm)
IMAGE_TTL = 10.0  # seconds an image's inspection (or its absence) is taken as still true
# Variables the container gets by name from `podman create`'s own environment, so that values
# (credentials) never appear on a command line. Names that podman itself reads are passed by
# value instead, with names podman could take for a pattern.
PASSED_BY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PODMAN_READS = frozenset({"PATH", "HOME", "TMPDIR", "LANG", "TZ", "NOTIFY_SOCKET"})
PODMAN_READS_PREFIXES: tuple[str, ...] = ("CONTAINER", "PODMAN_", "BUILDAH_", "STORAGE_")
PODMAN_READS_PREFIXES += ("REGISTRY", "XDG_", "LC_", "GO", "_CONTAINERS")
PODMAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _podman_reads(name: str) -> bool:
    return name in PODMAN_READS or name.startswith(PODMAN_READS_PREFIXES)


def _bind(source: str, target: str, read_only: bool) -> str:
    if "," in source or "," in target:
        raise ValueError(f"cannot bind-mount {source!r} at {target!r}: podman refuses commas")
    return f"type=bind,source={source},destination={target}" + (",ro=true" if read_only else "")


def _capability(name: str) -> str:
    return "all" if name.upper() == "ALL" else name.upper().removeprefix("CAP_")


def create_argv(
    plan: ContainerPlan, name: str, labels: Mapping[str, str], cidfile: str
) -> tuple[list[str], dict[str, str]]:
    """`podman create` arguments for `plan`, and the variables to pass in its environment.
    The container's id goes to `cidfile` (with the passthrough log driver podman prints none).

    The container gets what a kubelet asks a CRI runtime for: the pod's hostname on the host's
    network (the sandbox's pods all share the node's address), the securityContext as is
    (seccomp Unconfined unless RuntimeDefault, as without the kubelet's SeccompDefault), a
    read-only root without podman's extra tmpfs mounts, CPU shares and limits from resources.
    Raises ValueError if the plan cannot be expressed (no command, a mount path with a comma).
    """
    assert plan.image_config is not None, "a process plan, not a container's"
    if plan.start_error:
        raise ValueError(plan.start_error)
    user = str(plan.uid) if plan.gid is None else f"{plan.uid}:{plan.gid}"
    argv = [
        "create",
        "--name", name,
        "--cidfile", cidfile,
        "--runtime", "runc",
        "--pull", "never",
        "--network", "host",
        "--hostname", plan.hostname,
        "--log-driver", "passthrough",
        "--systemd", "false",
        "--user", user,
        "--workdir", plan.working_dir,
        "--entrypoint", json.dumps(list(plan.argv)),
    ]  # fmt: skip
    for group in plan.groups:
        argv += ["--group-add", str(group)]
    if plan.read_only_root:
        argv += ["--read-only", "--read-only-tmpfs=false"]
    if plan.privileged:
        argv.append("--privileged")
    if plan.no_new_privileges:
        argv += ["--security-opt", "no-new-privileges"]
    if plan.seccomp == "Unconfined":
        argv += ["--security-opt", "seccomp=unconfined"]
    for capability in plan.capabilities_drop:
        argv += ["--cap-drop", _capability(capability)]
    for capability in plan.capabilities_add:
        argv += ["--cap-add", _capability(capability)]
    argv += ["--cpu-shares", str(plan.cpu_shares)]
    if plan.cpu_limit is not None:
        argv += ["--cpus", f"{plan.cpu_limit:g}"]
    if plan.memory_limit is not None:  # and no swap, as the kubelet
        argv += ["--memory", str(plan.memory_limit), "--memory-swap", str(plan.memory_limit)]
    for mount in plan.mounts:
        argv += ["--mount", _bind(mount.source, mount.target, mount.read_only)]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    by_name: dict[str, str] = {}
    for key, value in plan.env.items():
        if PASSED_BY_NAME.fullmatch(key) and not _podman_reads(key):
            by_name[key] = value
            argv += ["--env", key]
        else:
            argv += ["--env", f"{key}={value}"]
    argv.append(plan.image)
    return argv, by_name


@dataclass(frozen=True)
class Podman:
    """The podman command with the project's configuration."""

    binary: str
    config: Mapping[str, str]  # CONTAINERS_CONF...
    _images: dict[str, tuple[float, ImageConfig | None]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def find(cls, environ: Mapping[str, str] = os.environ) -> Podman | None:
        """Podman with the configuration named by the environment, else the project's under
        its cache; None when either is missing (pods then run as processes)."""
        binary = shutil.which("podman")
        config = {k: environ[k] for k in CONFIG_FILES if environ.get(k)}
        if len(config) < len(CONFIG_FILES):
            config = {k: str(CONFIG_DIR / f) for k, f in CONFIG_FILES.items()}
        if binary is None or not all(Path(p).is_file() for p in config.values()):
            return None
        return cls(binary, config)

    def env(self, extra: Mapping[str, str] = {}) -> dict[str, str]:
        return {**extra, "PATH": PODMAN_PATH, **self.config}

    def run(
        self, *args: str, extra_env: Mapping[str, str] = {}, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            cwd="/",  # conmon writes an `oom` file into its working directory
            env=self.env(extra_env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PODMAN_TIMEOUT,
            check=check,
        )

    def images(
        self, names: Iterable[str], now: Callable[[], float] = time.monotonic
    ) -> dict[str, ImageConfig]:
        """The configuration of each of `names` that is a local image. What podman said of an
        image is kept for IMAGE_TTL seconds: a burst of pods asks once (an image built
        meanwhile is used by the pods created after that)."""
        found = {}
        for name in set(names) - {""}:
            with self._lock:
                seen = self._images.get(name)
            if seen is None or now() - seen[0] > IMAGE_TTL:
                inspected = self.run("image", "inspect", "--format", "{{json .Config}}", name)
                config = (
                    ImageConfig.from_inspect(name, json.loads(inspected.stdout))
                    if inspected.returncode == 0
                    else None
                )
                seen = (now(), config)
                with self._lock:
                    self._images[name] = seen
            if seen[1] is not None:
                found[name] = seen[1]
        return found

    def remove_all(self, work_dir: str) -> None:
        """Remove the containers that the agent working in `work_dir` left (it was killed)."""
        listed = self.run("ps", "--all", "--quiet", "--filter", f"label={SANDBOX_LABEL}={work_dir}")
        ids = listed.stdout.split()
        if ids:
            self.run("rm", "--force", "--time", "0", *ids)


def _podman_error(output: str) -> str:
    """Podman's own message: its last `Error: ` line, else the last line."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
    return (errors or lines or ["podman failed"])[-1]


@dataclass
class Container:
    """A running container: the handle `runtime.Process` is for a process."""

    podman: Podman
    id: str
    popen: subprocess.Popen[bytes]  # podman start --attach
    started_at: str
    log: Path
    log_offset: int
    directory: Path  # the container's, where conmon runs
    start_error: str | None = None
    oom_killed: bool = False

    @property
    def container_id(self) -> str:
        return f"podman://{self.id}"

    def wait(self) -> int:
        """The exit code; a container that never ran gets 128 and `start_error` (the kubelet's
        StartError), one the OOM killer ended `oom_killed`. The container is removed."""
        client_code = self.popen.wait()
        inspected = self.podman.run("inspect", "--format", "{{json .State}}", self.id)
        state = json.loads(inspected.stdout) if inspected.returncode == 0 else {}
        if state.get("StartedAt", NEVER_STARTED).startswith("0001-"):
            # Everything this attempt wrote is podman's (or runc's) message, not the program's.
            with self.log.open("r+b") as f:
                f.seek(self.log_offset)
                output = f.read().decode(errors="replace")
                f.truncate(self.log_offset)
            self.start_error = _podman_error(output) or f"podman exited with {client_code}"
            code = 128
        else:
            code = int(state.get("ExitCode", client_code))
            self.oom_killed = bool(state.get("OOMKilled")) or (self.directory / "oom").exists()
        self.podman.run("rm", "--force", "--time", "0", self.id)
        return code

    def signal(self, sig: signal.Signals) -> None:
        """Signal the container's processes (a container not running any more ignores it)."""
        self.podman.run("kill", "--signal", sig.name, self.id)


def start(
    podman: Podman, plan: ContainerPlan, pod_dir: str, name: str, labels: Mapping[str, str]
) -> Container:
    """Create and start the container; raises StartFailed with podman's reason."""
    cidfile = Path(container_dir(pod_dir, plan.name)) / "cid"
    try:
        argv, env = create_argv(plan, name, labels, str(cidfile))
    except ValueError as error:
        raise StartFailed(str(error)) from error
    prepare_files(plan, pod_dir)
    for previous in ("cid", "oom"):  # a previous attempt's
        (cidfile.parent / previous).unlink(missing_ok=True)
    created = podman.run(*argv, extra_env=env)
    if created.returncode != 0:
        raise StartFailed(_podman_error(created.stderr))
    container_id = cidfile.read_text().strip()
    log = Path(pod_dir) / f"{plan.name}.log"
    started_at = now()
    try:
        with log.open("ab") as out:
            offset = log.stat().st_size
            popen = subprocess.Popen(
                [podman.binary, "start", "--attach", container_id],
                cwd=cidfile.parent,  # where conmon writes its `oom` file, removed with the pod
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=podman.env(),
            )
    except OSError as error:
        with contextlib.suppress(subprocess.SubprocessError):
            podman.run("rm", "--force", container_id)
        raise StartFailed(f"starting podman: {error}") from error
    return Container(podman, container_id, popen, started_at, log, offset, cidfile.parent)
