"""The claim on a run's CreateExportJob, and how far back the search for its job looks.

Exactly one Pinpoint job per run: a process creates only under a claim (who, when) written to
the status, and only while that claim outlives the call; another replica waits until a claim
is older than CLAIM_SECONDS, then searches for the job before creating one.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from pinpoint_export_operator.exports.status import ExportStatus
from pinpoint_export_operator.exports.steps import Caller, Export
from pinpoint_export_operator.runtime import timestamps

# How long a claim to create the Pinpoint job holds: longer than one CreateExportJob call can
# last (the client's connect and read timeouts, one attempt), so that a claim older than this
# means its call has ended, and its job, if any, is listed. A create starts only while its
# claim holds for a whole call (`claim_holds`). Twice that and more: a claim may wait 80 s for
# an AWS place without being written again (at 2,000 exports created at once, with 60 s, most
# creates were claimed two or three times while they queued); a replica that died holding a
# claim is taken over after 2 minutes.
CLAIM_SECONDS = 120.0


def claim(status: ExportStatus, caller: Caller) -> ExportStatus:
    """The status that claims the next CreateExportJob for `caller`."""
    new = copy.deepcopy(status)
    new["exportJob"] = {
        **status.get("exportJob", {}),
        "requestedAt": caller.now,
        "requestedBy": caller.identity,
    }
    return new


def claim_holds(status: ExportStatus, now: str, seconds: float) -> bool:
    """Whether the claim in `status` still holds `seconds` from `now`. The Secret's read, the
    search and the wait for a free thread come between a claim and its create: a create begun
    on an older claim could still run when another replica takes the claim over."""
    requested = status.get("exportJob", {}).get("requestedAt")
    if not requested:
        return False
    age = (timestamps.parse(now) - timestamps.parse(requested)).total_seconds()
    return age + seconds <= CLAIM_SECONDS


# Clocks of the cluster and of AWS may disagree: a run's job may carry a CreationDate a little
# before the run's startTime, and the search for it must not stop short of it.
CLOCK_SKEW = timedelta(minutes=5)


def search_cutoff(export: Export, status: ExportStatus) -> datetime:
    """The search for a run's job stops at jobs older than this: the run's start, else (a run
    recorded by an earlier version, without one) the export's creation, less clock skew."""
    started = status.get("startTime") or export.creation_timestamp
    return timestamps.parse(started) - CLOCK_SKEW
