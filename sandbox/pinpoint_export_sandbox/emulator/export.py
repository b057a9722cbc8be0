"""Writing an export to S3: gzip-compressed newline-delimited JSON pieces plus marker objects.

Layout under the job's `S3UrlPrefix`: `<prefix><job-id>/<n>.gz` for each piece, a write-access
check object when the job starts and `_SUCCESS` when it completes (consumers take the `.gz`
objects only, as with the real service). Everything here blocks: the job runner calls it from
worker threads, never on the event loop.
"""

from __future__ import annotations

import gzip
import io
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pinpoint_export_sandbox.emulator.synthetic import Endpoint, ndjson

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pinpoint_export_sandbox.s3server import S3Credentials

ACCESS_CHECK = ".write_access_check_file.temp"
SUCCESS = "_SUCCESS"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_LINES_PER_WRITE = 1000  # bounds the uncompressed bytes held at once


class ExportFailed(Exception):
    """Ends the export job FAILED; the message becomes its Failures entry."""


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str  # "" or ending with "/"

    def job_prefix(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}/"


def parse_s3_url(url: str) -> S3Url:
    if not url.startswith("s3://"):
        raise ValueError(f"S3UrlPrefix must be an s3:// URL, not {url!r}")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"S3UrlPrefix names an invalid bucket: {bucket!r}")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return S3Url(bucket, prefix)


def check_role_arn(role_arn: str) -> None:
    if not _ROLE_ARN.fullmatch(role_arn):
        raise ExportFailed(f"Unable to assume role {role_arn}: not a valid IAM role ARN")


def s3_client(credentials: S3Credentials | None, connections: int) -> S3Client:
    """A client for the export's S3 server: given credentials, or botocore's environment."""
    if credentials is not None:
        return credentials.client(max_pool_connections=connections, retries={"mode": "standard"})
    import boto3

    config = Config(
        s3={"addressing_style": "path"},
        max_pool_connections=connections,
        retries={"mode": "standard"},
    )
    return boto3.client("s3", config=config)


class PieceWriter:
    def __init__(self, client: S3Client, compresslevel: int = 6) -> None:
        self.client = client
        self.compresslevel = compresslevel

    def check_access(self, url: S3Url, job_id: str) -> None:
        """Fail early, as Pinpoint does when it cannot write to the bucket."""
        self._put(url, url.job_prefix(job_id) + ACCESS_CHECK, b"")

    def write_piece(self, url: S3Url, job_id: str, n: int, endpoints: Iterable[Endpoint]) -> int:
        """Compress `endpoints` into piece `n`; returns how many it held."""
        buffer = io.BytesIO()
        count = 0
        # mtime=0: the same endpoints always compress to the same bytes.
        with gzip.GzipFile(
            fileobj=buffer, mode="wb", compresslevel=self.compresslevel, mtime=0
        ) as gz:
            source = iter(endpoints)
            while batch := list(itertools.islice(source, _LINES_PER_WRITE)):
                gz.write(ndjson(batch))
                count += len(batch)
        self._put(url, f"{url.job_prefix(job_id)}{n}.gz", buffer.getvalue())
        return count

    def finish(self, url: S3Url, job_id: str) -> None:
        self._put(url, url.job_prefix(job_id) + SUCCESS, b"")

    def _put(self, url: S3Url, key: str, body: bytes) -> None:
        try:
            self.client.put_object(Bucket=url.bucket, Key=key, Body=body)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ExportFailed(f"Unable to write s3://{url.bucket}/{key}: {code}") from error
        except BotoCoreError as error:
            raise ExportFailed(f"Unable to write s3://{url.bucket}/{key}: {error}") from error
