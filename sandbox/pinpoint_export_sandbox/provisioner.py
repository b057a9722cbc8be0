"""The sandbox's volume provisioner: every claim of its StorageClass gets a host directory.

It plays the part of a CSI provisioner such as local-path-provisioner: it watches pending
PersistentVolumeClaims and creates, for each, a PersistentVolume pre-bound to it whose
`hostPath` is a new directory; the real PV controller then binds the pair.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from pinpoint_export_sandbox import storage

log = logging.getLogger(__name__)
PROVISIONER = "sandbox.pinpoint.exports.dev/hostpath"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--volumes-dir", type=Path, required=True)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with storage.api_client(args.kubeconfig) as api:
        run(client.CoreV1Api(api), args.volumes_dir.resolve())
    return 0


def volume_for(claim: Any, volumes_dir: Path) -> dict[str, Any] | None:
    """The PV to create for `claim`, or None if it is not ours to provision (pure)."""
    meta, spec = claim.metadata, claim.spec
    if (
        spec.storage_class_name != storage.STORAGE_CLASS
        or spec.volume_name
        or claim.status.phase != "Pending"
        or meta.deletion_timestamp
    ):
        return None
    host_dir = volumes_dir / f"{meta.namespace}-{meta.name}-{meta.uid[:8]}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta.uid}",
            "annotations": {PROVISIONED_BY: PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": spec.resources.requests["storage"]},
            "accessModes": spec.access_modes,
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": storage.STORAGE_CLASS,
            "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"},
            "claimRef": {"namespace": meta.namespace, "name": meta.name, "uid": meta.uid},
        },
    }


# A watch the API server ends with an error (410 Gone: the version expired; 504: "Too large
# resource version", its watch cache lagging under load) is started again from a new listing.
RESTARTED_WATCH = (410, 504)


def run(core: client.CoreV1Api, volumes_dir: Path) -> None:
    while True:
        stream = watch.Watch().stream(
            core.list_persistent_volume_claim_for_all_namespaces, timeout_seconds=300
        )
        try:
            for event in stream:
                provision(core, event["object"], volumes_dir)
        except client.ApiException as error:
            if error.status not in RESTARTED_WATCH:
                raise
            log.warning("watch ended (%s %s): listing again", error.status, error.reason)


def provision(core: client.CoreV1Api, claim: Any, volumes_dir: Path) -> None:
    volume = volume_for(claim, volumes_dir)
    if volume is None:
        return
    Path(volume["spec"]["hostPath"]["path"]).mkdir(parents=True, exist_ok=True)
    try:
        core.create_persistent_volume(volume)  # type: ignore[arg-type]
    except client.ApiException as error:
        if error.status != 409:
            raise
    log.info("provisioned %s", volume["metadata"]["name"])
