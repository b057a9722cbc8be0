"""The emulator's SigV4 scope check: what AWS's front door refuses, it refuses."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from pinpoint_export_sandbox.emulator.app import check_signature
from pinpoint_export_sandbox.emulator.signing import Unsigned, signer

URL = "http://127.0.0.1:1/v1/apps"


def signed(service: str) -> CIMultiDict[str]:
    request = AWSRequest(method="GET", url=URL)
    SigV4Auth(Credentials("AKID", "secret"), service, "eu-west-1").add_auth(request)
    return CIMultiDict(request.headers.items())


def refusal(headers: CIMultiDict[str], query: dict[str, str] | None = None) -> str | None:
    response = check_signature(headers, query or {})
    if response is None:
        return None
    assert response.status == 403
    assert json.loads(response.body)["message"]
    return response.headers["x-amzn-ErrorType"]


def test_signed_for_mobiletargeting_passes_with_any_credentials() -> None:
    assert refusal(signed("mobiletargeting")) is None


def test_presigned_query_passes() -> None:
    request = AWSRequest(method="GET", url=URL)
    SigV4QueryAuth(Credentials("AKID", "s"), "mobiletargeting", "us-east-1").add_auth(request)
    query = dict(parse_qsl(urlsplit(str(request.url)).query))
    assert refusal(CIMultiDict(), query) is None


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (CIMultiDict(), "MissingAuthenticationTokenException"),
        (signed("s3"), "InvalidSignatureException"),
        (
            CIMultiDict({"Authorization": "AWS4-HMAC-SHA256 Signature=abc"}),
            "IncompleteSignatureException",
        ),
    ],
)
def test_refused(headers: CIMultiDict[str], code: str) -> None:
    assert refusal(headers) == code


def test_the_signer_is_the_access_key_of_the_credential_scope() -> None:
    assert signer(signed("mobiletargeting"), {}, "mobiletargeting") == "AKID"
    assert signer(signed("sts"), {}, "mobiletargeting") == Unsigned("scope")
    assert signer(CIMultiDict(), {}, "sts") == Unsigned("missing")
