"""One step of an export's run as data: what is observed, what to do next, what a decision gives.

The reconciler fills these from the adapters and the object; `state` decides on them. Kept
apart from the decision so that the adapters, which produce observations, need not import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pinpoint_export_operator import api
from pinpoint_export_operator.copier.manifest import CopierSummary
from pinpoint_export_operator.exports.status import ExportStatus
from pinpoint_export_operator.runtime import timestamps
from pinpoint_export_operator.runtime.errors import CloudError
from pinpoint_export_operator.runtime.events import Event

Spec = dict[str, Any]


@dataclass(frozen=True)
class Export:
    """What the reconciler knows of the object, besides its status."""

    namespace: str
    name: str
    uid: str
    creation_timestamp: str
    generation: int | None
    spec: Spec

    @property
    def run_id(self) -> str:
        return api.run_id(timestamps.parse(self.creation_timestamp), self.uid)

    @property
    def s3_url(self) -> str:
        return api.run_prefix(self.spec["s3UrlPrefix"], self.namespace, self.name, self.run_id)

    @property
    def output_path(self) -> str:
        """The run directory, relative to the root of the claim."""
        base = self.spec["destination"].get("path", "").strip("/")
        return f"{base}/{self.run_id}" if base else self.run_id


# What the reconciler saw.


@dataclass(frozen=True)
class ExportJob:
    """Pinpoint's ExportJobResponse, reduced to what the status shows."""

    id: str
    job_status: str
    completed_pieces: int | None = None
    total_pieces: int | None = None
    failed_pieces: int | None = None
    total_processed: int | None = None
    total_failures: int | None = None
    failures: tuple[str, ...] = ()
    creation_date: str | None = None
    completion_date: str | None = None
    adopted: bool = False  # found by its S3 prefix rather than created now


@dataclass(frozen=True)
class CopyJob:
    name: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    finished: Literal["Complete", "Failed"] | None = None
    failure_message: str = ""
    summary: CopierSummary | None = None  # the copier's termination message
    created: bool = False
    ready: int = 0
    # Why its pod does not run yet (scheduling, image pull, config); None: not looked at.
    waiting: str | None = ""
    deleting: bool = False  # its deletionTimestamp is set
    finalizer: bool = False  # it carries api.COPY_JOB_FINALIZER
    # It finished, and no pod of it is left to tell what the copier said (deleted with the
    # Job: the TTL controller deletes in the foreground).
    pods_gone: bool = False
    creation_timestamp: str | None = None


@dataclass(frozen=True)
class CopyJobMissing:
    name: str


@dataclass(frozen=True)
class ClaimHeld:
    """Another process claimed the create; its call may still be running."""

    holder: str
    seconds: float


Observation = ExportJob | CloudError | CopyJob | CopyJobMissing | ClaimHeld


# What to do next.


@dataclass(frozen=True)
class Caller:
    """The process that asks what to do next, and what only it knows."""

    identity: str  # this operator process: status.exportJob.requestedBy when it claims a create
    now: str
    # No create under the current claim can have reached Pinpoint: the run was just started
    # here, or Pinpoint refused the last attempt outright (a 4xx or 429, an unreachable host).
    nothing_created: bool = False
    # The last create got no answer and may still be running in Pinpoint until then (one
    # call's time again after it failed): a search before then could miss its job.
    create_running_until: str | None = None


@dataclass(frozen=True)
class EnsureExportJob:
    """Claim the create (a status write preconditioned on resourceVersion, so that of two
    replicas one goes on), then adopt the Pinpoint job whose S3 prefix is this run's, else
    create it. `search` is False when no earlier create can have reached Pinpoint: a search
    lists the application's export jobs, which is wasted when nothing can be found."""

    s3_url: str
    search: bool


@dataclass(frozen=True)
class WaitForClaim:
    """Another process claimed the create moments ago and may still be inside the call: wait
    until its call must have ended, then look (its job, if it made one, is then listed)."""

    holder: str
    seconds: float


@dataclass(frozen=True)
class PollExportJob:
    job_id: str
    created: str | None = None  # Pinpoint's CreationDate of the job, if it said


@dataclass(frozen=True)
class EnsureCopyJob:
    exported_endpoints: int = 0  # Pinpoint's totalProcessed


@dataclass(frozen=True)
class ObserveCopyJob:
    name: str


Action = EnsureExportJob | WaitForClaim | PollExportJob | EnsureCopyJob | ObserveCopyJob | None


# What a decision gives.


@dataclass
class Outcome:
    status: ExportStatus
    events: list[Event] = field(default_factory=list)
    again: bool = False  # act again at once (the next step is ready), not after the interval
    retry: bool = False  # a transient error: come back after a backoff
    delay: float | None = None  # come back after this many seconds, not the poll interval
    wait: float | None = None  # at most this long, not the poll interval, unless an event wakes
    # The copy Job whose finalizer goes once this status is written: it is being deleted, and
    # nothing more will be read from it.
    release: str | None = None
