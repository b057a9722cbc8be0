"""The node: registration and heartbeat, binding pending pods to it, one worker per bound pod."""

from __future__ import annotations

import datetime
import logging
import os
import platform
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pinpoint_export_operator.runtime.timestamps import now

from . import containers, runtime
from .cgroups import PodsGroup
from .kube import MERGE, STRATEGIC, TRANSIENT, ApiError, Informer, Json, Kube
from .lifecycle import is_deleting, is_terminal
from .node import ALLOCATABLE, MAX_PODS, POD_IP, Host
from .pod import Context, PodWorker

log = logging.getLogger(__name__)

LEASE_SECONDS = 40
RENEW_EVERY = 10.0
STATUS_EVERY = 60.0
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


def image_paths() -> tuple[str, ...]:
    """The operator image's files on this host: the virtual environment and the package's
    source tree (an editable install lives outside the environment)."""
    import pinpoint_export_operator

    package_root = str(Path(pinpoint_export_operator.__file__).resolve().parent.parent)
    return tuple(dict.fromkeys((sys.prefix, package_root)))


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_status(name: str, kubelet_version: str, since: str) -> Json:
    at = now()

    def condition(kind: str, ok: bool, reason: str, message: str) -> Json:
        return {
            "type": kind,
            "status": "True" if ok else "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": at,
            "lastTransitionTime": since,
        }

    return {
        "capacity": ALLOCATABLE,
        "allocatable": ALLOCATABLE,
        "conditions": [
            condition("MemoryPressure", False, "KubeletHasSufficientMemory", "sandbox node"),
            condition("DiskPressure", False, "KubeletHasNoDiskPressure", "sandbox node"),
            condition("PIDPressure", False, "KubeletHasSufficientPID", "sandbox node"),
            condition("Ready", True, "KubeletReady", "sandbox node agent is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": POD_IP},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": name,
            "systemUUID": name,
            "bootID": name,
            "kernelVersion": platform.release(),
            "osImage": "pinpoint-export-sandbox",
            "containerRuntimeVersion": "sandbox://0.1.0",
            "kubeletVersion": kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": ARCHITECTURES.get(platform.machine(), platform.machine()),
        },
    }


class Agent:
    def __init__(self, kube: Kube, node_name: str, work_dir: Path) -> None:
        self.kube = kube
        self.node_name = node_name
        self.stop = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="agent")
        self.lock = threading.Lock()
        self.workers: dict[str, PodWorker] = {}  # by pod uid, until the pod leaves the API
        self.pending: set[str] = set()  # uids being bound or finally deleted
        self.placed: set[str] = set()  # uids of this node's pods that are not over
        self.waiting: dict[str, Json] = {}  # schedulable pods for which the node has no room
        self.since = now()
        self.labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": ARCHITECTURES.get(platform.machine(), platform.machine()),
        }
        self.context = Context(
            kube=kube,
            host=Host(node_name, kube.host, kube.port, sys.executable, image_paths()),
            work_dir=work_dir,
            isolate=runtime.isolation_available(),
            podman=containers.Podman.find(),
            # Weighted by the machine's CPUs, not the allocatable the node reports.
            cpu_group=PodsGroup.create(node_name, os.cpu_count() or 1),
            stop=self.stop,
            final_delete=self.final_delete,
        )
        if not self.context.isolate:
            log.warning("not root: containers run on the host without their own mounts")
        if self.context.podman is None:
            log.warning("no podman configured (tools/containers.sh): every pod runs as processes")

    def _remove_containers(self) -> None:
        """Containers a previous agent in this work directory left, or that outlived this one."""
        if self.context.podman is not None:
            self.context.podman.remove_all(str(self.context.work_dir))

    def run(self) -> None:
        """Run until `stop` is set, then kill the pods' processes."""
        self._remove_containers()  # their pods count them lost (PodWorker._recover_lost)
        node_uid = self._retry(self.register, "registering the node")
        if node_uid is None:
            return
        threading.Thread(
            target=self._heartbeat, args=(node_uid,), name="heartbeat", daemon=True
        ).start()
        Informer(
            self.kube,
            "/api/v1/pods",
            "spec.nodeName=",
            self.on_pending,
            self.on_pending_list,
            self.stop,
        ).start()
        Informer(
            self.kube,
            "/api/v1/pods",
            f"spec.nodeName={self.node_name}",
            self.on_pod,
            self.on_pod_list,
            self.stop,
        ).start()
        log.info("node %s ready (API server %s:%d)", self.node_name, self.kube.host, self.kube.port)
        self.stop.wait()
        self.shutdown()

    def shutdown(self) -> None:
        self.stop.set()
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.wake()
        for worker in workers:
            if worker.thread.is_alive():
                worker.thread.join()
        self._remove_containers()
        if self.context.cpu_group is not None:
            self.context.cpu_group.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _retry(self, action: Callable[[], str], what: str) -> str | None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                return action()
            except TRANSIENT as error:
                log.warning("%s: %s", what, error)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)
        return None

    # --- the Node -----------------------------------------------------------------------------

    def register(self) -> str:
        """Create or update the Node; its uid."""
        path = f"/api/v1/nodes/{self.node_name}"
        version = self.kube.request("GET", "/version").get("gitVersion", "v0.0.0")
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": self.labels},
        }
        try:
            self.kube.request("POST", "/api/v1/nodes", body=node)
        except ApiError as error:
            if error.status != 409:
                raise
        self.kube.request(
            "PATCH",
            f"{path}/status",
            body={"status": node_status(self.node_name, version, self.since)},
            content_type=STRATEGIC,
        )
        current = self.kube.request(
            "PATCH", path, body={"metadata": {"labels": self.labels}}, content_type=MERGE
        )
        # Admission taints new nodes not-ready until the node controller sees them Ready; this
        # node is ready as soon as it is registered, whether or not that controller runs.
        taints = current["spec"].get("taints") or []
        kept = [t for t in taints if t["key"] != NOT_READY_TAINT]
        if kept != taints:
            current = self.kube.request(
                "PATCH", path, body={"spec": {"taints": kept or None}}, content_type=MERGE
            )
        return str(current["metadata"]["uid"])

    def _heartbeat(self, node_uid: str) -> None:
        """Renew the node's Lease every 10s and its Ready condition every minute."""
        leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        beats = 0
        while not self.stop.wait(RENEW_EVERY):
            spec = {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": _micro_now(),
            }
            try:
                try:
                    self.kube.request(
                        "PATCH",
                        f"{leases}/{self.node_name}",
                        body={"spec": spec},
                        content_type=MERGE,
                    )
                except ApiError as error:
                    if error.status != 404:
                        raise
                    owner = {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.node_name,
                        "uid": node_uid,
                    }
                    metadata = {"name": self.node_name, "ownerReferences": [owner]}
                    lease = {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": metadata,
                        "spec": spec,
                    }
                    self.kube.request("POST", leases, body=lease)
                beats += 1
                if beats * RENEW_EVERY >= STATUS_EVERY:
                    beats = 0
                    node_uid = self.register()  # also recreates the node if it was deleted
            except TRANSIENT as error:
                log.warning("heartbeat: %s", error)

    # --- binding --------------------------------------------------------------------------------

    def _schedulable(self, pod: Json) -> bool:
        spec = pod["spec"]
        selector = spec.get("nodeSelector") or {}
        return (
            spec.get("schedulerName", "default-scheduler") == "default-scheduler"
            and not spec.get("nodeName")
            and not spec.get("schedulingGates")
            and not is_deleting(pod)
            and not is_terminal(pod)
            and all(self.labels.get(k) == v for k, v in selector.items())
        )

    def on_pending(self, kind: str, pod: Json) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            if kind == "DELETED" or not self._schedulable(pod):
                self.waiting.pop(uid, None)
                return
            if uid in self.pending:
                return
            if len(self.placed) >= MAX_PODS:
                self.waiting[uid] = pod  # in order; bound when one of the node's pods is over
                return
            self.waiting.pop(uid, None)
            self.pending.add(uid)
            self.placed.add(uid)
        self.executor.submit(self._bind, pod)

    def _make_room(self, uid: str) -> None:
        """One of the node's pods is over or gone: bind the pods that were waiting for room."""
        with self.lock:
            self.placed.discard(uid)
            room = MAX_PODS - len(self.placed)
            admitted = list(self.waiting.values())[: max(room, 0)]
        for pod in admitted:
            self.on_pending("ADDED", pod)

    def on_pending_list(self, pods: list[Json]) -> None:
        for pod in pods:
            self.on_pending("ADDED", pod)

    def _bind(self, pod: Json) -> None:
        metadata = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": metadata["name"], "uid": metadata["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/binding"
        try:
            self.kube.request("POST", path, body=binding)
            log.info("bound %s/%s", metadata["namespace"], metadata["name"])
        except ApiError as error:
            if error.status not in (404, 409):  # gone, or already bound
                log.warning("binding %s/%s: %s", metadata["namespace"], metadata["name"], error)
            self._make_room(metadata["uid"])  # if it is this node's after all, on_pod says so
        except TRANSIENT as error:  # the next list binds it
            log.warning("binding %s/%s: %s", metadata["namespace"], metadata["name"], error)
            self._make_room(metadata["uid"])
        finally:
            with self.lock:
                self.pending.discard(metadata["uid"])

    # --- the node's pods ----------------------------------------------------------------------

    def on_pod(self, kind: str, pod: Json) -> None:
        uid = pod["metadata"]["uid"]
        if kind == "DELETED" or is_terminal(pod):
            self._make_room(uid)
        with self.lock:
            if kind != "DELETED" and not is_terminal(pod):
                self.placed.add(uid)
            worker = self.workers.get(uid)
            if kind == "DELETED":
                self.workers.pop(uid, None)
                self.pending.discard(uid)
            elif worker is None and not is_terminal(pod):
                worker = self.workers[uid] = PodWorker(self.context, pod)
                worker.start()
                return
        if worker is not None:
            worker.vanish() if kind == "DELETED" else worker.update(pod)
        elif kind != "DELETED" and is_deleting(pod):
            self.final_delete(pod)  # finished before this agent started

    def on_pod_list(self, pods: list[Json]) -> None:
        present = {pod["metadata"]["uid"] for pod in pods}
        with self.lock:
            vanished = [self.workers.pop(uid) for uid in list(self.workers) if uid not in present]
            gone = self.placed - present - self.pending
        for uid in gone:
            self._make_room(uid)
        for worker in vanished:
            worker.vanish()
        for pod in pods:
            self.on_pod("MODIFIED", pod)

    def final_delete(self, pod: Json) -> None:
        """Delete a pod whose containers are all stopped: with grace 0 it leaves the API."""
        uid = pod["metadata"]["uid"]
        with self.lock:
            if uid in self.pending or self.stop.is_set():
                return
            self.pending.add(uid)
        self.executor.submit(self._delete, pod)

    def _delete(self, pod: Json) -> None:
        metadata = pod["metadata"]
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": metadata["uid"]},
        }
        try:
            self.kube.request(
                "DELETE",
                f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}",
                body=options,
            )
        except TRANSIENT as error:
            if not isinstance(error, ApiError) or error.status not in (404, 409):
                log.warning("deleting %s/%s: %s", metadata["namespace"], metadata["name"], error)
                with self.lock:
                    self.pending.discard(metadata["uid"])  # the next event or list tries again
        # Otherwise it stays pending until the DELETED event: one final delete is enough.
