"""The Pinpoint adapter: the three export calls the operator makes, and nothing else.

Blocking (boto3); the reconciler runs these through `AwsCalls`. Responses become `ExportJob`
values; anything unexpected raises, and `runtime.aws.classify` turns it into a status condition.
"""

from __future__ import annotations

from typing import Any

from pinpoint_export_operator.exports.state import ExportJob

PAGE_SIZE = "100"  # Pinpoint's page-size is a string in its API


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

    def find_export_job(
        self, application_id: str, segment_id: str | None, s3_url: str
    ) -> ExportJob | None:
        """The job an earlier attempt created for this run, found by its unique S3 prefix."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ApplicationId": application_id, "PageSize": PAGE_SIZE}
            if token:
                kwargs["Token"] = token
            if segment_id:
                page = self._client.get_segment_export_jobs(SegmentId=segment_id, **kwargs)
            else:
                page = self._client.get_export_jobs(**kwargs)
            jobs = page["ExportJobsResponse"]
            for item in jobs.get("Item", []):
                if item.get("Definition", {}).get("S3UrlPrefix") == s3_url:
                    return parse_job(item, adopted=True)
            token = jobs.get("NextToken")
            if not token:
                return None

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
        response = self._client.create_export_job(
            ApplicationId=application_id, ExportJobRequest=request
        )
        return parse_job(response["ExportJobResponse"])

    def get_export_job(self, application_id: str, job_id: str) -> ExportJob:
        response = self._client.get_export_job(ApplicationId=application_id, JobId=job_id)
        return parse_job(response["ExportJobResponse"])
