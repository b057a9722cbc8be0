"""The emulated service's state and operations: apps, endpoints, segments and export jobs.

Every operation is a method named like botocore's client method (`create_export_job`) that takes
the parsed parameters and returns the output parameters, raising `ApiError` as the service would.
Nothing here does I/O or waits: export jobs are handed to `on_export`, which runs them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore import xform_name

from pinpoint_export_sandbox.emulator.export import parse_s3_url
from pinpoint_export_sandbox.emulator.model import (
    Params,
    bad_request,
    enum_values,
    iso8601,
    not_found,
)
from pinpoint_export_sandbox.emulator.segments import (
    Definition,
    Predicate,
    compile_segment,
    everything,
)
from pinpoint_export_sandbox.emulator.synthetic import Endpoint, SyntheticBlock

T = TypeVar("T")
Handler = Callable[[Params, str], Params]

JOB_STATUSES = enum_values("JobStatus")
# Pinpoint's export job lifecycle; any live status may turn to FAILING.
_NEXT = {
    "CREATED": "PREPARING_FOR_INITIALIZATION",
    "PREPARING_FOR_INITIALIZATION": "INITIALIZING",
    "INITIALIZING": "PROCESSING",
    "PROCESSING": "COMPLETING",
    "COMPLETING": "COMPLETED",
    "FAILING": "FAILED",
}
TERMINAL = frozenset({"COMPLETED", "FAILED"})
# The export's fields, in the order the real service writes them.
EXPORT_FIELDS = (
    "ChannelType",
    "Address",
    "EndpointStatus",
    "OptOut",
    "EffectiveDate",
    "User",
    "ApplicationId",
    "Id",
    "CreationDate",
    "Attributes",
    "Demographic",
    "Location",
    "Metrics",
)
DEFAULT_PAGE_SIZE = 20
MAX_BATCH = 100
_sequence = itertools.count(1)  # orders apps and jobs for pagination tokens


def iso_now() -> str:
    return iso8601(dt.datetime.now(dt.UTC))


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class EndpointSource:
    """A frozen view of an app's endpoints (as of job creation) filtered by a segment."""

    blocks: tuple[SyntheticBlock, ...]
    overrides: Mapping[str, Endpoint | None]  # explicit endpoints; None marks a deleted one
    predicate: Predicate = everything

    def _all(self) -> Iterator[Endpoint]:
        overrides = self.overrides
        for block in self.blocks:
            if not overrides:
                yield from block
                continue
            for n, endpoint_id in enumerate(block.ids(), block.start):
                if endpoint_id not in overrides:
                    yield block.endpoint(n)
        yield from (e for e in overrides.values() if e is not None)

    def __iter__(self) -> Iterator[Endpoint]:
        if self.predicate is everything:
            return self._all()
        return filter(self.predicate, self._all())

    def count(self) -> int:
        if self.predicate is not everything:
            return sum(1 for _ in self)
        shadowed = sum(
            1 for i in self.overrides if any(b.index(i) is not None for b in self.blocks)
        )
        live = sum(1 for e in self.overrides.values() if e is not None)
        return sum(b.count for b in self.blocks) - shadowed + live


class Endpoints:
    """An app's endpoints: seeded blocks, overlaid by endpoints written through the API."""

    def __init__(self, application_id: str) -> None:
        self.application_id = application_id
        self.blocks: list[SyntheticBlock] = []
        self.overrides: dict[str, Endpoint | None] = {}

    def seed(self, count: int, seed: int, prefix: str) -> SyntheticBlock:
        # Numbering continues across seeds, so repeated seeding never reuses an id.
        start = sum(b.count for b in self.blocks)
        block = SyntheticBlock(self.application_id, seed, start, count, prefix)
        self.blocks.append(block)
        return block

    def get(self, endpoint_id: str) -> Endpoint | None:
        if endpoint_id in self.overrides:
            return self.overrides[endpoint_id]
        for block in self.blocks:
            n = block.index(endpoint_id)
            if n is not None:
                return block.endpoint(n)
        return None

    def put(self, endpoint_id: str, changes: Params) -> None:
        """Create or update an endpoint; nested maps merge key by key, as UpdateEndpoint does."""
        now = iso_now()
        current = self.get(endpoint_id) or {
            "EndpointStatus": "ACTIVE",
            "OptOut": "NONE",
            "EffectiveDate": now,
            "User": {},
            "CreationDate": now,
        }
        merged = _merge(current, {k: v for k, v in changes.items() if k in EXPORT_FIELDS})
        merged.update(ApplicationId=self.application_id, Id=endpoint_id)
        # Stored endpoints are never mutated afterwards: export snapshots share them.
        self.overrides[endpoint_id] = {k: merged[k] for k in EXPORT_FIELDS if k in merged}

    def delete(self, endpoint_id: str) -> Endpoint | None:
        endpoint = self.get(endpoint_id)
        if endpoint is not None:
            self.overrides[endpoint_id] = None
        return endpoint

    def source(self, predicate: Predicate = everything) -> EndpointSource:
        return EndpointSource(tuple(self.blocks), dict(self.overrides), predicate)


def _merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in new.items():
        previous = merged.get(key)
        both_maps = isinstance(value, dict) and isinstance(previous, dict)
        merged[key] = _merge(previous, value) if both_maps else value  # type: ignore[arg-type]
    return merged


@dataclass
class Segment:
    id: str
    arn: str
    application_id: str
    creation_date: str
    versions: list[Params] = field(default_factory=list)  # version n is versions[n - 1]

    def version(self, version: int | str | None) -> Params:
        if version is None:
            return self.versions[-1]
        try:
            n = int(version)
        except ValueError:
            raise bad_request(f"Invalid segment version {version!r}") from None
        if not 1 <= n <= len(self.versions):
            raise not_found(f"Segment {self.id} has no version {n}")
        return self.versions[n - 1]

    def response(self, version: int | str | None = None) -> Params:
        return {
            "ApplicationId": self.application_id,
            "Arn": self.arn,
            "CreationDate": self.creation_date,
            "Id": self.id,
            "SegmentType": "DIMENSIONAL",
            **self.version(version),
        }


@dataclass
class ExportJob:
    id: str
    application_id: str
    definition: Params
    source: EndpointSource
    creation_date: str = field(default_factory=iso_now)
    seq: int = field(default_factory=lambda: next(_sequence))
    status: str = "CREATED"
    total_pieces: int = 0
    completed_pieces: int = 0
    failed_pieces: int = 0
    total_processed: int = 0
    total_failures: int = 0
    failures: list[str] = field(default_factory=list)
    completion_date: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def advance(self) -> str:
        """Move to the next status: on along the happy path, or from FAILING to FAILED."""
        if self.status not in _NEXT:
            raise ValueError(f"export job {self.id} already ended {self.status}")
        return self._enter(_NEXT[self.status])

    def fail(self, reason: str) -> None:
        """Record why the job fails and move to FAILING (the runner then ends it FAILED)."""
        if self.status not in TERMINAL and self.status != "FAILING":
            self.failures.append(reason)
            self._enter("FAILING")

    def _enter(self, status: str) -> str:
        self.status = status
        if status in TERMINAL:
            self.completion_date = iso_now()
        return status

    def response(self) -> Params:
        response: Params = {
            "ApplicationId": self.application_id,
            "CompletedPieces": self.completed_pieces,
            "CreationDate": self.creation_date,
            "Definition": dict(self.definition),
            "FailedPieces": self.failed_pieces,
            "Id": self.id,
            "JobStatus": self.status,
            "TotalFailures": self.total_failures,
            "TotalPieces": self.total_pieces,
            "TotalProcessed": self.total_processed,
            "Type": "EXPORT",
        }
        if self.failures:
            response["Failures"] = list(self.failures)
        if self.completion_date is not None:
            response["CompletionDate"] = self.completion_date
        return response


@dataclass
class App:
    id: str
    arn: str
    name: str
    tags: dict[str, str]
    creation_date: str = field(default_factory=iso_now)
    seq: int = field(default_factory=lambda: next(_sequence))
    endpoints: Endpoints = field(init=False)
    segments: dict[str, Segment] = field(default_factory=dict)
    jobs: list[ExportJob] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.endpoints = Endpoints(self.id)

    def response(self) -> Params:
        return {
            "Arn": self.arn,
            "Id": self.id,
            "Name": self.name,
            "tags": dict(self.tags),
            "CreationDate": self.creation_date,
        }


def _ignore_job(job: ExportJob) -> None:
    pass


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
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.on_export = on_export
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
        for job in app.jobs:
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

    @staticmethod
    def _jobs(params: Params, jobs: list[ExportJob]) -> Params:
        # Newest first, like the real service.
        page, token = _paginate(jobs[::-1], params, lambda j: j.seq, descending=True)
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
    items: Sequence[T], params: Params, key: Callable[[T], int], descending: bool
) -> tuple[list[T], str | None]:
    """A page of `items` (sorted by `key`) and the token for the next one.

    The token names the next item's key rather than an offset, so that items created or deleted
    while a client walks the pages neither repeat nor go missing.
    """
    size = _page_size(params.get("PageSize"))
    start = 0
    if params.get("Token"):
        try:
            after = int(params["Token"], 16)
        except ValueError:
            raise bad_request("Invalid pagination token") from None

        def reached(item: T) -> bool:
            return key(item) <= after if descending else key(item) >= after

        start = next((i for i, item in enumerate(items) if reached(item)), len(items))
    page = list(items[start : start + size])
    rest = items[start + size : start + size + 1]
    return page, (format(key(rest[0]), "x") if rest else None)


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise bad_request(f"Invalid page-size {value!r}: 1 to 1000")
    return int(value)
