"""Failed calls as values: what went wrong, in a word and a sentence, and whether to retry.

The one rule for HTTP statuses lives here: 429 and 5xx are transient (the service is busy or
broken now; a retry with backoff may succeed), every other failure is the caller's and a retry
cannot fix it. Pinpoint, S3 and Kubernetes failures all follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the copier uses this module too, without loading the Kubernetes client
    from kubernetes import client

MAX_MESSAGE = 1024  # status messages and Events stay readable, and bounded


@dataclass(frozen=True)
class CloudError:
    """A call that failed. Transient ones are retried with backoff; the others end the run.

    `reason` is CamelCase (a condition reason, an Event reason); `message` says what to do."""

    reason: str
    message: str
    transient: bool


def is_transient_status(status: int) -> bool:
    """Throttled (429) or a server error (5xx): worth retrying after a backoff."""
    return status == 429 or status >= 500


def kubernetes_error(error: client.ApiException, operation: str) -> CloudError:
    """An API server refusal as a CloudError, by the rule above."""
    status = int(error.status or 0)
    message = f"{operation}: Kubernetes API {status} {error.reason}: {error.body}"
    if is_transient_status(status):
        return CloudError("KubernetesUnavailable", message[:MAX_MESSAGE], transient=True)
    return CloudError("KubernetesRejected", message[:MAX_MESSAGE], transient=False)
