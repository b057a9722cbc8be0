"""The emulator's state: endpoints, synthetic seeds, the job lifecycle, pagination, operations."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinpoint_export_sandbox.emulator.model import ApiError
from pinpoint_export_sandbox.emulator.state import Pinpoint
from pinpoint_export_sandbox.emulator.storage import EXPORT_FIELDS, Endpoints, ExportJob
from pinpoint_export_sandbox.emulator.synthetic import SyntheticBlock

APP = "a" * 32
ROLE = "arn:aws:iam::123456789012:role/export"


def test_synthetic_endpoints_are_deterministic_and_varied() -> None:
    block = SyntheticBlock(APP, seed=7, start=0, count=2000, prefix="ep-")
    first, again = list(block), list(block)
    assert first == again
    assert [e["Id"] for e in first[:3]] == ["ep-0", "ep-1", "ep-2"]
    assert all(list(e)[: len(EXPORT_FIELDS) - 4] == list(EXPORT_FIELDS[:-4]) for e in first)
    for field, values in {
        "ChannelType": {"EMAIL", "SMS", "GCM", "APNS"},
        "EndpointStatus": {"ACTIVE", "INACTIVE"},
        "OptOut": {"ALL", "NONE"},
    }.items():
        assert {e[field] for e in first} == values
    assert {e["Attributes"]["Tier"][0] for e in first} == {"bronze", "silver", "gold"}
    assert 0 < sum("Metrics" in e for e in first) < len(first)
    assert 0 < sum(bool(e["User"]) for e in first) < len(first)
    assert list(SyntheticBlock(APP, seed=8, start=0, count=50, prefix="ep-")) != first[:50]


@pytest.mark.parametrize(
    ("endpoint_id", "index"),
    [("ep-0", 0), ("ep-9", 9), ("ep-10", None), ("ep-01", None), ("ep-x", None), ("e-1", None)],
)
def test_block_ids(endpoint_id: str, index: int | None) -> None:
    assert SyntheticBlock(APP, 0, 0, 10, "ep-").index(endpoint_id) == index


def test_endpoint_updates_merge_and_deletes_hide() -> None:
    endpoints = Endpoints(APP)
    endpoints.seed(5, seed=1, prefix="ep-")
    seeded = endpoints.get("ep-1")
    assert seeded is not None
    endpoints.put("ep-1", {"Attributes": {"Tier": ["platinum"]}, "RequestId": "ignored"})
    updated = endpoints.get("ep-1")
    assert updated is not None
    assert updated["Attributes"] == {**seeded["Attributes"], "Tier": ["platinum"]}
    assert updated["Address"] == seeded["Address"]
    assert "RequestId" not in updated
    endpoints.put("new", {"ChannelType": "SMS", "Address": "+15550000"})
    created = endpoints.get("new")
    assert created is not None
    assert (created["EndpointStatus"], created["OptOut"], created["User"]) == ("ACTIVE", "NONE", {})
    assert endpoints.delete("ep-2") is not None
    assert endpoints.get("ep-2") is None
    assert endpoints.delete("ep-2") is None
    ids = [e["Id"] for e in endpoints.source()]
    assert sorted(ids) == sorted(["ep-0", "ep-1", "ep-3", "ep-4", "new"])


def test_seeding_twice_continues_the_numbering() -> None:
    endpoints = Endpoints(APP)
    endpoints.seed(3, seed=0, prefix="ep-")
    endpoints.seed(2, seed=0, prefix="x-")
    assert [e["Id"] for e in endpoints.source()] == ["ep-0", "ep-1", "ep-2", "x-3", "x-4"]


operations = st.lists(
    st.tuples(
        st.sampled_from(["seed", "put", "delete"]),
        st.integers(0, 30),
        st.sampled_from(["ep-", "x-"]),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_a_source_counts_what_it_yields_and_ids_are_unique(ops: list[Any]) -> None:
    endpoints = Endpoints(APP)
    for action, n, prefix in ops:
        if action == "seed":
            endpoints.seed(n, seed=n, prefix=prefix)
        elif action == "put":
            endpoints.put(f"{prefix}{n}", {"ChannelType": "EMAIL"})
        else:
            endpoints.delete(f"{prefix}{n}")
    source = endpoints.source()
    ids = [e["Id"] for e in source]
    assert len(ids) == len(set(ids)) == source.count()
    assert all(endpoints.get(i) is not None for i in ids)
    endpoints.put("later", {})  # a source is a snapshot: later writes do not show
    assert [e["Id"] for e in source] == ids


def job() -> ExportJob:
    return ExportJob(
        "j", APP, {"RoleArn": ROLE, "S3UrlPrefix": "s3://bucket/"}, Endpoints(APP).source()
    )


def test_job_lifecycle() -> None:
    happy = job()
    statuses = [happy.advance() for _ in range(5)]
    assert statuses == [
        "PREPARING_FOR_INITIALIZATION",
        "INITIALIZING",
        "PROCESSING",
        "COMPLETING",
        "COMPLETED",
    ]
    assert happy.finished and happy.response()["CompletionDate"]
    with pytest.raises(ValueError):
        happy.advance()
    failing = job()
    failing.advance()
    failing.fail("role")
    failing.fail("ignored: already failing")
    assert failing.status == "FAILING"
    assert failing.advance() == "FAILED"
    assert failing.response()["Failures"] == ["role"]
    assert "CompletionDate" not in job().response()


def call(service: Pinpoint, operation: str, **params: Any) -> Any:
    return service.handler(operation)(params, "request-id")


def test_operations_create_read_and_version() -> None:
    started: list[ExportJob] = []
    service = Pinpoint(on_export=started.append)
    app = call(service, "CreateApp", CreateApplicationRequest={"Name": "n"})["ApplicationResponse"]
    app_id = app["Id"]
    assert app["Arn"].endswith(f":apps/{app_id}") and len(app_id) == 32
    service.apps[app_id].endpoints.seed(100, seed=0, prefix="ep-")
    email = {"Dimensions": {"Demographic": {"Channel": {"Values": ["EMAIL"]}}}}
    segment = call(service, "CreateSegment", ApplicationId=app_id, WriteSegmentRequest=email)
    segment_id = segment["SegmentResponse"]["Id"]
    sms = {"Name": "sms", "Dimensions": {"Demographic": {"Channel": {"Values": ["SMS"]}}}}
    updated = call(
        service,
        "UpdateSegment",
        ApplicationId=app_id,
        SegmentId=segment_id,
        WriteSegmentRequest=sms,
    )
    assert updated["SegmentResponse"]["Version"] == 2
    v1 = call(service, "GetSegmentVersion", ApplicationId=app_id, SegmentId=segment_id, Version="1")
    assert v1["SegmentResponse"]["Dimensions"] == email["Dimensions"]
    request = {"RoleArn": ROLE, "S3UrlPrefix": "s3://bucket/p", "SegmentId": segment_id}
    for version in (1, 2):
        export = {**request, "SegmentVersion": version}
        call(service, "CreateExportJob", ApplicationId=app_id, ExportJobRequest=export)
    channels = [{e["ChannelType"] for e in j.source} for j in started]
    assert channels == [{"EMAIL"}, {"SMS"}]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"RoleArn": ROLE, "S3UrlPrefix": "https://b/"}, "BadRequestException"),
        ({"RoleArn": ROLE, "S3UrlPrefix": "s3://B_/"}, "BadRequestException"),
        (
            {"RoleArn": ROLE, "S3UrlPrefix": "s3://bucket/", "SegmentVersion": 1},
            "BadRequestException",
        ),
        (
            {"RoleArn": ROLE, "S3UrlPrefix": "s3://bucket/", "SegmentId": "nope"},
            "NotFoundException",
        ),
    ],
)
def test_create_export_job_refuses(request_: dict[str, Any], code: str) -> None:
    service = Pinpoint()
    app_id = service.add_app("n", {}).id
    with pytest.raises(ApiError) as error:
        call(service, "CreateExportJob", ApplicationId=app_id, ExportJobRequest=request_)
    assert error.value.code == code


def test_unimplemented_operations_are_refused() -> None:
    with pytest.raises(ApiError, match="does not implement GetImportJobs"):
        Pinpoint().handler("GetImportJobs")


def test_pagination_walks_everything_once_even_while_jobs_are_created() -> None:
    service = Pinpoint()
    app_id = service.add_app("n", {}).id
    request = {"RoleArn": ROLE, "S3UrlPrefix": "s3://bucket/"}

    def create() -> str:
        response = call(service, "CreateExportJob", ApplicationId=app_id, ExportJobRequest=request)
        return str(response["ExportJobResponse"]["Id"])

    created = [create() for _ in range(7)]
    seen: list[str] = []
    token = None
    while True:
        params = {"ApplicationId": app_id, "PageSize": "3", **({"Token": token} if token else {})}
        page = call(service, "GetExportJobs", **params)["ExportJobsResponse"]
        seen += [j["Id"] for j in page["Item"]]
        if "NextToken" not in page:
            break
        token = page["NextToken"]
        create()  # newer jobs land before the walk's position, never inside it
    assert seen == created[::-1]
    for bad in ({"PageSize": "0"}, {"PageSize": "x"}, {"Token": "not-a-token"}):
        with pytest.raises(ApiError):
            call(service, "GetExportJobs", ApplicationId=app_id, **bad)


def test_a_page_limit_truncates_job_listings_but_keeps_the_walk_whole() -> None:
    limit: list[int | None] = [2]
    service = Pinpoint(listing_page_limit=lambda: limit[0])
    app_id = service.add_app("n", {}).id
    request = {"RoleArn": ROLE, "S3UrlPrefix": "s3://bucket/"}
    for _ in range(5):
        call(service, "CreateExportJob", ApplicationId=app_id, ExportJobRequest=request)
    created = [job.id for job in service.apps[app_id].jobs]

    def pages() -> list[list[str]]:
        walked: list[list[str]] = []
        token: dict[str, str] = {}
        while True:
            params = {"ApplicationId": app_id, "PageSize": "4", **token}
            page = call(service, "GetExportJobs", **params)["ExportJobsResponse"]
            walked.append([j["Id"] for j in page["Item"]])
            if "NextToken" not in page:
                return walked
            token = {"Token": page["NextToken"]}

    truncated = pages()
    assert [len(ids) for ids in truncated] == [2, 2, 1]
    assert [i for ids in truncated for i in ids] == created[::-1]
    limit[0] = None
    assert [len(ids) for ids in pages()] == [4, 1]
    for _ in range(3):
        service.add_app("more", {})
    limit[0] = 1
    apps = call(service, "GetApps", PageSize="3")["ApplicationsResponse"]["Item"]
    assert len(apps) == 3  # only job listings are truncated
