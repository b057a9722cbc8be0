"""Pinpoint's rest-json protocol, driven by botocore's own service model.

Routing comes from each operation's `http.method` / `http.requestUri`, requests are parsed by the
input shape's member locations (uri, querystring, header, payload or body) and responses are
serialised from the output shape, so the wire format is exactly what botocore expects. Nothing
here knows about aiohttp: it maps plain request parts to parameters and parameters to bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import http
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StringShape, StructureShape
from botocore.utils import parse_timestamp
from botocore.validate import ParamValidator

SERVICE_NAME = "pinpoint"
Params = dict[str, Any]


@functools.cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


class ApiError(Exception):
    """A modeled Pinpoint error (`code` names an exception shape, e.g. NotFoundException)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError("BadRequestException", message)


def not_found(message: str) -> ApiError:
    return ApiError("NotFoundException", message)


@dataclass(frozen=True)
class WireResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Route:
    operation: OperationModel
    pattern: re.Pattern[str]
    labels: tuple[str, ...]
    literals: int  # more literal path segments win when two templates match


@dataclass
class Protocol:
    model: ServiceModel = field(default_factory=service_model)

    def __post_init__(self) -> None:
        routes = [self._compile(self.model.operation_model(n)) for n in self.model.operation_names]
        self._routes = sorted(routes, key=lambda r: -r.literals)
        self._validator = ParamValidator()

    @staticmethod
    def _compile(operation: OperationModel) -> _Route:
        template = operation.http["requestUri"].split("?", 1)[0]
        labels: list[str] = []
        parts: list[str] = []
        literals = 0
        for segment in template.strip("/").split("/"):
            label = re.fullmatch(r"\{([^}+]+)(\+?)\}", segment)
            if label:
                labels.append(label.group(1))
                parts.append("(.+)" if label.group(2) else "([^/]+)")
            else:
                literals += 1
                parts.append(re.escape(segment))
        pattern = re.compile("/" + "/".join(parts) + "/?")
        return _Route(operation, pattern, tuple(labels), literals)

    def route(self, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]]:
        """The operation for a request, and its URI labels decoded from the raw path."""
        for route in self._routes:
            if route.operation.http["method"] != method:
                continue
            match = route.pattern.fullmatch(raw_path)
            if match is not None:
                values = (unquote(v) for v in match.groups())
                return route.operation, dict(zip(route.labels, values, strict=True))
        if any(route.pattern.fullmatch(raw_path) for route in self._routes):
            raise ApiError("MethodNotAllowedException", f"{method} is not allowed on {raw_path}")
        raise not_found(f"No resource matches {method} {raw_path}")

    def parse(
        self,
        operation: OperationModel,
        labels: Mapping[str, str],
        query: Mapping[str, Sequence[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Params:
        """Request parts -> botocore-style parameters, validated against the input shape."""
        shape = operation.input_shape
        if shape is None:
            return {}
        lower_headers = {k.lower(): v for k, v in headers.items()}
        params: Params = {}
        claimed_query: set[str] = set()
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri" and wire in labels:
                params[name] = _from_text(member, labels[wire])
            elif location == "querystring" and member.type_name == "map":
                continue  # collects whatever the named members leave, below
            elif location == "querystring" and wire in query:
                claimed_query.add(wire)
                values = query[wire]
                if member.type_name == "list":
                    params[name] = [_from_text(member.member, v) for v in values]  # type: ignore[attr-defined]
                else:
                    params[name] = _from_text(member, values[-1])
            elif location == "header" and wire.lower() in lower_headers:
                params[name] = _from_text(member, lower_headers[wire.lower()])
        for name, member in shape.members.items():
            if member.serialization.get("location") == "querystring" and member.type_name == "map":
                rest = {k: v[-1] for k, v in query.items() if k not in claimed_query}
                if rest:
                    params[name] = rest
        params.update(self._parse_body(shape, body))
        report = self._validator.validate(params, shape)
        if report.has_errors():
            raise bad_request(report.generate_report())
        return params

    @staticmethod
    def _parse_body(shape: StructureShape, body: bytes) -> Params:
        payload = shape.serialization.get("payload")
        if payload is not None:
            member = shape.members[payload]
            if member.type_name in ("blob", "string"):
                return (
                    {payload: body if member.type_name == "blob" else body.decode()} if body else {}
                )
        if not body.strip():
            return {}
        try:
            document = json.loads(body)
        except ValueError as error:
            raise bad_request(f"Could not parse request body into json: {error}") from None
        if payload is not None:
            return {payload: _from_wire(shape.members[payload], document)}
        body_members = {n: m for n, m in shape.members.items() if "location" not in m.serialization}
        parsed = _from_wire(shape, document) if isinstance(document, dict) else {}
        return {n: v for n, v in parsed.items() if n in body_members}

    def serialize(self, operation: OperationModel, output: Params) -> WireResponse:
        """Output parameters -> status, headers and JSON body, as the real service sends them."""
        shape = operation.output_shape
        status = int(operation.http.get("responseCode", 200))
        headers = {"Content-Type": "application/json"}
        if shape is None:
            return WireResponse(status, headers, b"{}")
        # A response that does not fit its own shape is an emulator bug: fail loudly, not subtly.
        report = self._validator.validate(output, shape)
        if report.has_errors():
            raise ValueError(
                f"{operation.name} response does not fit its shape: {report.generate_report()}"
            )
        payload = shape.serialization.get("payload")
        document: Any = {}
        for name, member in shape.members.items():
            if name not in output:
                continue
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "header":
                headers[wire] = _to_text(member, output[name])
            elif location == "headers":
                headers.update({wire + k: str(v) for k, v in output[name].items()})
            elif location == "statusCode":
                status = int(output[name])
            elif payload == name:
                document = _to_wire(member, output[name])
            elif payload is None:
                document[wire] = _to_wire(member, output[name])
        return WireResponse(status, headers, json.dumps(document).encode())

    def error(self, error: ApiError, request_id: str) -> WireResponse:
        """A modeled error: the shape's status code, its body members and the error-type header."""
        shape = self.model.shape_for(error.code)
        status = int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        body = _to_wire(shape, {"Message": error.message, "RequestID": request_id})
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
        return WireResponse(status, headers, json.dumps(body).encode())


def unmodeled_error(status: int, code: str, message: str) -> WireResponse:
    """An error from AWS's front door (authentication), which no service model describes."""
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    return WireResponse(status, headers, json.dumps({"message": message}).encode())


def gateway_error(status: int) -> WireResponse:
    """A load balancer's bare error page: botocore reports the status itself as the code."""
    page = f"<html><body><h1>{status} {http.HTTPStatus(status).phrase}</h1></body></html>"
    return WireResponse(status, {"Content-Type": "text/html"}, page.encode())


def _from_text(shape: Shape, text: str) -> Any:
    """A scalar from a URI label, query value or header."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if kind == "timestamp":
            return parse_timestamp(text)
    except ValueError:
        raise bad_request(f"Invalid {kind} value: {text!r}") from None
    return _check_enum(shape, text)


def _from_wire(shape: Shape, value: Any) -> Any:
    """A JSON document -> parameters. Values of the wrong type pass through for the validator."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {
            name: _from_wire(member, value[wire])
            for name, member in members.items()
            if value.get(wire := member.serialization.get("name", name)) is not None
        }
    if kind == "list" and isinstance(value, list):
        return [_from_wire(shape.member, item) for item in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {k: _from_wire(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "timestamp" and isinstance(value, str | int | float):
        return parse_timestamp(str(value))
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise bad_request("Invalid base64 blob") from None
    if kind == "string" and isinstance(value, str):
        return _check_enum(shape, value)
    return value


def enum_values(shape_name: str) -> tuple[str, ...]:
    shape = service_model().shape_for(shape_name)
    return tuple(shape.enum) if isinstance(shape, StringShape) else ()


def _check_enum(shape: Shape, value: str) -> str:
    # botocore does not check enums on the client, so the service must.
    if isinstance(shape, StringShape) and shape.enum and value not in shape.enum:
        raise bad_request(f"Invalid value {value!r}: must be one of {', '.join(shape.enum)}")
    return value


def _to_wire(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        return {
            member.serialization.get("name", name): _to_wire(member, value[name])
            for name, member in members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [_to_wire(shape.member, item) for item in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {k: _to_wire(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "timestamp":
        return _timestamp(value, shape.serialization.get("timestampFormat", "unixTimestamp"))
    if kind == "blob":
        return base64.b64encode(value).decode()
    if kind in ("float", "double"):
        return float(value)
    return value


def _to_text(shape: Shape, value: Any) -> str:
    if shape.type_name == "timestamp":
        return str(_timestamp(value, shape.serialization.get("timestampFormat", "rfc822")))
    if shape.type_name == "boolean":
        return "true" if value else "false"
    return str(value)


def iso8601(value: dt.datetime) -> str:
    """AWS's ISO 8601 form: UTC, milliseconds, `Z`."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _timestamp(value: dt.datetime, fmt: str) -> str | float:
    value = value.astimezone(dt.UTC)
    if fmt == "iso8601":
        return iso8601(value)
    if fmt == "rfc822":
        return value.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return value.timestamp()
