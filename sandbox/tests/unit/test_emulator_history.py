"""Seeded history: old finished jobs, listed after the real ones, paged like them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pinpoint_export_sandbox.emulator.history import HISTORY_URL, SPACING, seed_history
from pinpoint_export_sandbox.emulator.model import Protocol
from pinpoint_export_sandbox.emulator.state import Pinpoint

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/export"
BEFORE = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def call(service: Pinpoint, operation: str, **params: Any) -> Any:
    return service.handler(operation)(params, "request-id")


def create_job(service: Pinpoint, app_id: str, url: str = "s3://bucket/run/") -> str:
    request = {"RoleArn": ROLE, "S3UrlPrefix": url}
    response = call(service, "CreateExportJob", ApplicationId=app_id, ExportJobRequest=request)
    return str(response["ExportJobResponse"]["Id"])


def walk(service: Pinpoint, app_id: str, page_size: int) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        params = {"ApplicationId": app_id, "PageSize": str(page_size), **token}
        page = call(service, "GetExportJobs", **params)["ExportJobsResponse"]
        jobs += page["Item"]
        if "NextToken" not in page:
            return jobs
        token = {"Token": page["NextToken"]}


def test_history_lists_newest_first_after_the_real_jobs() -> None:
    service = Pinpoint()
    app_id = service.add_app("n", {}).id
    older = seed_history(service.apps[app_id], 30, BEFORE, ACCOUNT)
    oldest = seed_history(service.apps[app_id], 20, None, ACCOUNT)  # before the oldest job there
    real = [create_job(service, app_id) for _ in range(3)]

    listed = walk(service, app_id, 7)
    assert [j["Id"] for j in listed[:3]] == real[::-1]
    history = listed[3:]
    assert len(history) == 50
    dates = [j["CreationDate"] for j in history]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == 50
    assert (older.newest, older.oldest) == (dates[0], dates[29])
    assert (oldest.newest, oldest.oldest) == (dates[30], dates[49])
    assert dt.datetime.fromisoformat(dates[0]) == BEFORE - SPACING
    assert {j["JobStatus"] for j in history} == {"COMPLETED"}
    urls = [j["Definition"]["S3UrlPrefix"] for j in history]
    assert len(set(urls)) == 50 and all(u.startswith(older.s3_url_prefix) for u in urls)
    assert older.s3_url_prefix == f"{HISTORY_URL}{app_id}/"
    assert all(j["CompletionDate"] > j["CreationDate"] for j in history)
    assert walk(service, app_id, 1000) == listed


def test_history_fits_botocores_shapes() -> None:
    service = Pinpoint()
    app_id = service.add_app("n", {}).id
    seed_history(service.apps[app_id], 2, BEFORE, ACCOUNT)
    operation = Protocol().model.operation_model("GetExportJobs")
    Protocol().serialize(operation, call(service, "GetExportJobs", ApplicationId=app_id))


def test_ten_thousand_jobs_seed_in_one_go() -> None:
    service = Pinpoint()
    app = service.add_app("n", {})
    assert seed_history(app, 10_000, BEFORE, ACCOUNT).count == len(app.jobs) == 10_000
    assert [j.seq for j in app.jobs] == sorted(j.seq for j in app.jobs)


@pytest.mark.parametrize(
    ("count", "before", "reason"),
    [
        (-1, BEFORE, "count"),
        (2_000_000, BEFORE, "count"),
        (1, dt.datetime(2024, 5, 1), "time zone"),
        (1, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), "in the future"),
    ],
)
def test_history_out_of_range_is_refused(count: int, before: dt.datetime, reason: str) -> None:
    app = Pinpoint().add_app("n", {})
    with pytest.raises(ValueError, match=reason):
        seed_history(app, count, before, ACCOUNT)
    assert app.jobs == []


def test_history_lies_before_every_job_already_there() -> None:
    service = Pinpoint()
    app_id = service.add_app("n", {}).id
    create_job(service, app_id)
    with pytest.raises(ValueError, match="after the app's oldest job"):
        seed_history(service.apps[app_id], 1, dt.datetime.now(dt.UTC), ACCOUNT)
