"""Which cloud failures are retried and which end the export."""

from __future__ import annotations

import botocore.exceptions
import pytest

from pinpoint_export_operator.runtime.aws import classify
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


def test_network_errors_are_transient() -> None:
    error = classify(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), "op")
    assert error.transient and error.reason == "EndpointUnreachable"


def test_missing_credentials_and_bad_responses_are_terminal() -> None:
    assert not classify(botocore.exceptions.NoCredentialsError(), "op").transient
    assert classify(KeyError("Id"), "op").reason == "UnexpectedResponse"


def test_other_exceptions_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        classify(ZeroDivisionError(), "op")


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    assert backoff(0, lambda: 0.0) == 1.0
    assert backoff(0, lambda: 1.0) == 2.0
    assert backoff(3, lambda: 1.0) == 16.0
    assert backoff(30, lambda: 1.0) == BACKOFF_CAP
