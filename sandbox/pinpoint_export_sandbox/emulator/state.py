"""The emulated service's operations on its apps, endpoints, segments and export jobs.

Every operation is a method named like botocore's client method (`create_export_job`) that takes
the parsed parameters and returns the output parameters, raising `ApiError` as the service would.
Nothing here does I/O or waits: export jobs are handed to `on_export`, which runs them, and
`listing_page_limit` may cap the pages of job listings (a fault). What the operations read and
write is held in `storage`.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable, Sequence
from typing import TypeVar

from botocore import xform_name

from pinpoint_export_sandbox.emulator.export import parse_s3_url
from pinpoint_export_sandbox.emulator.model import Params, bad_request, not_found
from pinpoint_export_sandbox.emulator.segments import (
    Definition,
    Predicate,
    compile_segment,
    everything,
)
from pinpoint_export_sandbox.emulator.storage import App, ExportJob, Segment, iso_now, new_id
from pinpoint_export_sandbox.emulator.synthetic import Endpoint

T = TypeVar("T")
Handler = Callable[[Params, str], Params]

DEFAULT_PAGE_SIZE = 20
MAX_BATCH = 100


def _ignore_job(job: ExportJob) -> None:
    pass


def _no_page_limit() -> int | None:
    return None


class Pinpoint:
    """The operations the emulator serves, by botocore operation name."""

    OPERATIONS = (
        "CreateApp",
        "GetApp",
        "GetApps",
        "DeleteApp",
        "UpdateEndpoint",
        "UpdateEndpointsBatch",
        "GetEndpoint",
        "DeleteEndpoint",
        "CreateSegment",
        "GetSegment",
        "UpdateSegment",
        "GetSegmentVersion",
        "CreateExportJob",
        "GetExportJob",
        "GetExportJobs",
        "GetSegmentExportJobs",
    )

    def __init__(
        self,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        on_export: Callable[[ExportJob], object] = _ignore_job,
        listing_page_limit: Callable[[], int | None] = _no_page_limit,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.on_export = on_export
        self.listing_page_limit = listing_page_limit
        self.apps: dict[str, App] = {}

    def handler(self, operation: str) -> Handler:
        if operation not in self.OPERATIONS:
            raise bad_request(f"The Pinpoint emulator does not implement {operation}")
        handler: Handler = getattr(self, xform_name(operation))
        return handler

    def app(self, application_id: str) -> App:
        app = self.apps.get(application_id)
        if app is None:
            raise not_found(f"Application {application_id} not found")
        return app

    def _arn(self, resource: str) -> str:
        return f"arn:aws:mobiletargeting:{self.region}:{self.account_id}:{resource}"

    # Apps

    def add_app(self, name: str, tags: dict[str, str], app_id: str | None = None) -> App:
        app_id = app_id or new_id()
        app = App(app_id, self._arn(f"apps/{app_id}"), name, tags)
        self.apps[app_id] = app
        return app

    def create_app(self, params: Params, request_id: str) -> Params:
        request = params["CreateApplicationRequest"]
        app = self.add_app(request["Name"], request.get("tags", {}))
        return {"ApplicationResponse": app.response()}

    def get_app(self, params: Params, request_id: str) -> Params:
        return {"ApplicationResponse": self.app(params["ApplicationId"]).response()}

    def get_apps(self, params: Params, request_id: str) -> Params:
        apps, token = _paginate(list(self.apps.values()), params, lambda a: a.seq, descending=False)
        return {"ApplicationsResponse": _page([a.response() for a in apps], token)}

    def delete_app(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        del self.apps[app.id]
        return {"ApplicationResponse": app.response()}

    # Endpoints

    def update_endpoint(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        app.endpoints.put(params["EndpointId"], params["EndpointRequest"])
        return _accepted(request_id)

    def update_endpoints_batch(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        items = params["EndpointBatchRequest"]["Item"]
        if len(items) > MAX_BATCH:
            raise bad_request(f"A batch holds at most {MAX_BATCH} endpoints, not {len(items)}")
        if any(not item.get("Id") for item in items):
            raise bad_request("Every endpoint in a batch needs an Id")
        for item in items:
            app.endpoints.put(item["Id"], item)
        return _accepted(request_id)

    def get_endpoint(self, params: Params, request_id: str) -> Params:
        endpoint = self._endpoint(params, self.app(params["ApplicationId"]).endpoints.get)
        return {"EndpointResponse": endpoint}

    def delete_endpoint(self, params: Params, request_id: str) -> Params:
        endpoint = self._endpoint(params, self.app(params["ApplicationId"]).endpoints.delete)
        return {"EndpointResponse": endpoint}

    @staticmethod
    def _endpoint(params: Params, lookup: Callable[[str], Endpoint | None]) -> Params:
        endpoint_id = params["EndpointId"]
        endpoint = lookup(endpoint_id)
        if endpoint is None:
            raise not_found(f"Endpoint {endpoint_id} not found")
        # Pinpoint buckets endpoints into 100 cohorts by a hash of the id.
        return {**endpoint, "CohortId": str(zlib.crc32(endpoint_id.encode()) % 100)}

    # Segments

    def segment(self, app: App, segment_id: str) -> Segment:
        segment = app.segments.get(segment_id)
        if segment is None:
            raise not_found(f"Segment {segment_id} not found")
        return segment

    def compile(self, app: App, definition: Definition) -> Predicate:
        return compile_segment(definition, lambda s, v: self.segment(app, s).version(v))

    def create_segment(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        request = params.get("WriteSegmentRequest", {})
        self.compile(app, request)  # rejects what the emulator cannot evaluate
        segment_id = new_id()
        arn = self._arn(f"apps/{app.id}/segments/{segment_id}")
        segment = Segment(segment_id, arn, app.id, iso_now())
        segment.versions.append(_segment_version(request, {"tags": {}}, 1))
        app.segments[segment_id] = segment
        return {"SegmentResponse": segment.response()}

    def update_segment(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        segment = self.segment(app, params["SegmentId"])
        request = params.get("WriteSegmentRequest", {})
        self.compile(app, request)
        version = _segment_version(request, segment.versions[-1], len(segment.versions) + 1)
        segment.versions.append(version)
        return {"SegmentResponse": segment.response()}

    def get_segment(self, params: Params, request_id: str) -> Params:
        segment = self.segment(self.app(params["ApplicationId"]), params["SegmentId"])
        return {"SegmentResponse": segment.response()}

    def get_segment_version(self, params: Params, request_id: str) -> Params:
        segment = self.segment(self.app(params["ApplicationId"]), params["SegmentId"])
        return {"SegmentResponse": segment.response(params["Version"])}

    # Export jobs

    def create_export_job(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        request = params["ExportJobRequest"]
        try:
            parse_s3_url(request["S3UrlPrefix"])
        except ValueError as error:
            raise bad_request(str(error)) from None
        predicate: Predicate = everything
        if "SegmentId" in request:
            segment = self.segment(app, request["SegmentId"])
            predicate = self.compile(app, segment.version(request.get("SegmentVersion")))
        elif "SegmentVersion" in request:
            raise bad_request("SegmentVersion requires SegmentId")
        job = ExportJob(new_id(), app.id, dict(request), app.endpoints.source(predicate))
        app.jobs.append(job)
        self.on_export(job)
        return {"ExportJobResponse": job.response()}

    def get_export_job(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        for job in reversed(app.jobs):  # the jobs clients ask about are mostly recent ones
            if job.id == params["JobId"]:
                return {"ExportJobResponse": job.response()}
        raise not_found(f"Export job {params['JobId']} not found")

    def get_export_jobs(self, params: Params, request_id: str) -> Params:
        return self._jobs(params, self.app(params["ApplicationId"]).jobs)

    def get_segment_export_jobs(self, params: Params, request_id: str) -> Params:
        app = self.app(params["ApplicationId"])
        segment = self.segment(app, params["SegmentId"])
        return self._jobs(
            params, [j for j in app.jobs if j.definition.get("SegmentId") == segment.id]
        )

    def _jobs(self, params: Params, jobs: list[ExportJob]) -> Params:
        # Newest first, like the real service.
        page, token = _paginate(
            jobs[::-1], params, lambda j: j.seq, descending=True, limit=self.listing_page_limit()
        )
        return {"ExportJobsResponse": _page([j.response() for j in page], token)}


def _accepted(request_id: str) -> Params:
    return {"MessageBody": {"Message": "Accepted", "RequestID": request_id}}


def _segment_version(request: Params, previous: Params, version: int) -> Params:
    """A new version: what the request sets, the previous version's values for the rest."""
    fields = ("Name", "Dimensions", "SegmentGroups", "tags")
    merged = {k: request.get(k, previous.get(k)) for k in fields}
    stored = {k: v for k, v in merged.items() if v is not None}
    return {**stored, "Version": version, "LastModifiedDate": iso_now()}


def _page(items: list[Params], token: str | None) -> Params:
    return {"Item": items, "NextToken": token} if token else {"Item": items}


def _paginate(
    items: Sequence[T],
    params: Params,
    key: Callable[[T], int],
    descending: bool,
    limit: int | None = None,
) -> tuple[list[T], str | None]:
    """A page of `items` (sorted by `key`), at most `limit` long, and the token for the next one.

    The token names the next item's key rather than an offset, so that items created or deleted
    while a client walks the pages neither repeat nor go missing.
    """
    size = _page_size(params.get("PageSize"))
    if limit is not None:
        size = min(size, limit)
    start = 0
    if params.get("Token"):
        try:
            after = int(params["Token"], 16)
        except ValueError:
            raise bad_request("Invalid pagination token") from None
        sign = -1 if descending else 1  # bisect wants ascending keys
        start = bisect.bisect_left(items, sign * after, key=lambda item: sign * key(item))
    page = list(items[start : start + size])
    rest = items[start + size : start + size + 1]
    return page, (format(key(rest[0]), "x") if rest else None)


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise bad_request(f"Invalid page-size {value!r}: 1 to 1000")
    return int(value)
