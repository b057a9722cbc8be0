"""The emulator's protocol layer against botocore's own serializer and parser."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from pinpoint_export_sandbox.emulator.model import ApiError, Protocol, WireResponse
from pinpoint_export_sandbox.emulator.state import Pinpoint

protocol = Protocol()
model = protocol.model


def botocore_request(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The request botocore would send for `params` (path, query, headers, body)."""
    serializer = create_serializer("rest-json", include_validation=True)
    request: dict[str, Any] = serializer.serialize_to_request(
        params, model.operation_model(operation)
    )
    return request


def parse_as_botocore(operation: str, wire: WireResponse) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in wire.headers.items()}  # as botocore hands them over
    response = {"status_code": wire.status, "headers": headers, "body": wire.body}
    shape = model.operation_model(operation).output_shape
    assert shape is not None
    parsed: dict[str, Any] = create_parser("rest-json").parse(response, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def roundtrip(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    request = botocore_request(operation, params)
    op, labels = protocol.route(request["method"], request["url_path"])
    assert op.name == operation
    query = {k: v if isinstance(v, list) else [v] for k, v in request["query_string"].items()}
    return protocol.parse(op, labels, query, request["headers"], request["body"] or b"")


@pytest.mark.parametrize("operation", Pinpoint.OPERATIONS)
def test_every_operation_routes_from_its_request_uri(operation: str) -> None:
    http = model.operation_model(operation).http
    path = re.sub(r"\{[^}]+\}", "x1", http["requestUri"])
    op, labels = protocol.route(http["method"], path)
    assert op.name == operation
    assert set(labels.values()) <= {"x1"}


def test_wrong_method_and_unknown_paths() -> None:
    with pytest.raises(ApiError) as error:
        protocol.route("PATCH", "/v1/apps/abc/jobs/export")
    assert error.value.code == "MethodNotAllowedException"
    with pytest.raises(ApiError) as error:
        protocol.route("GET", "/v2/nothing")
    assert error.value.code == "NotFoundException"


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        (
            "CreateExportJob",
            {
                "ApplicationId": "a" * 32,
                "ExportJobRequest": {
                    "RoleArn": "arn:aws:iam::123456789012:role/r",
                    "S3UrlPrefix": "s3://b/p/",
                    "SegmentId": "s",
                    "SegmentVersion": 3,
                },
            },
        ),
        ("GetExportJobs", {"ApplicationId": "a" * 32, "PageSize": "5", "Token": "t0"}),
        (
            "UpdateEndpoint",
            {
                "ApplicationId": "a" * 32,
                "EndpointId": "id with/slash&amp",
                "EndpointRequest": {
                    "ChannelType": "EMAIL",
                    "Address": "x@example.com",
                    "Attributes": {"Tier": ["gold"]},
                    "Location": {"Latitude": 1.5, "Country": "DE"},
                    "Metrics": {"m": 2.0},
                    "User": {"UserId": "u", "UserAttributes": {"k": ["v"]}},
                },
            },
        ),
        ("CreateApp", {"CreateApplicationRequest": {"Name": "n", "tags": {"team": "x"}}}),
        ("GetSegmentVersion", {"ApplicationId": "a", "SegmentId": "s", "Version": "2"}),
    ],
)
def test_parse_inverts_botocores_serializer(operation: str, params: dict[str, Any]) -> None:
    assert roundtrip(operation, params) == params


def test_parse_rejects_what_the_service_rejects() -> None:
    op = model.operation_model("CreateExportJob")
    labels = {"application-id": "a"}
    cases = {
        b'{"RoleArn": "r"}': "S3UrlPrefix",  # a required member is missing
        b"{not json": "json",
        b'{"RoleArn": "r", "S3UrlPrefix": "s", "SegmentVersion": "x"}': "SegmentVersion",
    }
    for body, mentioned in cases.items():
        with pytest.raises(ApiError) as error:
            protocol.parse(op, labels, {}, {}, body)
        assert error.value.code == "BadRequestException"
        assert mentioned in error.value.message
    update = model.operation_model("UpdateEndpoint")
    labels = {"application-id": "a", "endpoint-id": "e"}
    with pytest.raises(ApiError, match="must be one of"):
        protocol.parse(update, labels, {}, {}, b'{"ChannelType": "PIGEON"}')


def test_serialize_is_what_botocore_parses() -> None:
    job = {
        "ApplicationId": "a",
        "CreationDate": "2024-01-01T00:00:00.000Z",
        "Definition": {"RoleArn": "r", "S3UrlPrefix": "s3://b/"},
        "Id": "j",
        "JobStatus": "COMPLETED",
        "Type": "EXPORT",
        "TotalPieces": 2,
        "Failures": ["x"],
    }
    wire = protocol.serialize(model.operation_model("CreateExportJob"), {"ExportJobResponse": job})
    assert wire.status == 202
    assert parse_as_botocore("CreateExportJob", wire) == {"ExportJobResponse": job}
    message = {"MessageBody": {"Message": "Accepted", "RequestID": "r"}}
    wire = protocol.serialize(model.operation_model("UpdateEndpoint"), message)
    assert (wire.status, parse_as_botocore("UpdateEndpoint", wire)) == (202, message)


def test_serialize_refuses_responses_missing_required_members() -> None:
    with pytest.raises(ValueError, match="JobStatus"):
        protocol.serialize(
            model.operation_model("GetExportJob"), {"ExportJobResponse": {"Id": "j"}}
        )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("BadRequestException", 400),
        ("ForbiddenException", 403),
        ("NotFoundException", 404),
        ("MethodNotAllowedException", 405),
        ("PayloadTooLargeException", 413),
        ("TooManyRequestsException", 429),
        ("InternalServerErrorException", 500),
    ],
)
def test_errors_carry_the_models_status_and_type(code: str, status: int) -> None:
    wire = protocol.error(ApiError(code, "went wrong"), "req-1")
    assert wire.status == status
    parsed = parse_as_botocore("GetApp", wire)
    assert parsed["Error"] == {"Code": code, "Message": "went wrong"}
    assert json.loads(wire.body) == {"Message": "went wrong", "RequestID": "req-1"}
