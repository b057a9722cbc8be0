"""An in-memory bucket answering the two S3 calls the copier makes (no server)."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "bucket"
PREFIX = "exports/ns/nightly/run-1/"
SOURCE = f"s3://{BUCKET}/{PREFIX}"
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def client_error(code: str, status: int, operation: str = "GetObject") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


class FakeS3:
    """`objects` by key; GETs of a key in `failures` raise its error, of a key in
    `short_bodies` end a byte early; `calls` records each call."""

    def __init__(self, pieces: int = 0) -> None:
        self.objects: dict[str, bytes] = {}
        self.failures: dict[str, Exception] = {}
        self.short_bodies: set[str] = set()
        self.calls: list[str] = []
        for number in range(pieces):
            self.put(f"{PREFIX}{number}.gz", piece(number))

    @property
    def client(self) -> S3Client:
        return cast("S3Client", self)

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def get_paginator(self, operation: str) -> FakeS3:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, *, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:
        self.calls.append("list")
        assert Bucket == BUCKET
        yield {
            "Contents": [
                {"Key": key, "Size": len(data), "ETag": _etag(data)}
                for key, data in sorted(self.objects.items())
                if key.startswith(Prefix)
            ]
        }

    def get_object(self, *, Bucket: str, Key: str, Range: str, IfMatch: str) -> dict[str, Any]:
        self.calls.append(f"get {Key}")
        if Key in self.failures:
            raise self.failures[Key]
        data = self.objects[Key]
        if IfMatch != _etag(data):
            raise client_error("PreconditionFailed", 412)
        match = _RANGE.match(Range)
        assert match, Range
        start, last = (int(g) for g in match.groups())
        end = last if Key in self.short_bodies else last + 1
        return {
            "ContentRange": f"bytes {start}-{last}/{len(data)}",
            "Body": io.BytesIO(data[start:end]),
        }


def piece(number: int) -> bytes:
    """A small Pinpoint-like export piece."""
    return gzip.compress(b'{"Id":"%d","ChannelType":"EMAIL"}\n' % number)


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'
