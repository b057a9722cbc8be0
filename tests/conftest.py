"""Fixtures shared by the unit and e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pinpoint_export_operator.sandbox.s3server import S3Credentials, S3Server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Credentials]:
    """A real S3 server (versitygw) for the session."""
    with S3Server(Path(tmp_path_factory.mktemp("s3"))) as credentials:
        yield credentials
