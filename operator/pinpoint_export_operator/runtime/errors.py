"""Failed calls as values: what went wrong, in a word and a sentence, and whether to retry.

The one rule for HTTP statuses lives here: 429 and 5xx are transient (the service is busy or
broken now; a retry with backoff may succeed), every other failure is the caller's and a retry
cannot fix it. Pinpoint, S3 and Kubernetes failures all follow it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import urllib3

if TYPE_CHECKING:  # the copier uses this module too, without loading the Kubernetes client
    from kubernetes import client

# Status messages and Events stay readable, and far below what the API server refuses; the
# operator's log keeps the whole text.
MAX_MESSAGE = 400


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    """`message`, cut to `limit` characters with a visible mark where it was cut."""
    return message if len(message) <= limit else message[: limit - 15] + " … (truncated)"


@dataclass(frozen=True)
class CloudError:
    """A call that failed. Transient ones are retried with backoff; the others end the run.

    `reason` is CamelCase (a condition reason, an Event reason); `message` says what to do.
    `ambiguous`: the call may have taken effect although it failed (its answer was lost).
    `unfinished`: more than that, it may still be running where it was sent (no answer in
    time, or a gateway's 504), so what it does may only show later."""

    reason: str
    message: str
    transient: bool
    ambiguous: bool = False
    unfinished: bool = False


def is_transient_status(status: int) -> bool:
    """Throttled (429) or a server error (5xx): worth retrying after a backoff."""
    return status == 429 or status >= 500


def kubernetes_error(
    error: client.ApiException | urllib3.exceptions.HTTPError, operation: str
) -> CloudError:
    """An API server refusal as a CloudError, by the rule above; a request that got no answer
    (refused, reset, timed out: urllib3's errors) is transient, as a 5xx is."""
    if isinstance(error, urllib3.exceptions.HTTPError):
        message = f"{operation}: no answer from the Kubernetes API ({type(error).__name__})"
        return CloudError("KubernetesUnavailable", bounded(message), transient=True)
    status = int(error.status or 0)
    message = bounded(f"{operation}: Kubernetes API {status} {error.reason}: {_detail(error)}")
    if is_transient_status(status):
        return CloudError("KubernetesUnavailable", message, transient=True)
    return CloudError("KubernetesRejected", message, transient=False)


def _detail(error: client.ApiException) -> str:
    """The API server's own message (a metav1.Status), else the raw body."""
    try:
        return str(json.loads(error.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(error.body)
