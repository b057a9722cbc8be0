"""One pod bound to the node: set up its volumes, run its init containers then its containers
under the restart policy, honour deletion and activeDeadlineSeconds, and write its status.

Each pod has a thread, and each running container a thread that waits on its process. They
share one condition variable, notified on pod updates, container exits and agent shutdown.
"""

from __future__ import annotations

import base64
import datetime
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import runtime
from .kube import STRATEGIC, TRANSIENT, ApiError, Json, Kube
from .plan import (
    ConfigError,
    ContainerPlan,
    Host,
    Sources,
    TokenRef,
    Volume,
    VolumeError,
    plan_container,
    plan_volumes,
    references,
)
from .status import ContainerStatus, Running, State, Terminated, Waiting, now, pod_status

log = logging.getLogger(__name__)

INITIAL_BACKOFF = 1.0  # the kubelet's is 10s to 5min; shorter suits tests and demos
MAX_BACKOFF = 30.0
SHUTDOWN_GRACE = 2.0  # when the agent itself stops
DEADLINE = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
LOST = "The container could not be located when the pod was terminated"


@dataclass(frozen=True)
class Context:
    """What pod workers share with the agent."""

    kube: Kube
    host: Host
    work_dir: Path
    isolate: bool  # mount namespaces (root) or plain processes
    stop: threading.Event  # the agent is shutting down
    final_delete: Callable[[Json], None]  # the kubelet's last word on a deleted pod


def is_terminal(pod: Json) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_deleting(pod: Json) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _epoch(stamp: str) -> float:
    return (
        datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=datetime.UTC)
        .timestamp()
    )


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
        self.processes: dict[str, runtime.Process] = {}
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
        seconds = self.pod["spec"].get("activeDeadlineSeconds")
        return None if seconds is None else _epoch(self.start_time) + seconds

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
        if self.context.stop.is_set():
            return SHUTDOWN_GRACE
        metadata = self.pod["metadata"]
        if is_deleting(self.pod) and metadata.get("deletionGracePeriodSeconds") is not None:
            return float(metadata["deletionGracePeriodSeconds"])
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

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
            state = entry["state"]
            ended = state.get("terminated")
            started = (ended or state.get("running") or {}).get("startedAt") or self.start_time
            self.statuses[entry["name"]].state = (
                Terminated(
                    ended.get("exitCode", 0),
                    ended.get("reason", ""),
                    started,
                    ended.get("finishedAt") or now(),
                    ended.get("message", ""),
                )
                if ended
                else Terminated(137, "ContainerStatusUnknown", started, now(), LOST)
            )
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
                with self.cond:
                    self.volumes = volumes
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

    def _refresh_sources(self, with_volumes: bool) -> None:
        refs = references(self.pod)
        kube, namespace = self.context.kube, f"/api/v1/namespaces/{self.namespace}"
        secrets, config_maps = {}, {}
        for name in refs.secrets:
            secret = kube.get(f"{namespace}/secrets/{name}")
            if secret is not None:
                secrets[name] = {
                    k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()
                }
        for name in refs.config_maps:
            config_map = kube.get(f"{namespace}/configmaps/{name}")
            if config_map is not None:
                data = {k: v.encode() for k, v in (config_map.get("data") or {}).items()}
                binary = {
                    k: base64.b64decode(v) for k, v in (config_map.get("binaryData") or {}).items()
                }
                config_maps[name] = {**data, **binary}
        claims, tokens = self.sources.claims, self.sources.tokens
        if with_volumes:
            claims = {name: self._claim_path(name) for name in refs.claims}
            tokens = {ref: self._token(ref) for ref in refs.tokens}
        self.sources = Sources(secrets, config_maps, claims, tokens)

    def _claim_path(self, claim: str) -> str:
        """The host directory of the PV bound to `claim`."""
        kube = self.context.kube
        pvc = kube.get(f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims/{claim}")
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        volume_name = pvc["spec"].get("volumeName")
        if (pvc.get("status") or {}).get("phase") != "Bound" or not volume_name:
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = kube.get(f"/api/v1/persistentvolumes/{volume_name}")
        spec = (pv or {}).get("spec") or {}
        path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
        if not path:
            raise VolumeError(f'persistentvolume "{volume_name}" has no hostPath or local path')
        return str(path)

    def _token(self, ref: TokenRef) -> str:
        """A service-account token bound to this pod (TokenRequest), as the kubelet gets one."""
        account = self.pod["spec"].get("serviceAccountName") or "default"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [ref.audience] if ref.audience else [],
                "expirationSeconds": ref.expiration_seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            },
        }
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token"
        return str(self.context.kube.request("POST", path, body=request)["status"]["token"])

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
                    self.pod, spec, self.volumes, self.sources, self.context.host, self.pod_dir
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
            restart = (self.restart_policy == "Always" and not init) or (
                self.restart_policy != "Never" and exit_code != 0
            )
            if not restart:
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
            process = runtime.start(plan, self.pod_dir, self.context.isolate)
        except runtime.StartFailed as error:
            log.warning("%s: container %s cannot start: %s", self.key, plan.name, error)
            at = runtime.timestamp()
            self._set_state(plan.name, Terminated(128, "StartError", at, at, str(error)))
            return 128, 0.0
        with self.cond:
            self.processes[plan.name] = process
            status.state = Running(process.started_at)
            status.container_id = process.container_id
            if self.stopping:  # too late for a graceful stop: _kill has already been through
                process.signal(signal.SIGKILL)
        log.info("%s: container %s started (pid %d)", self.key, plan.name, process.popen.pid)
        self._publish()
        exit_code = process.wait()
        message = runtime.termination_message(plan, self.pod_dir, process, exit_code)
        log.info("%s: container %s exited with %d", self.key, plan.name, exit_code)
        with self.cond:
            del self.processes[plan.name]
            reason = "Completed" if exit_code == 0 else "Error"
            status.state = Terminated(
                exit_code, reason, process.started_at, runtime.timestamp(), message
            )
        self._publish()
        return exit_code, time.monotonic() - began

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
            # metadata.uid makes the patch fail if the pod was replaced by one of the same name.
            body = {"metadata": {"uid": self.uid}, "status": status}
            delay = INITIAL_BACKOFF
            for _ in range(6):
                try:
                    self.context.kube.request(
                        "PATCH", f"{self.path}/status", body=body, content_type=STRATEGIC
                    )
                    return
                except ApiError as error:
                    if error.status in (404, 409):
                        self.vanish()
                        return
                    if error.status < 500:
                        log.error("%s: status rejected: %s", self.key, error)
                        return
                    log.warning("%s: writing status: %s", self.key, error)
                except TRANSIENT as error:
                    log.warning("%s: writing status: %s", self.key, error)
                if self.context.stop.wait(delay):
                    return
                delay = min(delay * 2, MAX_BACKOFF)
            log.error("%s: giving up writing status", self.key)
