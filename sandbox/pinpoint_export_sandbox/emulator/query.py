"""AWS's query protocol (STS's), driven by botocore's own service model.

A request is a form-encoded POST to `/` naming its `Action` and `Version`; its parameters are
read by the input shape (lists as `Name.member.N`, maps as `Name.entry.N.key`), checked
against the shape's constraints as the service checks them (`ValidationError` naming the
member), and answers are XML serialised from the output shape inside `<Action>Response` and
its result wrapper, so botocore's query parser reads exactly what it reads from AWS. Like
`model` for rest-json, nothing here knows about aiohttp.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape
from botocore.validate import ParamValidator

from pinpoint_export_sandbox.emulator.model import ApiError, WireResponse, iso8601

Params = dict[str, Any]
FORM = "application/x-www-form-urlencoded"
_MISSING = object()


@functools.cache
def load_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationError", message)


@dataclass
class QueryProtocol:
    """One query-protocol service (e.g. `sts`): its actions, parameters, answers and errors."""

    model: ServiceModel
    emulated: Sequence[str] = ()  # actions served; the model's others are refused
    _validator: ParamValidator = field(default_factory=ParamValidator, init=False)

    def parse(self, body: bytes) -> tuple[OperationModel, Params]:
        """A form body -> the operation and its parameters, checked as the service checks."""
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action, version = form.pop("Action", ""), form.pop("Version", "")
        if version != self.model.api_version or action not in self.emulated:
            raise ApiError(
                "InvalidAction", f"Could not find operation {action} for version {version}"
            )
        operation = self.model.operation_model(action)
        if operation.input_shape is None:
            return operation, {}
        params = _from_form(operation.input_shape, "", form)
        problems = _constraint_problems(operation.input_shape, params, "")
        if problems:
            count = len(problems)
            noun = "error" if count == 1 else "errors"
            raise validation_error(f"{count} validation {noun} detected: {'; '.join(problems)}")
        return operation, params

    def serialize(self, operation: OperationModel, output: Params, request_id: str) -> WireResponse:
        """`<Action>Response><ActionResult>…</ActionResult><ResponseMetadata>…`."""
        root = self._root(f"{operation.name}Response")
        shape = operation.output_shape
        if shape is not None:
            # An answer that does not fit its own shape is an emulator bug: fail loudly.
            report = self._validator.validate(output, shape)
            if report.has_errors():
                raise ValueError(f"{operation.name} answer does not fit its shape: {report}")
            wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
            _to_xml(ElementTree.SubElement(root, wrapper), shape, output)
        metadata = ElementTree.SubElement(root, "ResponseMetadata")
        ElementTree.SubElement(metadata, "RequestId").text = request_id
        return WireResponse(200, {"Content-Type": "text/xml"}, ElementTree.tostring(root))

    def error(self, error: ApiError, request_id: str, status: int | None = None) -> WireResponse:
        """`<ErrorResponse><Error>…`: a modeled error's code and status, else `status` or 400."""
        code, status = error.code, status or 400
        for shape in self.model.error_shapes:
            if error.code in (shape.name, shape.metadata.get("error", {}).get("code")):
                code = shape.metadata.get("error", {}).get("code", shape.name)
                status = int(shape.metadata.get("error", {}).get("httpStatusCode", status))
        root = self._root("ErrorResponse")
        body = ElementTree.SubElement(root, "Error")
        ElementTree.SubElement(body, "Type").text = "Sender" if status < 500 else "Receiver"
        ElementTree.SubElement(body, "Code").text = code
        ElementTree.SubElement(body, "Message").text = error.message
        ElementTree.SubElement(root, "RequestId").text = request_id
        return WireResponse(status, {"Content-Type": "text/xml"}, ElementTree.tostring(root))

    def _root(self, name: str) -> ElementTree.Element:
        return ElementTree.Element(name, xmlns=self.model.metadata["xmlNamespace"])


def _from_form(shape: Shape, prefix: str, form: Mapping[str, str]) -> Any:
    """The value at `prefix` (a member's wire name, dotted), or _MISSING."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        found = {}
        for name, member in members.items():
            wire = member.serialization.get("name", name)
            value = _from_form(member, f"{prefix}.{wire}" if prefix else wire, form)
            if value is not _MISSING:
                found[name] = value
        return found if found or not prefix else _MISSING
    if kind in ("list", "map"):
        if form.get(prefix) == "":
            return [] if kind == "list" else {}  # how botocore sends an empty one
        if kind == "list":
            member = shape.member  # type: ignore[attr-defined]
            flattened = shape.serialization.get("flattened", False)
            base = prefix if flattened else f"{prefix}.{member.serialization.get('name', 'member')}"
            items = _numbered(base, lambda at: _from_form(member, at, form))
            return items or _MISSING
        entries = _numbered(
            f"{prefix}.entry",
            lambda at: (
                (key, _from_form(shape.value, f"{at}.value", form))  # type: ignore[attr-defined]
                if (key := form.get(f"{at}.key")) is not None
                else _MISSING
            ),
        )
        return dict(entries) or _MISSING
    if prefix not in form:
        return _MISSING
    return _scalar(shape, form[prefix], prefix)


def _numbered(base: str, read: Callable[[str], Any]) -> list[Any]:
    """`base.1`, `base.2`, … until one is missing."""
    items: list[Any] = []
    while (item := read(f"{base}.{len(items) + 1}")) is not _MISSING:
        items.append(item)
    return items


def _scalar(shape: Shape, text: str, where: str) -> Any:
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
            return dt.datetime.fromisoformat(text)
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except ValueError:
        raise validation_error(f"Value '{text}' at '{where}' is not a valid {kind}") from None
    return text


def _member_path(prefix: str, name: str) -> str:
    """AWS names members in lowerCamelCase: `roleSessionName`, `tags.1.member.key`."""
    member = name[:1].lower() + name[1:]
    return f"{prefix}.{member}" if prefix else member


def _constraint_problems(shape: StructureShape, params: Params, prefix: str) -> list[str]:
    """Each broken constraint, worded as AWS words it."""
    problems = []
    for name, member in shape.members.items():
        where = _member_path(prefix, name)
        if name not in params:
            if name in shape.required_members:
                problems.append(
                    f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
                )
            continue
        problems += _value_problems(member, params[name], where)
    return problems


def _value_problems(shape: Shape, value: Any, where: str) -> list[str]:
    meta = shape.metadata
    kind = shape.type_name
    constraint = f"Value '{value}' at '{where}' failed to satisfy constraint: Member must"
    if kind == "structure" and isinstance(value, dict):
        return _constraint_problems(shape, value, where)  # type: ignore[arg-type]
    problems = []
    if kind in ("string", "list", "map") and isinstance(value, str | list | dict):
        size = len(value)
        if "min" in meta and size < meta["min"]:
            problems.append(f"{constraint} have length greater than or equal to {meta['min']}")
        if "max" in meta and size > meta["max"]:
            problems.append(f"{constraint} have length less than or equal to {meta['max']}")
    if kind == "string" and isinstance(value, str):
        if "pattern" in meta and not pattern_matches(meta["pattern"], value):
            problems.append(f"{constraint} satisfy regular expression pattern: {meta['pattern']}")
        if shape.enum and value not in shape.enum:  # type: ignore[attr-defined]
            problems.append(f"{constraint} satisfy enum value set: [{', '.join(shape.enum)}]")  # type: ignore[attr-defined]
    if kind in ("integer", "long") and isinstance(value, int):
        if "min" in meta and value < meta["min"]:
            problems.append(f"{constraint} have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{constraint} have value less than or equal to {meta['max']}")
    if kind == "list" and isinstance(value, list):
        for number, item in enumerate(value, 1):
            problems += _value_problems(shape.member, item, f"{where}.{number}.member")  # type: ignore[attr-defined]
    return problems


# The models' patterns are Java's: `\w` is ASCII, `\uXXXXX` may have five or six digits, and
# `\p{L}`-style Unicode categories appear in tag patterns. Python's `re` has no `\p`, so those
# (always one bracketed class with `+` or `*`) are checked a character at a time.
_LONG_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{5,6})(?![0-9A-Fa-f])")
_CATEGORY = re.compile(r"\\p\{(\w)\}")
_ONE_CLASS = re.compile(r"\[(.*)\]([*+])")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    python = _LONG_ESCAPE.sub(lambda m: f"\\U{int(m.group(1), 16):08X}", pattern)
    return re.compile(python, re.ASCII)


def pattern_matches(pattern: str, value: str) -> bool:
    """Whether `value` matches a service model's `pattern`, as the service (Java) reads it."""
    categories = tuple(_CATEGORY.findall(pattern))
    if not categories:
        return _compiled(pattern).fullmatch(value) is not None
    one_class = _ONE_CLASS.fullmatch(_CATEGORY.sub("", pattern))
    if one_class is None:
        raise ValueError(f"unsupported pattern {pattern!r}")
    rest = _compiled(f"[{one_class.group(1)}]")
    if one_class.group(2) == "+" and not value:
        return False
    return all(
        unicodedata.category(char)[0] in categories or rest.fullmatch(char) for char in value
    )


def _to_xml(element: ElementTree.Element, shape: Shape, value: Any) -> None:
    kind = shape.type_name
    if kind == "structure":
        for name, member in shape.members.items():  # type: ignore[attr-defined]
            if value.get(name) is not None:
                child = ElementTree.SubElement(element, member.serialization.get("name", name))
                _to_xml(child, member, value[name])
    elif kind == "list":
        member = shape.member  # type: ignore[attr-defined]
        for item in value:
            child = ElementTree.SubElement(element, member.serialization.get("name", "member"))
            _to_xml(child, member, item)
    elif kind == "map":
        for key, item in value.items():
            entry = ElementTree.SubElement(element, "entry")
            ElementTree.SubElement(entry, "key").text = key
            _to_xml(ElementTree.SubElement(entry, "value"), shape.value, item)  # type: ignore[attr-defined]
    elif kind == "timestamp":
        element.text = iso8601(value)
    elif kind == "boolean":
        element.text = "true" if value else "false"
    elif kind == "blob":
        element.text = base64.b64encode(value).decode()
    else:
        element.text = str(value)
