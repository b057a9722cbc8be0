"""The Pinpoint emulator through unmodified boto3, writing to the sandbox's real S3 server."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore import UNSIGNED, xform_name
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.validate import ParamValidator

from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator import (
    Emulator,
    EmulatorAdmin,
    EmulatorConfig,
    Timing,
)
from pinpoint_export_sandbox.emulator.export import ACCESS_CHECK, SUCCESS
from pinpoint_export_sandbox.emulator.faults import ERROR_CODES
from pinpoint_export_sandbox.emulator.model import service_model
from pinpoint_export_sandbox.emulator.state import Pinpoint
from pinpoint_export_sandbox.emulator.storage import JOB_STATUSES
from pinpoint_export_sandbox.emulator.synthetic import Endpoint, SyntheticBlock
from pinpoint_export_sandbox.s3server import S3Credentials

if TYPE_CHECKING:
    from mypy_boto3_pinpoint import PinpointClient
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/pinpoint-export"
PIECE_SIZE = 250
LIFECYCLE = [s for s in JOB_STATUSES if s not in ("PENDING_JOB", "FAILING", "FAILED")]


@pytest.fixture(scope="module")
def local_emulator(s3: S3Credentials) -> Iterator[Emulator]:
    config = EmulatorConfig(timing=Timing(step_seconds=0.05, piece_size=PIECE_SIZE))
    with Emulator(s3, config=config) as running:
        yield running


@pytest.fixture(scope="module")
def admin(local_emulator: Emulator) -> EmulatorAdmin:
    return local_emulator.admin


def pinpoint_client(url: str, **config: Any) -> PinpointClient:
    # Retries off: every call the test makes is exactly one call the emulator sees.
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="any-secret-works",
        config=Config(**{"retries": {"total_max_attempts": 1}, **config}),
    )


@pytest.fixture(scope="module")
def pinpoint(local_emulator: Emulator) -> PinpointClient:
    return pinpoint_client(local_emulator.url)


@pytest.fixture(scope="module")
def s3_client(s3: S3Credentials) -> S3Client:
    return s3.client()


@pytest.fixture(scope="module")
def export_bucket(s3_client: S3Client) -> str:
    name = f"exports-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture(autouse=True)
def clean(admin: EmulatorAdmin) -> None:
    admin.reset()


def wait_for_job(
    pinpoint: PinpointClient, app_id: str, job_id: str, seen: list[str] | None = None
) -> dict[str, Any]:
    """Poll GetExportJob until the job ends; `seen` collects the statuses observed."""
    statuses = seen if seen is not None else []

    def ended() -> dict[str, Any] | None:
        job = pinpoint.get_export_job(ApplicationId=app_id, JobId=job_id)["ExportJobResponse"]
        if not statuses or statuses[-1] != job["JobStatus"]:
            statuses.append(job["JobStatus"])
        return dict(job) if job["JobStatus"] in ("COMPLETED", "FAILED") else None

    return process.wait_for(ended, 60, f"export job {job_id}", interval=0.02)


def export(pinpoint: PinpointClient, app_id: str, url: str, **request: Any) -> str:
    response = pinpoint.create_export_job(
        ApplicationId=app_id, ExportJobRequest=job_request(url, **request)
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    return response["ExportJobResponse"]["Id"]


def job_request(url: str, **request: Any) -> Any:
    return {"RoleArn": ROLE, "S3UrlPrefix": url, **request}


def listing_pages(
    list_jobs: Callable[..., Any], app_id: str, page_size: int, **params: Any
) -> list[list[dict[str, Any]]]:
    """Every page of a listing of export jobs, following NextToken to the end."""
    pages: list[list[dict[str, Any]]] = []
    token: dict[str, str] = {}
    while True:
        page = list_jobs(ApplicationId=app_id, PageSize=str(page_size), **params, **token)
        pages.append(page["ExportJobsResponse"]["Item"])
        if "NextToken" not in page["ExportJobsResponse"]:
            return pages
        token = {"Token": page["ExportJobsResponse"]["NextToken"]}


def listed_ids(
    list_jobs: Callable[..., Any], app_id: str, page_size: int = 2, **params: Any
) -> list[str]:
    return [j["Id"] for page in listing_pages(list_jobs, app_id, page_size, **params) for j in page]


def exported(s3_client: S3Client, bucket: str, prefix: str) -> tuple[list[Endpoint], list[str]]:
    """The endpoints in the .gz objects under `prefix`, and the other objects' keys."""
    endpoints: list[Endpoint] = []
    others: list[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith(".gz"):
                others.append(item["Key"])
                continue
            body = s3_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            endpoints += [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return endpoints, others


def by_id(endpoints: list[Endpoint]) -> dict[str, Endpoint]:
    assert len({e["Id"] for e in endpoints}) == len(endpoints), "an endpoint was exported twice"
    return {e["Id"]: e for e in endpoints}


def test_round_trip_exports_exactly_the_endpoints(
    pinpoint: PinpointClient, admin: EmulatorAdmin, s3_client: S3Client, export_bucket: str
) -> None:
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "round-trip"})[
        "ApplicationResponse"
    ]["Id"]
    seeded = admin.seed(app_id, 1000, seed=11)
    block = SyntheticBlock(app_id, 11, seeded["start"], 1000, "ep-")
    expected = {e["Id"]: e for e in block}
    # Endpoints written and deleted through the API count too.
    pinpoint.update_endpoint(
        ApplicationId=app_id,
        EndpointId="written",
        EndpointRequest={"ChannelType": "EMAIL", "Address": "w@example.com", "User": {}},
    )
    pinpoint.delete_endpoint(ApplicationId=app_id, EndpointId="ep-3")
    del expected["ep-3"]
    expected["written"] = dict(
        pinpoint.get_endpoint(ApplicationId=app_id, EndpointId="written")["EndpointResponse"]
    )
    del expected["written"]["CohortId"]  # a GetEndpoint field, not an export field

    gold_email: Any = {
        "Attributes": {"Tier": {"Values": ["gold"]}},
        "Demographic": {"Channel": {"Values": ["EMAIL"]}},
    }
    segment = pinpoint.create_segment(
        ApplicationId=app_id, WriteSegmentRequest={"Name": "gold", "Dimensions": gold_email}
    )["SegmentResponse"]
    # Version 2 selects SMS; the export asks for version 1.
    sms: Any = {"Demographic": {"Channel": {"Values": ["SMS"]}}}
    pinpoint.update_segment(
        ApplicationId=app_id, SegmentId=segment["Id"], WriteSegmentRequest={"Dimensions": sms}
    )

    everything = export(pinpoint, app_id, f"s3://{export_bucket}/all/")
    gold = export(
        pinpoint, app_id, f"s3://{export_bucket}/gold", SegmentId=segment["Id"], SegmentVersion=1
    )
    for job_id, prefix, selection in [
        (everything, "all/", expected),
        (gold, "gold/", {i: e for i, e in expected.items() if is_gold_email(e)}),
    ]:
        seen: list[str] = []
        job = wait_for_job(pinpoint, app_id, job_id, seen)
        # Polling may skip statuses, never reorder them.
        assert seen == sorted(seen, key=LIFECYCLE.index) and seen[-1] == "COMPLETED"
        endpoints, others = exported(s3_client, export_bucket, f"{prefix}{job_id}/")
        assert by_id(endpoints) == selection
        pieces = math.ceil(len(selection) / PIECE_SIZE)
        assert job["JobStatus"] == "COMPLETED"
        assert (job["TotalPieces"], job["CompletedPieces"], job["FailedPieces"]) == (
            pieces,
            pieces,
            0,
        )
        assert job["TotalProcessed"] == len(selection)
        assert job["CompletionDate"] >= job["CreationDate"]
        assert sorted(others) == sorted(f"{prefix}{job_id}/{m}" for m in (ACCESS_CHECK, SUCCESS))
    assert 0 < len([e for e in expected.values() if is_gold_email(e)]) < len(expected)
    listed = pinpoint.get_segment_export_jobs(ApplicationId=app_id, SegmentId=segment["Id"])
    assert [j["Id"] for j in listed["ExportJobsResponse"]["Item"]] == [gold]


def is_gold_email(endpoint: Endpoint) -> bool:
    tiers = endpoint.get("Attributes", {}).get("Tier", [])
    return endpoint["ChannelType"] == "EMAIL" and "gold" in tiers


def test_every_operation_answers_what_botocore_expects(
    pinpoint: PinpointClient, admin: EmulatorAdmin, export_bucket: str
) -> None:
    model = service_model()
    responses: dict[str, Any] = {}

    def call(operation: str, **params: Any) -> Any:
        responses[operation] = getattr(pinpoint, xform_name(operation))(**params)
        return responses[operation]

    app = call("CreateApp", CreateApplicationRequest={"Name": "shapes", "tags": {"team": "t"}})
    app_id = app["ApplicationResponse"]["Id"]
    call("GetApp", ApplicationId=app_id)
    call("GetApps", PageSize="5")
    endpoint = {"ChannelType": "SMS", "Address": "+15550100", "Location": {"Latitude": 1.5}}
    call("UpdateEndpoint", ApplicationId=app_id, EndpointId="e1", EndpointRequest=endpoint)
    batch = {"Item": [{"Id": "e2", "ChannelType": "EMAIL", "Address": "a@example.com"}]}
    call("UpdateEndpointsBatch", ApplicationId=app_id, EndpointBatchRequest=batch)
    call("GetEndpoint", ApplicationId=app_id, EndpointId="e2")
    call("DeleteEndpoint", ApplicationId=app_id, EndpointId="e2")
    dimensions: Any = {"Demographic": {"Channel": {"Values": ["SMS"]}}}
    segment = call(
        "CreateSegment",
        ApplicationId=app_id,
        WriteSegmentRequest={"Name": "s", "Dimensions": dimensions},
    )
    segment_id = segment["SegmentResponse"]["Id"]
    call("GetSegment", ApplicationId=app_id, SegmentId=segment_id)
    call("UpdateSegment", ApplicationId=app_id, SegmentId=segment_id, WriteSegmentRequest={})
    call("GetSegmentVersion", ApplicationId=app_id, SegmentId=segment_id, Version="2")
    request = {
        "RoleArn": ROLE,
        "S3UrlPrefix": f"s3://{export_bucket}/shapes/",
        "SegmentId": segment_id,
    }
    job = call("CreateExportJob", ApplicationId=app_id, ExportJobRequest=request)
    job_id = job["ExportJobResponse"]["Id"]
    wait_for_job(pinpoint, app_id, job_id)
    call("GetExportJob", ApplicationId=app_id, JobId=job_id)
    call("GetExportJobs", ApplicationId=app_id)
    call("GetSegmentExportJobs", ApplicationId=app_id, SegmentId=segment_id)
    call("DeleteApp", ApplicationId=app_id)

    assert set(responses) == set(Pinpoint.OPERATIONS)
    validator = ParamValidator()
    for operation, response in responses.items():
        operation_model = model.operation_model(operation)
        metadata = response.pop("ResponseMetadata")
        assert metadata["HTTPStatusCode"] == operation_model.http["responseCode"], operation
        assert metadata["RequestId"], operation
        assert response, f"{operation} returned nothing"
        assert operation_model.output_shape is not None
        report = validator.validate(response, operation_model.output_shape)
        assert not report.has_errors(), f"{operation}: {report.generate_report()}"
    assert responses["GetExportJob"]["ExportJobResponse"]["JobStatus"] == "COMPLETED"
    assert responses["UpdateSegment"]["SegmentResponse"]["Version"] == 2


def test_errors_raise_botocores_modeled_exceptions(
    pinpoint: PinpointClient, admin: EmulatorAdmin
) -> None:
    app_id = admin.create_app("errors")
    missing = "0" * 32
    natural: list[tuple[str, Callable[[], object]]] = [
        ("NotFoundException", lambda: pinpoint.get_app(ApplicationId=missing)),
        (
            "NotFoundException",
            lambda: pinpoint.get_export_job(ApplicationId=app_id, JobId=missing),
        ),
        (
            "NotFoundException",
            lambda: pinpoint.get_segment_version(
                ApplicationId=app_id, SegmentId=missing, Version="1"
            ),
        ),
        (
            "BadRequestException",
            lambda: pinpoint.create_export_job(
                ApplicationId=app_id,
                ExportJobRequest={"RoleArn": ROLE, "S3UrlPrefix": "https://not-s3/"},
            ),
        ),
        (
            "BadRequestException",
            lambda: pinpoint.update_endpoint(
                ApplicationId=app_id,
                EndpointId="e",
                EndpointRequest={"ChannelType": "PIGEON"},  # type: ignore[typeddict-item]
            ),
        ),
        (
            "BadRequestException",
            lambda: pinpoint.get_export_jobs(ApplicationId=app_id, PageSize="0"),
        ),
    ]
    for code, call in natural:
        with pytest.raises(getattr(pinpoint.exceptions, code)) as raised:
            call()
        assert raised.value.response["Error"]["Message"]
        assert raised.value.response["RequestID"]
    # Every modeled error, injected.
    for code in sorted(ERROR_CODES):
        admin.set_faults(error_rate=1.0, error_code=code)
        with pytest.raises(getattr(pinpoint.exceptions, code)) as raised:
            pinpoint.get_app(ApplicationId=app_id)
        expected = service_model().shape_for(code).metadata["error"]["httpStatusCode"]
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == expected


def test_requests_must_be_signed_for_mobiletargeting(local_emulator: Emulator) -> None:
    unsigned = pinpoint_client(local_emulator.url, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as raised:
        unsigned.get_apps()
    assert raised.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    def signed_for(service: str, method: str = "GET") -> tuple[int, str]:
        request = AWSRequest(method=method, url=f"{local_emulator.url}/v1/apps")
        SigV4Auth(Credentials("AKID", "secret"), service, "us-east-1").add_auth(request)
        prepared = urllib.request.Request(
            str(request.url), method=method, headers=dict(request.headers.items())
        )
        try:
            with urllib.request.urlopen(prepared) as response:
                return response.status, ""
        except urllib.error.HTTPError as error:
            return error.code, error.headers["x-amzn-ErrorType"]

    assert signed_for("s3") == (403, "InvalidSignatureException")
    assert signed_for("mobiletargeting") == (200, "")
    assert signed_for("mobiletargeting", "PATCH") == (405, "MethodNotAllowedException")


def test_the_standard_endpoint_variable_reaches_it(
    local_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_emulator.env().items():
        monkeypatch.setenv(name, value)
    client = boto3.client(
        "pinpoint",
        region_name="eu-west-1",
        aws_access_key_id="AKID",
        aws_secret_access_key="secret",
    )
    assert client.get_apps()["ApplicationsResponse"]["Item"] == []


def test_pagination_walks_all_jobs(
    pinpoint: PinpointClient, admin: EmulatorAdmin, export_bucket: str
) -> None:
    app_id = admin.create_app("pages")
    admin.seed(app_id, 3)
    segment_id = pinpoint.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "s"})[
        "SegmentResponse"
    ]["Id"]
    created = [export(pinpoint, app_id, f"s3://{export_bucket}/pages/") for _ in range(5)]
    created += [
        export(pinpoint, app_id, f"s3://{export_bucket}/pages/", SegmentId=segment_id)
        for _ in range(4)
    ]

    assert listed_ids(pinpoint.get_export_jobs, app_id) == created[::-1]  # newest first
    segment_jobs = listed_ids(pinpoint.get_segment_export_jobs, app_id, SegmentId=segment_id)
    assert segment_jobs == created[:4:-1]
    for job_id in created:
        wait_for_job(pinpoint, app_id, job_id)


def test_throttling_rate_and_exact_counters(
    local_emulator: Emulator, pinpoint: PinpointClient, admin: EmulatorAdmin
) -> None:
    app_id = admin.create_app("throttled")  # admin calls are not counted
    admin.set_faults(throttle_rate=0.3, seed=1234, operations=["GetApp"])
    calls = 200
    throttled = 0
    for _ in range(calls):
        try:
            pinpoint.get_app(ApplicationId=app_id)
        except pinpoint.exceptions.TooManyRequestsException:
            throttled += 1
    draws = random.Random(1234)
    assert throttled == sum(draws.random() < 0.3 for _ in range(calls))
    assert abs(throttled / calls - 0.3) < 0.08
    pinpoint.get_apps()  # not in `operations`: never throttled
    assert admin.counters() == {"GetApp": calls, "GetApps": 1}

    # boto3's standard retries treat the throttle as retryable; the counter sees every attempt.
    admin.reset(state=False, faults=False)
    retrying = pinpoint_client(
        local_emulator.url, retries={"mode": "standard", "total_max_attempts": 20}
    )
    attempts = sum(
        1 + retrying.get_app(ApplicationId=app_id)["ResponseMetadata"]["RetryAttempts"]
        for _ in range(10)
    )
    assert admin.counters() == {"GetApp": attempts}


def test_latency_is_added(pinpoint: PinpointClient, admin: EmulatorAdmin) -> None:
    admin.set_faults(latency_seconds=0.3)
    started = time.monotonic()
    pinpoint.get_apps()
    assert time.monotonic() - started >= 0.3


def test_a_call_the_client_stops_waiting_for_still_takes_effect(
    local_emulator: Emulator, admin: EmulatorAdmin, export_bucket: str
) -> None:
    """Latency falls between receiving a call and acting on it, as in a slow service: the
    create that timed out at the client makes its job all the same, a little later."""
    app_id = admin.create_app("slow")
    admin.set_faults(latency_seconds=1.5, operations=["CreateExportJob"])
    impatient = pinpoint_client(local_emulator.url, read_timeout=0.5)
    request = {"RoleArn": ROLE, "S3UrlPrefix": f"s3://{export_bucket}/slow/"}
    with pytest.raises(ReadTimeoutError):
        impatient.create_export_job(ApplicationId=app_id, ExportJobRequest=request)
    assert admin.jobs(app_id) == []  # not yet: the service is still at it
    process.wait_for(lambda: admin.jobs(app_id), 10, "the job made after the client left")


def test_failing_and_frozen_jobs(
    pinpoint: PinpointClient, admin: EmulatorAdmin, s3_client: S3Client, export_bucket: str
) -> None:
    app_id = admin.create_app("failures")
    admin.seed(app_id, 600)
    missing_bucket = wait_for_job(
        pinpoint, app_id, export(pinpoint, app_id, "s3://no-such-bucket-here/x/")
    )
    created = pinpoint.create_export_job(
        ApplicationId=app_id,
        ExportJobRequest={"RoleArn": "role/not-an-arn", "S3UrlPrefix": f"s3://{export_bucket}/r/"},
    )
    bad_role = wait_for_job(pinpoint, app_id, created["ExportJobResponse"]["Id"])
    for job, reason in [(missing_bucket, "NoSuchBucket"), (bad_role, "Unable to assume role")]:
        assert job["JobStatus"] == "FAILED"
        assert reason in job["Failures"][0]
        assert job["CompletionDate"]

    admin.set_faults(fail_jobs=1, freeze_status="PROCESSING")
    doomed = export(pinpoint, app_id, f"s3://{export_bucket}/doomed/")
    frozen = export(pinpoint, app_id, f"s3://{export_bucket}/frozen/")

    def status(job_id: str) -> str:
        return pinpoint.get_export_job(ApplicationId=app_id, JobId=job_id)["ExportJobResponse"][
            "JobStatus"
        ]

    def both_frozen() -> bool:
        return status(frozen) == status(doomed) == "PROCESSING"

    process.wait_for(both_frozen, 30, "jobs frozen in PROCESSING", interval=0.02)
    assert status(frozen) == "PROCESSING"  # still: frozen, not merely passing through
    assert admin.faults().fail_jobs == 0
    admin.set_faults()
    doomed_job = wait_for_job(pinpoint, app_id, doomed)
    assert doomed_job["JobStatus"] == "FAILED" and doomed_job["FailedPieces"] == 3
    assert wait_for_job(pinpoint, app_id, frozen)["TotalProcessed"] == 600
    assert len(exported(s3_client, export_bucket, f"frozen/{frozen}/")[0]) == 600


@pytest.mark.parametrize(
    ("lose_response", "code", "status"),
    [
        pytest.param("error", "InternalServerErrorException", 500, id="modeled-500"),
        pytest.param("error", "503", 503, id="gateway-503"),
        pytest.param("drop", "InternalServerErrorException", None, id="dropped"),
    ],
)
def test_a_lost_answer_still_creates_the_job(
    pinpoint: PinpointClient,
    admin: EmulatorAdmin,
    export_bucket: str,
    lose_response: str,
    code: str,
    status: int | None,
) -> None:
    app_id = admin.create_app("lost")
    admin.seed(app_id, 10)
    url = f"s3://{export_bucket}/lost-{lose_response}-{code}/"
    admin.set_faults(
        lose_response=lose_response,
        lose_response_code=code,
        lose_count=2,
        operations=["CreateExportJob"],
    )
    lost: type[Exception] = ConnectionClosedError
    if lose_response == "error":
        lost = getattr(pinpoint.exceptions, code, ClientError)
    for _ in range(2):
        with pytest.raises(lost) as raised:
            pinpoint.create_export_job(ApplicationId=app_id, ExportJobRequest=job_request(url))
        if isinstance(raised.value, ClientError):
            assert raised.value.response["Error"]["Code"] == code
            assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    answered = export(pinpoint, app_id, url)  # the two losses ran out
    assert admin.faults().lose_count == 0

    listed = listed_ids(pinpoint.get_export_jobs, app_id)  # not in `operations`: answered
    assert len(listed) == 3 and listed[0] == answered
    assert [job["id"] for job in admin.jobs(app_id, url)] == listed[::-1]
    assert admin.counters()["CreateExportJob"] == 3
    for job_id in listed:
        assert wait_for_job(pinpoint, app_id, job_id)["JobStatus"] == "COMPLETED"


def test_a_retrying_client_duplicates_a_job_whose_answer_is_lost(
    local_emulator: Emulator, admin: EmulatorAdmin, export_bucket: str
) -> None:
    """Why an exactly-once client cannot simply retry CreateExportJob."""
    retrying = pinpoint_client(
        local_emulator.url, retries={"mode": "standard", "total_max_attempts": 3}
    )
    app_id = admin.create_app("retried")
    url = f"s3://{export_bucket}/retried/"
    admin.set_faults(lose_response="drop", operations=["CreateExportJob"])
    response = retrying.create_export_job(ApplicationId=app_id, ExportJobRequest=job_request(url))
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    jobs = admin.jobs(app_id, url)
    assert len(jobs) == 2 and jobs[1]["id"] == response["ExportJobResponse"]["Id"]
    for job in jobs:
        wait_for_job(retrying, app_id, job["id"])


def test_listings_can_be_slow_and_truncated(
    pinpoint: PinpointClient, admin: EmulatorAdmin, export_bucket: str
) -> None:
    app_id = admin.create_app("truncated")
    created = [export(pinpoint, app_id, f"s3://{export_bucket}/truncated/") for _ in range(5)]
    # The list_* settings hit the listings whatever `operations` names.
    admin.set_faults(list_page_limit=2, list_latency_seconds=0.2, operations=["GetApp"])
    started = time.monotonic()
    pages = listing_pages(pinpoint.get_export_jobs, app_id, page_size=10)
    assert time.monotonic() - started >= 3 * 0.2
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [j["Id"] for page in pages for j in page] == created[::-1]
    admin.set_faults()
    assert [len(page) for page in listing_pages(pinpoint.get_export_jobs, app_id, 10)] == [5]
    for job_id in created:
        wait_for_job(pinpoint, app_id, job_id)


def test_history_lists_after_the_recent_jobs(
    pinpoint: PinpointClient, admin: EmulatorAdmin, export_bucket: str
) -> None:
    app_id = admin.create_app("history")
    url = f"s3://{export_bucket}/recent/"
    recent = [export(pinpoint, app_id, url) for _ in range(3)]
    day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    seeded = admin.seed_history(app_id, 10_000, day_ago)
    assert seeded["seeded"] == 10_000

    pages = listing_pages(pinpoint.get_export_jobs, app_id, page_size=1000)
    listed = [job for page in pages for job in page]
    assert [j["Id"] for j in listed[:3]] == recent[::-1]
    history = listed[3:]
    dates = [j["CreationDate"] for j in history]
    assert len(history) == len(set(dates)) == 10_000
    assert dates == sorted(dates, reverse=True) and dates[0] == seeded["newest"]
    assert dt.datetime.fromisoformat(dates[0]) < day_ago
    assert {j["JobStatus"] for j in history} == {"COMPLETED"}
    assert all(j["Definition"]["S3UrlPrefix"].startswith(seeded["s3_url_prefix"]) for j in history)
    assert len(admin.jobs(app_id, seeded["s3_url_prefix"])) == 10_000
    assert [job["id"] for job in admin.jobs(app_id, url)] == recent
    for job_id in recent:
        assert wait_for_job(pinpoint, app_id, job_id)["JobStatus"] == "COMPLETED"


def test_the_command_runs_it_alone(s3: S3Credentials, tmp_path: Path) -> None:
    port = process.free_port()
    log = tmp_path / "emulator.log"
    stdout = tmp_path / "stdout"
    argv = [sys.executable, "-m", "pinpoint_export_sandbox", "emulator"]
    with stdout.open("wb") as out, log.open("wb") as err:
        child = subprocess.Popen(
            [*argv, f"--port={port}", "--step-seconds=0.01", "--piece-size=2"],
            env={**os.environ, **s3.env()},
            stdout=out,
            stderr=err,
        )
    try:
        admin = EmulatorAdmin(f"http://127.0.0.1:{port}")
        process.wait_for(admin.health, 30, "emulator command", alive=child, log=log)
        app_id = admin.create_app("cli")
        admin.seed(app_id, 5)
        client = pinpoint_client(f"http://127.0.0.1:{port}")
        cli_bucket = f"cli-{uuid.uuid4().hex[:8]}"
        s3.client().create_bucket(Bucket=cli_bucket)
        job = wait_for_job(client, app_id, export(client, app_id, f"s3://{cli_bucket}/"))
        assert (job["JobStatus"], job["TotalPieces"], job["TotalProcessed"]) == ("COMPLETED", 3, 5)
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
    assert stdout.read_bytes() == b""
    assert b"listening on" in log.read_bytes()
