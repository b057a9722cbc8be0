"""The shape of a PinpointExport's status, as the CRD declares it (crds/pinpointexports.yaml).

Every key is optional (`total=False`): an object's status fills in as its run goes on, and
the merge patches that write it may carry a subset.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from pinpoint_export_operator.runtime.conditions import Condition

Phase = Literal["Pending", "Exporting", "Copying", "Succeeded", "Failed"]


class ExportJobStatus(TypedDict, total=False):
    """Pinpoint's job, in Pinpoint's own words (`jobStatus` is its JobStatus)."""

    id: str
    jobStatus: str
    s3Url: str  # the run's prefix, recorded before the job is created
    # The claim of the latest CreateExportJob, written (preconditioned) before the call.
    requestedAt: str
    requestedBy: str
    completedPieces: int
    totalPieces: int
    failedPieces: int
    totalProcessed: int
    totalFailures: int
    failures: list[str]
    creationDate: str
    completionDate: str


class CopyJobStatus(TypedDict, total=False):
    name: str
    active: int
    succeeded: int
    failed: int


class OutputStatus(TypedDict, total=False):
    claimName: str
    path: str  # the run directory, relative to the claim's root
    files: int
    bytes: int
    lines: int  # the copier's count of lines in the .gz pieces: endpoints, one per line
    manifest: str


class ExportStatus(TypedDict, total=False):
    phase: Phase
    progress: str  # "completed/total" pieces, for the printer column
    runId: str
    startTime: str
    completionTime: str
    observedGeneration: int | None
    message: str
    exportJob: ExportJobStatus
    copyJob: CopyJobStatus
    output: OutputStatus
    conditions: list[Condition]
