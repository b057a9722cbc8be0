"""Reading the project's CRDs and examples, and a small validator for their OpenAPI schemas.

Shared by the CRD tests of both resources; the API server's own validation is exercised in
tests/e2e/test_crd_validation.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "pinpointexports.yaml"
SCHEDULE_CRD_PATH = ROOT / "crds" / "pinpointexportschedules.yaml"
EXAMPLES = ROOT / "examples"
EXPORT_EXAMPLES = ("pinpointexport.yaml", "pinpointexport-segment.yaml")

Schema = dict[str, Any]


@functools.cache
def load_crd(path: Path = CRD_PATH) -> dict[str, Any]:
    """Parsed once per file: the tests only read it."""
    crd: dict[str, Any] = yaml.safe_load(path.read_text())
    return crd


def root_schema(path: Path = CRD_PATH) -> Schema:
    (version,) = load_crd(path)["spec"]["versions"]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node under `schema`, with a path like spec.copy.tolerations[].key."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def named_properties(schema: Schema) -> Iterator[tuple[str, Schema]]:
    for path, node in walk(schema):
        for name, sub in node.get("properties", {}).items():
            yield (f"{path}.{name}" if path else name), sub


# A small validator for the OpenAPI subset the CRD uses, strict about unknown fields as
# `kubectl apply` is. It is no substitute for the API server (no CEL), but it runs in
# milliseconds and tells which example field drifted.


def _type_ok(value: Any, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    expected = schema.get("type")
    checks: dict[str, Any] = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    return expected is None or bool(checks[expected](value))


def validate(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Errors of `value` against `schema`, each naming the field."""
    where = path or "<root>"
    if not _type_ok(value, schema):
        return [f"{where}: expected {schema.get('type', 'int-or-string')}, got {value!r}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: shorter than {schema['minLength']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{where}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict) and schema.get("type") == "object":
        if len(value) > schema.get("maxProperties", len(value)):
            errors.append(f"{where}: more than {schema['maxProperties']} properties")
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}.{name}: required" if path else f"{name}: required")
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for name, item in value.items():
            sub_path = f"{path}.{name}" if path else name
            if name in properties:
                errors += validate(item, properties[name], sub_path)
            elif isinstance(additional, dict):
                errors += validate(item, additional, sub_path)
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and path != "metadata":
                errors.append(f"{sub_path}: unknown field")
    return errors


def load_example(name: str) -> dict[str, Any]:
    documents = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    assert len(documents) == 1, f"{name}: one object per file"
    document: dict[str, Any] = documents[0]
    return document
