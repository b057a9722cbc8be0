"""The Pinpoint adapter: the export calls the operator makes, and nothing else.

Blocking (boto3); the reconciler runs these through `AwsCalls`. Responses become `ExportJob`
values; anything unexpected raises, and `runtime.aws.classify` turns it into a status condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError

from pinpoint_export_operator.exports.steps import ExportJob
from pinpoint_export_operator.runtime import metrics, timestamps

PAGE_SIZE = "100"  # Pinpoint's page-size is a string in its API


@dataclass
class SearchCursor:
    """Where a search for a run's job stands. A page that fails (throttled, say) is asked for
    again on the next attempt, not the whole history from page 1."""

    token: str | None = None
    pages: int = 0  # pages read, for the log


def parse_job(response: dict[str, Any], adopted: bool = False) -> ExportJob:
    """ExportJobResponse → ExportJob; a missing Id or JobStatus is an unexpected response."""
    return ExportJob(
        id=response["Id"],
        job_status=response["JobStatus"],
        completed_pieces=response.get("CompletedPieces"),
        total_pieces=response.get("TotalPieces"),
        failed_pieces=response.get("FailedPieces"),
        total_processed=response.get("TotalProcessed"),
        total_failures=response.get("TotalFailures"),
        failures=tuple(str(f) for f in response.get("Failures") or ()),
        creation_date=response.get("CreationDate"),
        completion_date=response.get("CompletionDate"),
        adopted=adopted,
    )


class Pinpoint:
    def __init__(self, client: Any) -> None:
        self._client = client

    def _call(self, operation: str, **request: Any) -> Any:
        """One call to Pinpoint, measured (`pinpoint_export_call_*`)."""
        with metrics.timed_call("pinpoint", operation, _error_code):
            return getattr(self._client, xform_name(operation))(**request)

    def find_export_job(
        self,
        application_id: str,
        segment_id: str | None,
        s3_url: str,
        created_after: datetime,
        cursor: SearchCursor,
    ) -> ExportJob | None:
        """The job an earlier attempt created for this run, found by its unique S3 prefix.

        Pinpoint lists jobs newest first, so the search ends at the first page whose jobs are
        all older than `created_after` (the run's start, less clock skew): a run's job is never
        older than the run, and an application's long history is not read to its end."""
        while True:
            items, cursor.token = self._page(application_id, segment_id, cursor.token)
            cursor.pages += 1
            for item in items:
                if item.get("Definition", {}).get("S3UrlPrefix") == s3_url:
                    cursor.token = None
                    return parse_job(item, adopted=True)
            # An empty page says nothing of age: only a token's absence ends the list there.
            dates = [item.get("CreationDate") for item in items]
            if not cursor.token or (dates and all(created_before(d, created_after) for d in dates)):
                cursor.token = None  # searched to the end: the next search starts afresh
                return None

    def export_jobs_page(
        self, application_id: str, token: str | None
    ) -> tuple[list[ExportJob], str | None]:
        """A page of an application's export jobs, newest first, and the next page's token
        (None: the last page)."""
        items, token = self._page(application_id, None, token)
        return [parse_job(item) for item in items], token

    def _page(
        self, application_id: str, segment_id: str | None, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of an application's export jobs (of one segment's, with `segment_id`),
        newest first, and the token of the next page (None: the last)."""
        kwargs: dict[str, Any] = {"ApplicationId": application_id, "PageSize": PAGE_SIZE}
        if token:
            kwargs["Token"] = token
        if segment_id:
            page = self._call("GetSegmentExportJobs", SegmentId=segment_id, **kwargs)
        else:
            page = self._call("GetExportJobs", **kwargs)
        jobs = page["ExportJobsResponse"]
        return list(jobs.get("Item", [])), jobs.get("NextToken")

    def create_export_job(
        self,
        application_id: str,
        role_arn: str,
        s3_url: str,
        segment_id: str | None,
        segment_version: int | None,
    ) -> ExportJob:
        request: dict[str, Any] = {"RoleArn": role_arn, "S3UrlPrefix": s3_url}
        if segment_id:
            request["SegmentId"] = segment_id
        if segment_version:
            request["SegmentVersion"] = segment_version
        response = self._call(
            "CreateExportJob", ApplicationId=application_id, ExportJobRequest=request
        )
        return parse_job(response["ExportJobResponse"])

    def get_export_job(self, application_id: str, job_id: str) -> ExportJob:
        response = self._call("GetExportJob", ApplicationId=application_id, JobId=job_id)
        return parse_job(response["ExportJobResponse"])


def _error_code(error: Exception) -> str:
    """Pinpoint's error code, or the kind of failure when it did not answer."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


def job_moment(date: Any) -> datetime | None:
    """A job's CreationDate or CompletionDate as a time; None when Pinpoint does not say, or
    not in a form understood."""
    if not isinstance(date, str):
        return None
    try:
        return timestamps.parse(date)
    except ValueError:
        return None


def created_before(creation_date: Any, moment: datetime) -> bool:
    """Whether Pinpoint created a job (its CreationDate) before `moment`; False when it does
    not say."""
    created = job_moment(creation_date)
    return created is not None and created < moment
