"""Segment definitions compiled to predicates over endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from pinpoint_export_sandbox.emulator.model import ApiError
from pinpoint_export_sandbox.emulator.segments import (
    Definition,
    compile_segment,
    everything,
)
from pinpoint_export_sandbox.emulator.synthetic import Endpoint

EMAIL_GOLD: Endpoint = {
    "Id": "a",
    "ChannelType": "EMAIL",
    "Attributes": {"Tier": ["gold"], "Signup": ["2024-03-05T10:00:00Z"]},
    "User": {"UserAttributes": {"Plan": ["pro"]}},
    "Location": {"Country": "DE"},
    "Metrics": {"sessions": 10.0},
}
SMS_SILVER: Endpoint = {
    "Id": "b",
    "ChannelType": "SMS",
    "Attributes": {"Tier": ["silver"], "Signup": ["2023-01-01T00:00:00Z"]},
    "Demographic": {"Platform": "android"},
}
ENDPOINTS = [EMAIL_GOLD, SMS_SILVER]
SEGMENTS: dict[str, list[Definition]] = {
    "email": [{"Dimensions": {"Demographic": {"Channel": {"Values": ["EMAIL"]}}}}],
}


def resolve(segment_id: str, version: int | None) -> Definition:
    if segment_id not in SEGMENTS:
        raise ApiError("NotFoundException", segment_id)
    versions = SEGMENTS[segment_id]
    return versions[-1 if version is None else version - 1]


def selected(definition: dict[str, Any]) -> list[str]:
    predicate = compile_segment(definition, resolve)
    return [e["Id"] for e in ENDPOINTS if predicate(e)]


def dims(**dimensions: Any) -> dict[str, Any]:
    return {"Dimensions": dimensions}


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ({}, ["a", "b"]),
        (dims(Attributes={"Tier": {"Values": ["gold"]}}), ["a"]),
        (dims(Attributes={"Tier": {"AttributeType": "EXCLUSIVE", "Values": ["gold"]}}), ["b"]),
        (dims(Attributes={"Tier": {"AttributeType": "CONTAINS", "Values": ["ilv"]}}), ["b"]),
        (
            dims(Attributes={"Signup": {"AttributeType": "AFTER", "Values": ["2024-01-01"]}}),
            ["a"],
        ),
        (
            dims(Attributes={"Signup": {"AttributeType": "BEFORE", "Values": ["2024-01-01"]}}),
            ["b"],
        ),
        (
            dims(Attributes={"Signup": {"AttributeType": "ON", "Values": ["2024-03-05T23:00Z"]}}),
            ["a"],
        ),
        (
            dims(
                Attributes={
                    "Signup": {
                        "AttributeType": "BETWEEN",
                        "Values": ["2022-01-01T00:00:00Z", "2023-06-01T00:00:00Z"],
                    }
                }
            ),
            ["b"],
        ),
        (dims(UserAttributes={"Plan": {"Values": ["pro"]}}), ["a"]),
        (dims(Demographic={"Channel": {"Values": ["SMS"]}}), ["b"]),
        (dims(Demographic={"Channel": {"DimensionType": "EXCLUSIVE", "Values": ["SMS"]}}), ["a"]),
        (dims(Demographic={"Platform": {"Values": ["android"]}}), ["b"]),
        (dims(Location={"Country": {"Values": ["DE", "FR"]}}), ["a"]),
        (dims(Metrics={"sessions": {"ComparisonOperator": "GREATER_THAN", "Value": 5}}), ["a"]),
        (dims(Metrics={"sessions": {"ComparisonOperator": "LESS_THAN", "Value": 5}}), []),
        (
            # Dimensions of one group are ANDed; ANY ORs them.
            {
                "SegmentGroups": {
                    "Include": "ALL",
                    "Groups": [
                        {
                            "Type": "ANY",
                            "Dimensions": [
                                {"Attributes": {"Tier": {"Values": ["gold"]}}},
                                {"Demographic": {"Channel": {"Values": ["SMS"]}}},
                            ],
                        }
                    ],
                }
            },
            ["a", "b"],
        ),
        (
            {
                "SegmentGroups": {
                    "Include": "NONE",
                    "Groups": [{"Dimensions": [{"Attributes": {"Tier": {"Values": ["gold"]}}}]}],
                }
            },
            ["b"],
        ),
        (
            {"SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": "email", "Version": 1}]}]}},
            ["a"],
        ),
    ],
)
def test_dimensions_select(definition: dict[str, Any], expected: list[str]) -> None:
    assert selected(definition) == expected


def test_no_dimensions_is_everything() -> None:
    assert compile_segment({"Name": "all"}, resolve) is everything


@pytest.mark.parametrize(
    "definition",
    [
        dims(Behavior={"Recency": {"Duration": "DAY_7", "RecencyType": "ACTIVE"}}),
        dims(Location={"GPSPoint": {"Coordinates": {"Latitude": 1, "Longitude": 2}}}),
        dims(Attributes={"Signup": {"AttributeType": "BETWEEN", "Values": ["2024-01-01"]}}),
        dims(Attributes={"Signup": {"AttributeType": "AFTER", "Values": ["yesterday"]}}),
        dims(Metrics={"m": {"ComparisonOperator": "ROUGHLY", "Value": 1}}),
        {"SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": "missing"}]}]}},
    ],
)
def test_what_cannot_be_evaluated_is_refused(definition: dict[str, Any]) -> None:
    with pytest.raises(ApiError):
        compile_segment(definition, resolve)


def test_invalid_dates_on_endpoints_do_not_match() -> None:
    predicate = compile_segment(
        dims(Attributes={"Signup": {"AttributeType": "AFTER", "Values": ["2020-01-01"]}}), resolve
    )
    assert not predicate({"Attributes": {"Signup": ["soon"]}})


def test_self_referencing_segments_stop() -> None:
    SEGMENTS["loop"] = [{"SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": "loop"}]}]}}]
    with pytest.raises(ApiError, match="nest deeper"):
        compile_segment(SEGMENTS["loop"][0], resolve)
