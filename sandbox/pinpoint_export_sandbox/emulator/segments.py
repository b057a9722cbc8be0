"""Dimensional segments compiled to predicates over endpoints.

Compiling resolves source segments and rejects dimensions the emulator cannot evaluate (so a
segment is never silently wrong); the predicate it returns touches no shared state, so exports
evaluate it in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pinpoint_export_sandbox.emulator.model import bad_request
from pinpoint_export_sandbox.emulator.synthetic import Endpoint

Predicate = Callable[[Endpoint], bool]
Definition = Mapping[str, Any]
# (segment id, version or None for the latest) -> that version's definition
Resolver = Callable[[str, int | None], Definition]

MAX_DEPTH = 5  # source segments nest at most this deep (and cycles stop here)

_SET_DIMENSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Demographic", "Channel"): ("ChannelType",),
    ("Demographic", "Platform"): ("Demographic", "Platform"),
    ("Demographic", "Make"): ("Demographic", "Make"),
    ("Demographic", "Model"): ("Demographic", "Model"),
    ("Demographic", "AppVersion"): ("Demographic", "AppVersion"),
    ("Location", "Country"): ("Location", "Country"),
}
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GREATER_THAN": operator.gt,
    "LESS_THAN": operator.lt,
    "GREATER_THAN_OR_EQUAL": operator.ge,
    "LESS_THAN_OR_EQUAL": operator.le,
    "EQUAL": operator.eq,
}
_COMBINE: dict[str, Callable[[Sequence[Predicate]], Predicate]] = {
    "ALL": lambda ps: lambda ep: all(p(ep) for p in ps),
    "ANY": lambda ps: lambda ep: any(p(ep) for p in ps),
    "NONE": lambda ps: lambda ep: not any(p(ep) for p in ps),
}


def everything(endpoint: Endpoint) -> bool:
    return True


def compile_segment(definition: Definition, resolve: Resolver, depth: int = 0) -> Predicate:
    """A predicate for a segment version: its Dimensions and its SegmentGroups must both hold."""
    if depth > MAX_DEPTH:
        raise bad_request(f"Source segments nest deeper than {MAX_DEPTH} levels")
    predicates = []
    if definition.get("Dimensions"):
        predicates.append(_dimensions(definition["Dimensions"]))
    groups = definition.get("SegmentGroups") or {}
    if groups.get("Groups"):
        compiled = [_group(g, resolve, depth) for g in groups["Groups"]]
        predicates.append(_combine(groups.get("Include", "ALL"), compiled))
    return _COMBINE["ALL"](predicates) if predicates else everything


def _combine(kind: str, predicates: Sequence[Predicate]) -> Predicate:
    return _COMBINE[kind](predicates)


def _group(group: Mapping[str, Any], resolve: Resolver, depth: int) -> Predicate:
    sources = [
        compile_segment(resolve(ref["Id"], ref.get("Version")), resolve, depth + 1)
        for ref in group.get("SourceSegments") or ()
    ]
    dimensions = [_dimensions(d) for d in group.get("Dimensions") or ()]
    predicates = []
    if sources:
        # SourceType NONE is not meaningful for a base audience; Pinpoint offers ALL and ANY.
        predicates.append(_combine(group.get("SourceType", "ANY"), sources))
    if dimensions:
        predicates.append(_combine(group.get("Type", "ALL"), dimensions))
    return _COMBINE["ALL"](predicates) if predicates else everything


def _dimensions(dimensions: Mapping[str, Any]) -> Predicate:
    predicates: list[Predicate] = []
    for name, dimension in (dimensions.get("Attributes") or {}).items():
        predicates.append(_attribute(("Attributes", name), dimension))
    for name, dimension in (dimensions.get("UserAttributes") or {}).items():
        predicates.append(_attribute(("User", "UserAttributes", name), dimension))
    for name, dimension in (dimensions.get("Metrics") or {}).items():
        predicates.append(_metric(("Metrics", name), dimension))
    for group in ("Demographic", "Location"):
        for name, dimension in (dimensions.get(group) or {}).items():
            path = _SET_DIMENSIONS.get((group, name))
            if path is None:
                raise bad_request(f"The emulator does not support the {group}.{name} dimension")
            predicates.append(_set(path, dimension))
    if dimensions.get("Behavior"):
        raise bad_request("The emulator does not support the Behavior dimension")
    return _COMBINE["ALL"](predicates)


def _get(endpoint: Endpoint, path: Sequence[str]) -> Any:
    value: Any = endpoint
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _set(path: Sequence[str], dimension: Mapping[str, Any]) -> Predicate:
    values = frozenset(dimension["Values"])
    inclusive = dimension.get("DimensionType", "INCLUSIVE") == "INCLUSIVE"
    return lambda ep: (_get(ep, path) in values) == inclusive


def _attribute(path: Sequence[str], dimension: Mapping[str, Any]) -> Predicate:
    kind = dimension.get("AttributeType", "INCLUSIVE")
    wanted: list[str] = list(dimension["Values"])
    test: Callable[[str], bool]
    if kind in ("INCLUSIVE", "EXCLUSIVE"):
        test = frozenset(wanted).__contains__
    elif kind == "CONTAINS":
        test = lambda value: any(w in value for w in wanted)  # noqa: E731
    else:
        try:
            test = _date_test(kind, [_parse_date(w) for w in wanted])
        except ValueError:
            raise bad_request(f"{kind} needs ISO 8601 dates, not {wanted}") from None

    def matches(endpoint: Endpoint) -> bool:
        found = any(test(v) for v in _get(endpoint, path) or ())
        return not found if kind == "EXCLUSIVE" else found

    return matches


def _date_test(kind: str, bounds: list[dt.datetime]) -> Callable[[str], bool]:
    arity = 2 if kind == "BETWEEN" else 1
    if kind not in ("BEFORE", "AFTER", "ON", "BETWEEN") or len(bounds) != arity:
        raise bad_request(f"AttributeType {kind} needs {arity} date value(s)")

    def test(value: str) -> bool:
        try:
            when = _parse_date(value)
        except ValueError:
            return False
        if kind == "BEFORE":
            return when < bounds[0]
        if kind == "AFTER":
            return when > bounds[0]
        if kind == "ON":
            return when.date() == bounds[0].date()
        return bounds[0] <= when <= bounds[1]

    return test


def _parse_date(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _metric(path: Sequence[str], dimension: Mapping[str, Any]) -> Predicate:
    compare = _COMPARISONS.get(dimension["ComparisonOperator"])
    if compare is None:
        raise bad_request(f"Invalid ComparisonOperator {dimension['ComparisonOperator']!r}")
    bound = float(dimension["Value"])

    def matches(endpoint: Endpoint) -> bool:
        value = _get(endpoint, path)
        return value is not None and compare(float(value), bound)

    return matches
