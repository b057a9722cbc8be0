"""The admin path's history and job inspection, against an emulator in this process (no S3)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from pinpoint_export_sandbox.emulator import Emulator, EmulatorAdmin, EmulatorAdminError
from pinpoint_export_sandbox.emulator.history import HISTORY_URL


@pytest.fixture(scope="module")
def admin() -> Iterator[EmulatorAdmin]:
    with Emulator() as emulator:
        yield emulator.admin


def test_history_is_seeded_and_found_by_prefix(admin: EmulatorAdmin) -> None:
    app_id = admin.create_app("history")
    before = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    seeded = admin.seed_history(app_id, 3, before)
    assert seeded["seeded"] == 3 and seeded["s3_url_prefix"] == f"{HISTORY_URL}{app_id}/"
    assert seeded["newest"] == "2024-12-31T23:59:00.000Z"
    jobs = admin.jobs(app_id, seeded["s3_url_prefix"])
    assert [j["creation_date"] for j in jobs] == [
        seeded["oldest"],
        "2024-12-31T23:58:00.000Z",
        seeded["newest"],
    ]
    assert {j["status"] for j in jobs} == {"COMPLETED"}
    assert all(j["s3_url_prefix"] == f"{seeded['s3_url_prefix']}{j['id']}/" for j in jobs)
    assert admin.jobs(app_id) == jobs
    assert admin.jobs(app_id, "s3://some-run/") == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"count": -1}, 400),
        ({"count": "3"}, 400),
        ({"count": True}, 400),
        ({"count": 1, "before": "yesterday"}, 400),
        ({"count": 1, "before": "2024-01-01T00:00:00"}, 400),  # no time zone
        ({"count": 1, "before": "2999-01-01T00:00:00Z"}, 400),
    ],
)
def test_history_refuses_what_is_out_of_range(
    admin: EmulatorAdmin, body: dict[str, object], status: int
) -> None:
    app_id = admin.create_app("refused")
    request = urllib.request.Request(
        f"{admin.url}/_emulator/apps/{app_id}/history", data=json.dumps(body).encode()
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == status
    assert json.load(raised.value)["error"]
    assert admin.jobs(app_id) == []


def test_unknown_apps_are_not_found(admin: EmulatorAdmin) -> None:
    for call in (lambda: admin.seed_history("0" * 32, 1), lambda: admin.jobs("0" * 32)):
        with pytest.raises(EmulatorAdminError) as raised:
            call()
        assert raised.value.status == 404
