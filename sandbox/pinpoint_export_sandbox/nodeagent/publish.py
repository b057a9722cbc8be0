"""Writes a pod's status to the API server, as the kubelet's status manager does: a strategic
merge patch, retried through server and transport errors, that fails once the pod is gone.

What the status says is computed by `status`; the pod worker serialises the writes.
"""

from __future__ import annotations

import logging
import threading

from .kube import STRATEGIC, TRANSIENT, ApiError, Json, Kube
from .lifecycle import INITIAL_BACKOFF, MAX_BACKOFF

log = logging.getLogger(__name__)


def publish_status(
    kube: Kube, pod_path: str, uid: str, status: Json, key: str, stop: threading.Event
) -> bool:
    """Patch the status of the pod at `pod_path`; True if the pod is gone (deleted, or replaced
    by one of the same name). Other failures are logged."""
    # metadata.uid makes the patch fail if the pod was replaced by one of the same name.
    body = {"metadata": {"uid": uid}, "status": status}
    delay = INITIAL_BACKOFF
    for _ in range(6):
        try:
            kube.request("PATCH", f"{pod_path}/status", body=body, content_type=STRATEGIC)
            return False
        except ApiError as error:
            if error.status in (404, 409):
                return True
            if error.status < 500:
                log.error("%s: status rejected: %s", key, error)
                return False
            log.warning("%s: writing status: %s", key, error)
        except TRANSIENT as error:
            log.warning("%s: writing status: %s", key, error)
        if stop.wait(delay):
            return False
        delay = min(delay * 2, MAX_BACKOFF)
    log.error("%s: giving up writing status", key)
    return False
