"""STS AssumeRole in the emulator, against botocore's own query serializer and parser, and
through boto3 on the emulator's port."""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from pinpoint_export_sandbox.emulator import Emulator, EmulatorConfig
from pinpoint_export_sandbox.emulator.model import ApiError, WireResponse
from pinpoint_export_sandbox.emulator.query import FORM, pattern_matches
from pinpoint_export_sandbox.emulator.signing import Unsigned
from pinpoint_export_sandbox.emulator.sts import IssuedKeys, SecurityTokenService

ROLE = "arn:aws:iam::210987654321:role/exporters/tenant-a"
sts = SecurityTokenService()
model = sts.protocol.model


def botocore_body(operation: str, params: dict[str, Any]) -> bytes:
    """The form body botocore sends for `params`."""
    serializer = create_serializer("query", include_validation=True)
    request = serializer.serialize_to_request(params, model.operation_model(operation))
    body = request["body"]
    return urlencode(body).encode() if isinstance(body, dict) else bytes(body)


def parse_as_botocore(wire: WireResponse, operation: str = "AssumeRole") -> dict[str, Any]:
    response = {"status_code": wire.status, "headers": wire.headers, "body": wire.body}
    parsed: dict[str, Any] = create_parser("query").parse(
        response, model.operation_model(operation).output_shape
    )
    return parsed


def test_every_parameter_round_trips_from_botocores_serializer() -> None:
    params = {
        "RoleArn": ROLE,
        "RoleSessionName": "team-a.nightly-1",
        "ExternalId": "tenant:42/a=b,c@d.e_f+g-h",
        "DurationSeconds": 900,
        "Tags": [
            {"Key": "pinpoint-export-namespace", "Value": "team-a"},
            {"Key": "k", "Value": ""},
        ],
        "TransitiveTagKeys": ["k"],
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
        "Policy": '{"Version": "2012-10-17"}',
        "SourceIdentity": "alice",
        "ProvidedContexts": [
            {"ProviderArn": "arn:aws:iam::aws:contextProvider/x", "ContextAssertion": "y" * 4}
        ],
    }
    operation, parsed = sts.protocol.parse(botocore_body("AssumeRole", params))
    assert operation.name == "AssumeRole"
    assert parsed == params


def test_empty_lists_are_read_as_botocore_sends_them() -> None:
    _, parsed = sts.protocol.parse(
        botocore_body("AssumeRole", {"RoleArn": ROLE, "RoleSessionName": "ab", "Tags": []})
    )
    assert parsed["Tags"] == []


def test_the_answer_is_what_botocore_parses_from_aws() -> None:
    wire = sts.handle(
        "AKIDBASE", botocore_body("AssumeRole", {"RoleArn": ROLE, "RoleSessionName": "ns.n"}), "r-1"
    )
    assert (wire.status, wire.headers["Content-Type"]) == (200, "text/xml")
    parsed = parse_as_botocore(wire)
    credentials = parsed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA") and len(credentials["AccessKeyId"]) == 20
    assert credentials["SecretAccessKey"] and credentials["SessionToken"]
    remaining = credentials["Expiration"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=59) < remaining <= dt.timedelta(hours=1)
    user = parsed["AssumedRoleUser"]
    assert user["Arn"] == "arn:aws:sts::210987654321:assumed-role/tenant-a/ns.n"
    assert user["AssumedRoleId"].startswith("AROA") and user["AssumedRoleId"].endswith(":ns.n")
    assert parsed["ResponseMetadata"]["RequestId"] == "r-1"


def test_issued_keys_come_with_an_empty_session_token() -> None:
    """The sandbox's S3 server refuses any token sent with its own keys."""
    issuing = SecurityTokenService(IssuedKeys("SANDBOXKEY000001", "secret"))
    body = botocore_body("AssumeRole", {"RoleArn": ROLE, "RoleSessionName": "ns.n"})
    credentials = parse_as_botocore(issuing.handle("AKIDBASE", body, "r-1"))["Credentials"]
    assert (credentials["AccessKeyId"], credentials["SecretAccessKey"]) == (
        "SANDBOXKEY000001",
        "secret",
    )
    assert credentials["SessionToken"] == ""
    assert "secret" not in repr(issuing.issued)


def test_each_call_is_recorded_with_its_caller() -> None:
    recording = SecurityTokenService()
    params = {
        "RoleArn": ROLE,
        "RoleSessionName": "ns.n",
        "ExternalId": "x1",
        "Tags": [{"Key": "a", "Value": "b"}],
    }
    recording.handle("AKIDBASE", botocore_body("AssumeRole", params), "r-1")
    (call,) = recording.calls
    assert call == {
        "RoleArn": ROLE,
        "RoleSessionName": "ns.n",
        "ExternalId": "x1",
        "Tags": [{"Key": "a", "Value": "b"}],
        "DurationSeconds": 3600,
        "CallerAccessKeyId": "AKIDBASE",
        "RequestId": "r-1",
    }
    recording.reset()
    assert not recording.calls


def error_of(wire: WireResponse) -> tuple[int, str, str]:
    error = parse_as_botocore(wire)["Error"]
    return wire.status, error["Code"], error["Message"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"RoleSessionName": "ns.n"},
            "Value null at 'roleArn' failed to satisfy constraint: Member must not be null",
        ),
        (
            {"RoleArn": ROLE, "RoleSessionName": "ns/n"},
            "at 'roleSessionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ),
        (
            {"RoleArn": ROLE, "RoleSessionName": "n" * 65},
            "Member must have length less than or equal to 64",
        ),
        (
            {"RoleArn": ROLE, "RoleSessionName": "ns.n", "ExternalId": "a b"},
            "at 'externalId' failed to satisfy constraint",
        ),
        (
            {"RoleArn": ROLE, "RoleSessionName": "ns.n", "DurationSeconds": 43201},
            "Member must have value less than or equal to 43200",
        ),
        (
            {"RoleArn": ROLE, "RoleSessionName": "ns.n", "Tags": [{"Key": "a#", "Value": "b"}]},
            "at 'tags.1.member.key' failed",
        ),
        (
            {"RoleArn": "arn:aws:s3:::some-bucket-name", "RoleSessionName": "ns.n"},
            "Request ARN is invalid",
        ),
    ],
)
def test_what_sts_refuses_is_refused_in_its_words(params: dict[str, Any], message: str) -> None:
    serializer = create_serializer("query", include_validation=False)  # sent as is
    body = serializer.serialize_to_request(params, model.operation_model("AssumeRole"))["body"]
    status, code, text = error_of(sts.handle("AKIDBASE", urlencode(body).encode(), "r-1"))
    assert (status, code) == (400, "ValidationError")
    assert message in text


def test_two_problems_are_counted() -> None:
    body = urlencode({"Action": "AssumeRole", "Version": "2011-06-15", "RoleSessionName": "x"})
    _, _, text = error_of(sts.handle("AKIDBASE", body.encode(), "r-1"))
    assert text.startswith("2 validation errors detected: ")


@pytest.mark.parametrize(
    "form",
    [
        {"Action": "GetCallerIdentity", "Version": "2011-06-15"},  # modeled, not emulated
        {"Action": "AssumeRole", "Version": "2010-01-01"},
        {"Version": "2011-06-15"},
    ],
)
def test_other_actions_and_versions_are_invalid(form: dict[str, str]) -> None:
    _, code, _ = error_of(sts.handle("AKIDBASE", urlencode(form).encode(), "r-1"))
    assert code == "InvalidAction"


def test_modeled_errors_keep_their_code_and_status() -> None:
    wire = sts.protocol.error(ApiError("RegionDisabledException", "off"), "r-1")
    assert error_of(wire) == (403, "RegionDisabledException", "off")
    wire = sts.protocol.error(ApiError("PackedPolicyTooLargeException", "big"), "r-1")
    assert error_of(wire) == (400, "PackedPolicyTooLarge", "big")


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("missing", 403, "MissingAuthenticationToken"),
        ("incomplete", 400, "IncompleteSignature"),
        ("scope", 403, "SignatureDoesNotMatch"),
    ],
)
def test_unsigned_requests_are_refused_before_sts(kind: Any, status: int, code: str) -> None:
    refusing = SecurityTokenService()
    wire = refusing.handle(
        Unsigned(kind), botocore_body("AssumeRole", {"RoleArn": ROLE, "RoleSessionName": "ab"}), "r"
    )
    assert error_of(wire)[:2] == (status, code)
    assert not refusing.calls


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        ("[\\w+=,.@-]*", ["team-a.nightly", "a_b+c=d,e@f"], ["a/b", "é", "a b"]),  # \w is ASCII
        ("[\\w+=,.@:\\/-]*", ["tenant:42/x"], ["a b", "a#b"]),
        ("[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", ["Équipe a", "team-a", "٣"], ["", "a#b", "a\tb"]),
        ("[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", [""], ["a!"]),
        (
            "[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u0085\\u00A0-\\uD7FF\\uE000-\\uFFFD\\u10000-\\u10FFFF]+",
            ["arn:aws:iam::1:role/x", "\U0001f600"],
            ["", "a\x01"],
        ),
    ],
)
def test_java_patterns_of_the_model_are_read_as_java_reads_them(
    pattern: str, good: list[str], bad: list[str]
) -> None:
    assert all(pattern_matches(pattern, value) for value in good)
    assert not any(pattern_matches(pattern, value) for value in bad)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    keys = IssuedKeys("SANDBOXKEY000001", "sandbox-secret")
    with Emulator(config=EmulatorConfig(sts_keys=keys)) as running:
        yield running


def sts_client(url: str, key: str = "AKIDBASE") -> Any:
    return boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key="s",
    )


def test_boto3_assumes_roles_on_the_emulators_port_beside_pinpoint(emulator: Emulator) -> None:
    emulator.admin.reset()
    answer = sts_client(emulator.url).assume_role(
        RoleArn=ROLE, RoleSessionName="ns.n", ExternalId="x1", Tags=[{"Key": "k", "Value": "v"}]
    )
    assert answer["Credentials"]["AccessKeyId"] == "SANDBOXKEY000001"
    pinpoint = boto3.client(
        "pinpoint",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id=answer["Credentials"]["AccessKeyId"],
        aws_secret_access_key=answer["Credentials"]["SecretAccessKey"],
    )
    pinpoint.get_apps()
    (call,) = emulator.admin.sts_calls()
    assert (call["RoleArn"], call["RoleSessionName"], call["ExternalId"]) == (ROLE, "ns.n", "x1")
    assert (call["Tags"], call["CallerAccessKeyId"]) == ([{"Key": "k", "Value": "v"}], "AKIDBASE")
    # STS is not a Pinpoint operation: the counters do not see it.
    assert emulator.admin.counters() == {"GetApps": 1}
    emulator.admin.reset(state=False, faults=False)
    assert emulator.admin.sts_calls() == []


def test_a_pinpoint_signature_is_refused_by_sts(emulator: Emulator) -> None:
    body = botocore_body("AssumeRole", {"RoleArn": ROLE, "RoleSessionName": "ns.n"})
    request = AWSRequest("POST", emulator.url + "/", data=body, headers={"Content-Type": FORM})
    SigV4Auth(Credentials("AKIDBASE", "s"), "mobiletargeting", "us-east-1").add_auth(request)
    prepared = request.prepare()
    sent = urllib.request.Request(
        prepared.url, data=body, headers=dict(prepared.headers), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(sent, timeout=10)
    assert refused.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in refused.value.read()


def test_the_emulator_names_its_sts_endpoint(emulator: Emulator) -> None:
    assert emulator.env()["AWS_ENDPOINT_URL_STS"] == emulator.url
