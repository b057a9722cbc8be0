"""What the emulated service stores: apps, their endpoints, segment versions and export jobs.

An app's endpoints are seeded synthetic blocks overlaid by the endpoints written through the API;
an export job reads the frozen `EndpointSource` taken when it was created, and moves through
Pinpoint's job statuses. The operations that read and write these records are in `state`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pinpoint_export_sandbox.emulator.model import (
    Params,
    bad_request,
    enum_values,
    iso8601,
    not_found,
)
from pinpoint_export_sandbox.emulator.segments import Predicate, everything
from pinpoint_export_sandbox.emulator.synthetic import Endpoint, SyntheticBlock

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
