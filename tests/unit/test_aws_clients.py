"""AwsCalls' client cache: one client per identity, one parsed model, a bounded size."""

from __future__ import annotations

import pytest

from pinpoint_export_operator.runtime import aws
from pinpoint_export_operator.runtime.aws import AwsCalls, Identity, StaticCredentials


def identity(key: str) -> Identity:
    return Identity("us-east-1", "http://127.0.0.1:9", StaticCredentials(key, "secret"))


def test_one_client_per_identity_sized_for_the_worker_threads() -> None:
    calls = AwsCalls(concurrency=16)
    first = calls.client("pinpoint", identity("a"))
    assert calls.client("pinpoint", identity("a")) is first
    assert calls.client("pinpoint", identity("b")) is not first
    assert first.meta.config.max_pool_connections == 16
    assert first.meta.config.retries["mode"] == "standard"  # the shared settings are kept


def test_identities_share_one_loaded_service_model() -> None:
    calls = AwsCalls(concurrency=2)
    a = calls.client("pinpoint", identity("a"))
    b = calls.client("pinpoint", identity("b"))
    assert a._loader is b._loader


def test_the_least_recently_used_client_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "MAX_CLIENTS", 2)
    calls = AwsCalls(concurrency=2)
    a = calls.client("pinpoint", identity("a"))
    b = calls.client("pinpoint", identity("b"))
    assert calls.client("pinpoint", identity("a")) is a  # now the most recent
    calls.client("pinpoint", identity("c"))  # drops b
    assert calls.client("pinpoint", identity("a")) is a
    assert calls.client("pinpoint", identity("b")) is not b
