"""AwsCalls' client cache: one client per identity, one parsed model, a bounded size."""

from __future__ import annotations

import http.server
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

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


class Unavailable(http.server.BaseHTTPRequestHandler):
    """Answers every request 503, and counts them."""

    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.mark.parametrize(("retries", "attempts"), [(True, 2), (False, 1)])
def test_a_call_is_attempted_twice_and_a_create_once(retries: bool, attempts: int) -> None:
    """What botocore does with the settings, not what they look like: a poll that gets 503
    is sent twice in all; a create once (a second one could create twice)."""
    Unavailable.requests = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        pinpoint = AwsCalls(1).client(
            "pinpoint",
            Identity("us-east-1", url, StaticCredentials("a", "b")),
            retries=retries,
        )
        with pytest.raises(ClientError):
            pinpoint.get_export_job(ApplicationId="app", JobId="job")
    finally:
        server.shutdown()
    assert Unavailable.requests == attempts
