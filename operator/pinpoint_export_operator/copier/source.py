"""The run's objects in S3: the `s3://` URL, the client, and the listing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pinpoint_export_operator.copier.safepaths import is_gz_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str  # empty, or ending with "/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_s3_url(url: str) -> S3Url:
    """`s3://bucket/run-prefix/`; the prefix is taken as a folder, so `run-1` never matches
    `run-10/...`."""
    scheme, _, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme != "s3" or not bucket:
        raise ValueError(f"not an s3://bucket/prefix/ URL: {url!r}")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return S3Url(bucket, prefix)


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str  # as S3 sends it, quotes included

    @property
    def clean_etag(self) -> str:
        return self.etag.strip('"')


def make_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    max_connections: int,
    assume_role_arn: str | None = None,
    role_session_name: str | None = None,
    external_id: str | None = None,
    session_tags: tuple[tuple[str, str], ...] = (),
) -> S3Client:
    """A client from the standard boto3 chain (env, IRSA, profile), or the role it assumes
    (cross-account, refreshed before expiry; with the session name, ExternalId and session
    tags given); one per process, shared by the threads, with a connection per concurrent
    request."""
    from botocore.config import Config

    # The operator's own session builder: the copier assumes roles exactly as the operator does.
    from pinpoint_export_operator.runtime.aws import SESSION_NAME, AssumeRole, Identity, session_for

    # S3-compatible servers (versitygw, MinIO, Ceph) are reached by path, not by a bucket
    # subdomain; AWS itself still answers both.
    custom = (
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    config = Config(
        max_pool_connections=max_connections,
        retries={"mode": "standard", "total_max_attempts": 6},  # the first one included
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
        # Ranged GETs carry no full-object checksum; our own verification is end to end.
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"} if custom else None,
    )
    # Keys come from a Secret through the environment; `echo KEY | kubectl create secret`
    # leaves a newline that would make every signed request fail.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if key in os.environ:
            os.environ[key] = os.environ[key].strip()
    role = (
        AssumeRole(
            assume_role_arn,
            session_name=role_session_name or SESSION_NAME,
            external_id=external_id,
            tags=session_tags,
        )
        if assume_role_arn
        else None
    )
    session = session_for(Identity(region, None, assume_role=role))
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def list_gz_objects(client: S3Client, url: S3Url) -> list[S3Object]:
    """Every `.gz` object under the prefix (all pages); markers and folders are skipped."""
    objects = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=url.bucket, Prefix=url.prefix
    ):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.startswith(url.prefix) and is_gz_key(key[len(url.prefix) :]):
                objects.append(S3Object(key, item["Size"], item.get("ETag", "")))
    return objects
