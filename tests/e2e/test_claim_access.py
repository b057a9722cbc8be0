"""The copier as a non-root container (the image `make image` built, uid 65532) on a claim
whose directory is root's with mode 0755: a static hostPath PV, as many NFS and hostPath volumes
are, to which fsGroup does nothing. The copy fails at once (no retry, nothing listed or
written) with a message that names the fix; after the fix, a new export copies."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from pinpoint_export_sandbox import storage
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin

from .conftest import Exports

pytestmark = pytest.mark.e2e


@pytest.fixture
def root_owned_claim(api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """Claim `nfs-like`, bound to a static hostPath PV whose directory is root's, mode 0755."""
    directory = tmp_path / "nfs-like"
    directory.mkdir()
    directory.chmod(0o755)
    core = client.CoreV1Api(api)
    name = f"nfs-like-{uuid.uuid4().hex[:8]}"
    spec = {"accessModes": ["ReadWriteOnce"], "storageClassName": ""}
    core.create_persistent_volume(
        {  # type: ignore[arg-type]
            "metadata": {"name": name},
            "spec": {
                **spec,
                "capacity": {"storage": "1Gi"},
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(directory), "type": "Directory"},
                "claimRef": {"namespace": namespace, "name": "nfs-like"},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {  # type: ignore[arg-type]
            "metadata": {"name": "nfs-like"},
            "spec": {**spec, "volumeName": name, "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    storage.claim_directory(api, namespace, "nfs-like")
    yield directory
    core.delete_persistent_volume(name)


def test_a_copier_on_a_root_owned_0755_claim_fails_at_once_naming_the_fix(
    exports: Exports, emulator: EmulatorAdmin, root_owned_claim: Path
) -> None:
    emulator.seed(exports.app, 50)
    destination = {"claimName": "nfs-like", "path": "nightly"}
    exports.apply("refused", destination=destination)
    failed = exports.wait("refused")
    status = failed["status"]
    assert status["phase"] == "Failed", status
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "CopyFailed", stalled
    assert stalled["message"] == (
        "copy Job refused-copy failed: PodFailurePolicy; copier said: DestinationNotWritable "
        "(exit 3): /data is not writable by uid 65532 (gid 65532, groups 65532): owned by 0:0, "
        "mode 0755. On the volume, chown it to 65532:65532 (or chgrp 65532 and chmod g+rwx), or "
        "use storage that applies the pod's fsGroup"
    )
    assert status["copyJob"]["failed"] == 1, status["copyJob"]  # at once: no retry spent
    assert list(root_owned_claim.iterdir()) == []
    info = root_owned_claim.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o755)

    # The fix the message names, on the volume; a new export (a spec is immutable) then copies.
    os.chown(root_owned_claim, 65532, 65532)
    exports.apply("fixed", destination=destination)
    fixed = exports.wait("fixed")
    assert fixed["status"]["phase"] == "Succeeded", fixed["status"]
    assert (root_owned_claim / "nightly" / "latest" / "_SUCCESS").exists()
