"""Start-up safety: /healthz fails without the CRDs; SDK logs never carry secrets."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.handlers.lifecycle import resources_served


class Discovery:
    def __init__(self, served: list[str] | None) -> None:
        self.served = served

    def get(self, path: str, query: Any = None) -> dict[str, Any]:
        assert path == f"/apis/{api.API_VERSION}"
        if self.served is None:
            raise client.ApiException(status=404, reason="Not Found")
        return {"resources": [{"name": name} for name in self.served]}


def probe(served: list[str] | None) -> str:
    memo = kopf.Memo(discovery=Discovery(served))
    return asyncio.run(resources_served(memo=memo))


def test_served_resources_pass() -> None:
    assert probe([api.EXPORTS, f"{api.EXPORTS}/status", api.SCHEDULES]) == "served"


@pytest.mark.parametrize("served", [None, [api.EXPORTS]])
def test_missing_resources_fail_the_probe(served: list[str] | None) -> None:
    with pytest.raises(kopf.PermanentError, match=api.SCHEDULES):
        probe(served)


def test_sdk_loggers_never_go_below_info() -> None:
    """botocore at DEBUG logs AssumeRole's answer, temporary secret key included."""
    import logging

    from pinpoint_export_operator.run import SDK_LOGGERS, quiet_sdk_logs

    quiet_sdk_logs("DEBUG")
    assert all(logging.getLogger(name).level == logging.INFO for name in SDK_LOGGERS)
    quiet_sdk_logs("WARNING")
    assert all(logging.getLogger(name).level == logging.WARNING for name in SDK_LOGGERS)
