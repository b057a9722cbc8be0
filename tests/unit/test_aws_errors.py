"""Which cloud failures are retried and which end the export."""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest

from pinpoint_export_operator.runtime.aws import classify, endpoint_refusal
from pinpoint_export_operator.runtime.backoff import CAP as BACKOFF_CAP
from pinpoint_export_operator.runtime.backoff import backoff


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetExportJob",
    )


@pytest.mark.parametrize(
    ("code", "status", "reason", "transient"),
    [
        ("TooManyRequestsException", 429, "Throttled", True),
        ("InternalServerErrorException", 500, "ServiceUnavailable", True),
        ("SomethingNew", 503, "ServiceUnavailable", True),
        ("NotFoundException", 404, "NotFound", False),
        ("ForbiddenException", 403, "AccessDenied", False),
        ("BadRequestException", 400, "InvalidRequest", False),
        ("SomethingOdd", 418, "UnexpectedResponse", False),
    ],
)
def test_client_errors(code: str, status: int, reason: str, transient: bool) -> None:
    error = classify(client_error(code, status), "GetExportJob")
    assert (error.reason, error.transient) == (reason, transient)
    assert code in error.message and "GetExportJob" in error.message


@pytest.mark.parametrize(
    ("error", "ambiguous", "unfinished"),
    [
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), False, False),
        (client_error("InternalServerErrorException", 500), True, False),  # answered: done
        (client_error("GatewayTimeout", 504), True, True),  # the gateway stopped waiting
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), True, True),
    ],
    ids=["never-sent", "500", "504", "read-timeout"],
)
def test_which_failures_may_still_be_running_where_they_were_sent(
    error: Exception, ambiguous: bool, unfinished: bool
) -> None:
    failure = classify(error, "CreateExportJob")
    assert (failure.ambiguous, failure.unfinished) == (ambiguous, unfinished)


def test_network_errors_are_transient() -> None:
    error = classify(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), "op")
    assert error.transient and error.reason == "EndpointUnreachable"


def test_missing_credentials_and_bad_responses_are_terminal() -> None:
    assert not classify(botocore.exceptions.NoCredentialsError(), "op").transient
    assert classify(KeyError("Id"), "op").reason == "UnexpectedResponse"


def test_anything_else_is_shown_and_retried_never_raised() -> None:
    error = classify(ZeroDivisionError("secret-ish detail"), "CreateExportJob")
    assert (error.reason, error.transient, error.ambiguous) == ("UnexpectedError", True, True)
    assert "ZeroDivisionError" in error.message
    assert "secret-ish" not in error.message  # no str() or repr of unknown errors


@pytest.mark.parametrize(
    ("error", "ambiguous"),
    [
        # Never connected: nothing can have been created.
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), False),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), False),
        (client_error("TooManyRequestsException", 429), False),
        (client_error("BadRequestException", 400), False),
        # Sent, answer lost or failed on the server's side: it may have acted.
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), True),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="http://x"), True),
        (client_error("InternalServerErrorException", 500), True),
        (client_error("BadGateway", 502), True),
        (client_error("ServiceUnavailable", 503), True),
    ],
)
def test_which_failures_may_have_acted(error: Exception, ambiguous: bool) -> None:
    assert classify(error, "CreateExportJob").ambiguous is ambiguous


def test_a_missing_region_names_where_to_set_it() -> None:
    error = classify(botocore.exceptions.NoRegionError(), "GetExportJob")
    assert (error.reason, error.transient) == ("NoRegion", False)
    assert "spec.region" in error.message and "--region" in error.message


def test_long_service_messages_are_bounded() -> None:
    error = classify(client_error("BadRequestException", 400), "op")
    long = botocore.exceptions.ClientError(
        {"Error": {"Code": "BadRequestException", "Message": "m" * 50_000}}, "op"
    )
    assert len(classify(long, "op").message) <= 400 < 50_000
    assert error.message == "op: BadRequestException: m"


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    assert backoff(0, lambda: 0.0) == 1.0
    assert backoff(0, lambda: 1.0) == 2.0
    assert backoff(3, lambda: 1.0) == 16.0
    assert backoff(30, lambda: 1.0) == BACKOFF_CAP


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:4566", "https://s3.eu-west-1.amazonaws.com", "http://[::1]:9000/x", None],
)
def test_an_endpoint_botocore_takes_is_not_refused(url: str | None) -> None:
    assert endpoint_refusal("spec.s3EndpointUrl", url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://[:::]",  # brackets the CRD's pattern lets through, around no IPv6 address
        "http://[1.2.3.4]",
        "http://" + "a." * 130 + "com",  # a host over 255 characters, of valid labels
    ],
)
def test_an_endpoint_botocore_refuses_is_refused_naming_the_field(url: str) -> None:
    refusal = endpoint_refusal("spec.s3EndpointUrl", url)
    assert refusal is not None and refusal.startswith(f"spec.s3EndpointUrl {url!r}")
    with pytest.raises(ValueError):  # what the copier would meet
        boto3.session.Session().client(
            "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
            aws_secret_access_key="s",
        )  # fmt: skip


def test_a_port_out_of_range_is_refused() -> None:
    refusal = endpoint_refusal("spec.endpointUrl", "http://host:99999")
    assert refusal is not None and "spec.endpointUrl" in refusal and "out of range" in refusal
