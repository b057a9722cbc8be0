"""One pod bound to the node: set up its volumes, run its init containers then its containers
under the restart policy, honour deletion and activeDeadlineSeconds, and write its status.

Each pod has a thread, and each running container a thread that waits on its process. They
share one condition variable, notified on pod updates, container exits and agent shutdown.
The kubelet's rules the worker applies are in `lifecycle`; it fetches what the pod refers to
with `fetch`, plans with `plan` and `volumes`, and writes the status from `status` with `publish`.
Its containers run as OCI containers (`containers`) when every image the pod names is built
locally, otherwise as processes (`runtime`): one or the other for the whole pod.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pinpoint_export_operator.runtime.timestamps import now

from . import containers, runtime
from .cgroups import PodsGroup
from .errors import ConfigError, VolumeError
from .fetch import fetch_sources
from .images import ImageConfig
from .kube import TRANSIENT, Json, Kube
from .lifecycle import (
    DEADLINE,
    INITIAL_BACKOFF,
    MAX_BACKOFF,
    active_deadline,
    grace_period,
    is_deleting,
    lost_state,
    restarts,
)
from .node import Host
from .plan import ContainerPlan, plan_container
from .podspec import Sources
from .publish import publish_status
from .status import ContainerStatus, Running, State, Terminated, Waiting, pod_status
from .volumes import Volume, plan_volumes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What pod workers share with the agent."""

    kube: Kube
    host: Host
    work_dir: Path
    isolate: bool  # mount namespaces (root) or plain processes
    podman: containers.Podman | None  # None: every pod runs as processes
    cpu_group: PodsGroup | None  # None: processes are niced to their weight instead
    stop: threading.Event  # the agent is shutting down
    final_delete: Callable[[Json], None]  # the kubelet's last word on a deleted pod


class PodWorker:
    def __init__(self, context: Context, pod: Json) -> None:
        self.context = context
        self.pod = pod
        metadata, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        self.uid: str = metadata["uid"]
        self.namespace: str = metadata.get("namespace", "default")
        self.name: str = metadata["name"]
        self.key = f"{self.namespace}/{self.name}"
        self.path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        self.pod_dir = str(context.work_dir / "pods" / f"{self.namespace}_{self.name}_{self.uid}")
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.init_specs: list[Json] = spec.get("initContainers") or []
        self.main_specs: list[Json] = spec.get("containers") or []
        self.start_time: str = status.get("startTime") or now()
        self.conditions: list[Json] = status.get("conditions") or []
        main_waiting = "PodInitializing" if self.init_specs else "ContainerCreating"
        self.statuses = {
            c["name"]: ContainerStatus(c["name"], c.get("image", ""), Waiting(reason))
            for specs, reason in (
                (self.init_specs, "ContainerCreating"),
                (self.main_specs, main_waiting),
            )
            for c in specs
        }
        self.sources = Sources()
        self.volumes: dict[str, Volume] = {}
        self.images: dict[str, ImageConfig] = {}  # empty: the pod runs as processes
        self.processes: dict[str, runtime.Handle] = {}
        self.cond = threading.Condition()
        self.publish_lock = threading.Lock()
        self.sandbox_ready = False
        self.failure: tuple[str, str] | None = None
        self.stopping = False  # nothing starts any more; what runs is being killed
        self.gone = False  # the pod no longer exists in the API
        self.done = False
        self.active = 0  # container threads running
        self.thread = threading.Thread(target=self._run, name=f"pod {self.key}", daemon=True)

    # --- events from the agent --------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def update(self, pod: Json) -> None:
        with self.cond:
            self.pod = pod
            self.cond.notify_all()
            done = self.done
        if done and is_deleting(pod):
            self.context.final_delete(pod)

    def vanish(self) -> None:
        with self.cond:
            self.gone = True
            self.cond.notify_all()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    # --- conditions -------------------------------------------------------------------------

    def _deadline(self) -> float | None:
        return active_deadline(self.pod, self.start_time)

    def _must_stop(self) -> bool:
        """Whether the pod must stop now (called holding the condition)."""
        deadline = self._deadline()
        if self.failure is None and deadline is not None and time.time() >= deadline:
            log.info("%s: active deadline exceeded", self.key)
            self.failure = DEADLINE
        return (
            self.gone
            or self.context.stop.is_set()
            or self.failure is not None
            or is_deleting(self.pod)
        )

    def _wait(self, seconds: float, until: Callable[[], bool] = lambda: False) -> bool:
        """Wait up to `seconds` or until `until()`; True as soon as the pod must stop."""
        end = time.monotonic() + seconds
        with self.cond:
            while not self._must_stop():
                remaining = end - time.monotonic()
                if remaining <= 0 or until():
                    return False
                deadline = self._deadline()
                if deadline is not None:
                    remaining = min(remaining, max(deadline - time.time(), 0) + 0.01)
                self.cond.wait(None if remaining == math.inf else remaining)
            return True

    def _grace(self) -> float:
        return grace_period(self.pod, self.context.stop.is_set())

    # --- the pod's life ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if not self._recover_lost():
                self._publish()
                if self._prepare() and all(
                    self._supervise([c], init=True) for c in self.init_specs
                ):
                    self._supervise(self.main_specs, init=False)
        except Exception:
            log.exception("%s: pod worker failed", self.key)
        finally:
            self._finish()

    def _recover_lost(self) -> bool:
        """A pod this node ran before the agent restarted: its processes died with that agent.
        Like the kubelet, a restartPolicy Never pod is then over; others start again."""
        status = self.pod.get("status") or {}
        previous = [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
        ran = [s for s in previous if {"running", "terminated"} & set(s.get("state") or {})]
        if not ran:
            return False
        for entry in previous:
            if entry["name"] in self.statuses:
                self.statuses[entry["name"]].restart_count = entry.get("restartCount", 0)
        if self.restart_policy != "Never":
            return False
        log.info("%s: containers lost with a previous agent; failing the pod", self.key)
        for entry in ran:
            if entry["name"] not in self.statuses:
                continue
            self.statuses[entry["name"]].state = lost_state(entry["state"], self.start_time)
        with self.cond:
            self.stopping = True
        return True

    def _prepare(self) -> bool:
        """Fetch what the pod refers to and create its volumes, retrying until possible."""
        delay = INITIAL_BACKOFF
        while True:
            try:
                self._refresh_sources(with_volumes=True)
                volumes = plan_volumes(self.pod, self.sources, self.context.host, self.pod_dir)
                security = self.pod["spec"].get("securityContext") or {}
                runtime.materialize(
                    volumes.values(), security.get("fsGroup"), security.get("fsGroupChangePolicy")
                )
                images = self._local_images()
                with self.cond:
                    self.volumes = volumes
                    self.images = images
                    self.sandbox_ready = True
                return True
            except (VolumeError, *TRANSIENT) as error:
                log.warning("%s: cannot set up volumes yet: %s", self.key, error)
                with self.cond:
                    for status in self.statuses.values():
                        if isinstance(status.state, Waiting):
                            status.state = Waiting(status.state.reason, str(error))
                self._publish()
            if self._wait(delay):
                return False
            delay = min(delay * 2, MAX_BACKOFF)

    def _local_images(self) -> dict[str, ImageConfig]:
        """The configuration of the pod's images if all of them are built locally, else {}."""
        podman = self.context.podman
        names = {c.get("image", "") for c in (*self.init_specs, *self.main_specs)}
        found = podman.images(names) if podman is not None else {}
        if found.keys() == names:
            log.info("%s: runs as containers (%s)", self.key, ", ".join(sorted(names)))
            return found
        return {}

    def _refresh_sources(self, with_volumes: bool) -> None:
        self.sources = fetch_sources(self.context.kube, self.pod, self.sources, with_volumes)

    def _supervise(self, specs: Sequence[Json], init: bool) -> bool:
        """Run containers concurrently until they are done; kill them if the pod must stop.
        True if they all ended successfully."""
        with self.cond:
            self.active += len(specs)
        threads = [
            threading.Thread(
                target=self._container,
                args=(spec, init),
                name=f"container {self.key}/{spec['name']}",
                daemon=True,
            )
            for spec in specs
        ]
        for thread in threads:
            thread.start()
        if self._wait(math.inf, until=lambda: self.active == 0):
            self._kill(threads)
        for thread in threads:
            thread.join()
        with self.cond:
            return not self.stopping and all(
                isinstance(state := self.statuses[s["name"]].state, Terminated)
                and state.exit_code == 0
                for s in specs
            )

    def _kill(self, threads: Sequence[threading.Thread]) -> None:
        """SIGTERM to every container's process group, SIGKILL after the grace period."""
        grace = self._grace()
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
            processes = list(self.processes.values())
        log.info("%s: stopping %d container(s), grace %.0fs", self.key, len(processes), grace)
        for process in processes:
            process.signal(signal.SIGTERM)
        end = time.monotonic() + grace
        for thread in threads:
            thread.join(max(end - time.monotonic(), 0))
        with self.cond:
            processes = list(self.processes.values())
        for process in processes:
            process.signal(signal.SIGKILL)

    def _container(self, spec: Json, init: bool) -> None:
        try:
            self._run_container(spec, init)
        except Exception:
            log.exception("%s: container %s failed", self.key, spec["name"])
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    def _run_container(self, spec: Json, init: bool) -> None:
        """Run one container, restarting it as the restart policy says."""
        name = spec["name"]
        status = self.statuses[name]
        delay = INITIAL_BACKOFF
        while True:
            with self.cond:
                if self.stopping or self._must_stop():
                    return
            try:
                plan = plan_container(
                    self.pod,
                    spec,
                    self.volumes,
                    self.sources,
                    self.context.host,
                    self.pod_dir,
                    self.images.get(spec.get("image", "")),
                )
            except ConfigError as error:
                log.warning("%s: container %s cannot be configured: %s", self.key, name, error)
                self._set_state(name, Waiting("CreateContainerConfigError", str(error)))
                if self._wait(delay):
                    return
                delay = min(delay * 2, MAX_BACKOFF)
                try:
                    self._refresh_sources(with_volumes=False)
                except TRANSIENT as fetch_error:
                    log.warning("%s: %s", self.key, fetch_error)
                continue
            exit_code, lasted = self._attempt(plan)
            if not restarts(self.restart_policy, init, exit_code):
                return
            if lasted > 2 * MAX_BACKOFF:
                delay = INITIAL_BACKOFF
            with self.cond:
                assert isinstance(status.state, Terminated)
                status.last_state = status.state
                pod = f"{self.name}_{self.namespace}({self.uid})"
                status.state = Waiting(
                    "CrashLoopBackOff",
                    f"back-off {delay:g}s restarting failed container={name} pod={pod}",
                )
            self._publish()
            if self._wait(delay):
                return
            delay = min(delay * 2, MAX_BACKOFF)
            with self.cond:
                status.restart_count += 1

    def _attempt(self, plan: ContainerPlan) -> tuple[int, float]:
        """Run the container's program once: (exit code, seconds it ran)."""
        status = self.statuses[plan.name]
        began = time.monotonic()
        try:
            process = self._start(plan, status.restart_count)
        except runtime.StartFailed as error:
            self._release_cpu_group(plan)  # made for a program that never ran
            log.warning("%s: container %s cannot start: %s", self.key, plan.name, error)
            at = now()
            self._set_state(plan.name, Terminated(128, "StartError", at, at, str(error)))
            return 128, 0.0
        with self.cond:
            self.processes[plan.name] = process
            status.state = Running(process.started_at)
            status.container_id = process.container_id
            if self.stopping:  # too late for a graceful stop: _kill has already been through
                process.signal(signal.SIGKILL)
        log.info("%s: container %s started (%s)", self.key, plan.name, process.container_id)
        self._publish()
        exit_code = process.wait()
        self._release_cpu_group(plan)
        reason, message = runtime.ending(plan, self.pod_dir, process, exit_code)
        log.info("%s: container %s exited with %d (%s)", self.key, plan.name, exit_code, reason)
        with self.cond:
            del self.processes[plan.name]
            status.state = Terminated(exit_code, reason, process.started_at, now(), message)
        self._publish()
        return exit_code, time.monotonic() - began

    def _start(self, plan: ContainerPlan, restarts: int) -> runtime.Handle:
        """Start the container's program: in a container of its image, else as a process."""
        podman = self.context.podman
        if plan.image_config is None or podman is None:
            return runtime.start(plan, self.pod_dir, self.context.isolate, self._cpu_group(plan))
        labels = {
            containers.SANDBOX_LABEL: str(self.context.work_dir),
            "io.kubernetes.pod.name": self.name,
            "io.kubernetes.pod.namespace": self.namespace,
            "io.kubernetes.pod.uid": self.uid,
            "io.kubernetes.container.name": plan.name,
        }
        # The name the kubelet's docker integration gave containers: unique per attempt.
        name = f"k8s_{plan.name}_{self.name}_{self.namespace}_{self.uid}_{restarts}"
        return containers.start(podman, plan, self.pod_dir, name, labels)

    def _cpu_key(self, plan: ContainerPlan) -> str:
        return f"{self.uid}_{plan.name}"

    def _release_cpu_group(self, plan: ContainerPlan) -> None:
        if self.context.cpu_group is not None:
            self.context.cpu_group.release(self._cpu_key(plan))

    def _cpu_group(self, plan: ContainerPlan) -> Path | None:
        """The process's CPU group under the node's pods group, if there is one."""
        group = self.context.cpu_group
        if group is None:
            return None
        try:
            return group.container(self._cpu_key(plan), plan.cpu_shares, plan.cpu_limit)
        except OSError as error:
            log.warning("%s: no CPU group for %s (%s): niced instead", self.key, plan.name, error)
            return None

    def _finish(self) -> None:
        with self.cond:
            self.stopping = True
        if self.context.stop.is_set():
            return  # the pod is not over: its status and files stay for the next agent
        self._publish()
        runtime.clean_up(self.pod_dir)
        with self.cond:
            self.done = True
            pod = self.pod
        if is_deleting(pod):
            self.context.final_delete(pod)

    # --- status -----------------------------------------------------------------------------

    def _set_state(self, name: str, state: State) -> None:
        with self.cond:
            self.statuses[name].state = state
        self._publish()

    def _publish(self) -> None:
        """Write the pod's status. Serialised, so a later state never loses to an earlier one."""
        with self.publish_lock:
            with self.cond:
                # A stopping agent writes nothing, like a kubelet: the pods are not over.
                if self.gone or self.context.stop.is_set():
                    return
                status = pod_status(
                    restart_policy=self.restart_policy,
                    init=[self.statuses[c["name"]] for c in self.init_specs],
                    main=[self.statuses[c["name"]] for c in self.main_specs],
                    start_time=self.start_time,
                    sandbox_ready=self.sandbox_ready,
                    previous_conditions=self.conditions,
                    failure=self.failure,
                    stopped=self.stopping,
                )
                self.conditions = status["conditions"]
            kube, stop = self.context.kube, self.context.stop
            if publish_status(kube, self.path, self.uid, status, self.key, stop):
                self.vanish()
