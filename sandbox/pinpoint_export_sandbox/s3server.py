"""The sandbox's S3 server: versitygw with its POSIX backend, on loopback."""

from __future__ import annotations

import os
import secrets
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinpoint_export_sandbox import binaries, process

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"


@dataclass
class S3Credentials:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = REGION

    def client(self, **config: Any) -> S3Client:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def env(self) -> dict[str, str]:
        """botocore's own variables, so an unmodified boto3 or awscli reaches this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


@dataclass
class S3Server:
    """Starts versitygw serving `data_dir`; use as a context manager."""

    data_dir: Path
    port: int = field(default_factory=process.free_port)
    credentials: S3Credentials = field(init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.credentials = S3Credentials(
            endpoint_url=f"http://127.0.0.1:{self.port}",
            access_key="sandbox" + secrets.token_hex(6),
            secret_key=secrets.token_urlsafe(30),
        )

    def start(self) -> S3Credentials:
        storage = self.data_dir / "buckets"
        storage.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "versitygw.log"
        env = {
            **os.environ,
            # Passed by environment so the secret never shows in `ps`.
            "ROOT_ACCESS_KEY_ID": self.credentials.access_key,
            "ROOT_SECRET_ACCESS_KEY": self.credentials.secret_key,
        }
        argv = [
            str(binaries.find("versitygw")),
            f"--port=127.0.0.1:{self.port}",
            f"--region={REGION}",
        ]
        self._proc = process.start([*argv, "posix", str(storage)], log, env=env)
        process.wait_for(self._answers, 30, "S3 server", alive=self._proc, log=log)
        return self.credentials

    @property
    def pid(self) -> int:
        """The server's process (the copier benchmark measures its CPU)."""
        assert self._proc is not None, "not started"
        return self._proc.pid

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.credentials.endpoint_url, timeout=1)
        except urllib.error.HTTPError:
            return True  # an S3 error response (unsigned request) means it is serving
        return True

    def stop(self) -> None:
        if self._proc is not None:
            process.stop(self._proc)

    def __enter__(self) -> S3Credentials:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
