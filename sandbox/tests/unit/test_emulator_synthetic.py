"""Synthetic endpoints: Pinpoint's fields, varied values, determinism by seed, a real-like ratio."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from botocore.session import get_session

from pinpoint_export_sandbox.emulator.synthetic import (
    COUNTRIES,
    SyntheticBlock,
    make_endpoint,
    ndjson,
)

APP = "3f9a0c1e5b7d4e2f8a6c0b1d3e5f7a9c"
ROWS = 5000


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return list(SyntheticBlock(APP, seed=3, start=0, count=ROWS, prefix="ep-"))


def test_fields_are_those_of_an_endpoint_response(rows: list[dict[str, Any]]) -> None:
    """Every field of EndpointResponse appears, nested ones too, and no other."""
    model = get_session().get_service_model("pinpoint")
    assert set().union(*rows) == set(model.shape_for("EndpointResponse").members)
    for field, shape in [("Demographic", "EndpointDemographic"), ("Location", "EndpointLocation"),
                         ("User", "EndpointUser")]:  # fmt: skip
        members = set(model.shape_for(shape).members)
        seen = set().union(*(row[field] for row in rows if field in row))
        assert seen <= members and members - seen <= {"ModelVersion"}, field


def test_values_vary(rows: list[dict[str, Any]]) -> None:
    def distinct(field: str) -> int:
        return len({json.dumps(row.get(field), sort_keys=True) for row in rows})

    assert distinct("Address") > 0.99 * ROWS and distinct("CreationDate") == ROWS
    assert distinct("Location") > ROWS / 2 and distinct("User") > ROWS / 2
    assert ROWS / 200 < distinct("RequestId") < ROWS / 50  # a batch import writes 100
    assert {row["Location"]["Country"] for row in rows if "Location" in row} == set(COUNTRIES)
    assert {row["ChannelType"] for row in rows} == {"EMAIL", "SMS", "GCM", "APNS"}
    assert all(row["EffectiveDate"] >= row["CreationDate"] for row in rows)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others() -> None:
    block = SyntheticBlock(APP, seed=11, start=100, count=300, prefix="ep-")
    assert ndjson(block) == ndjson(SyntheticBlock(APP, 11, 100, 300, "ep-"))
    assert ndjson(block) != ndjson(SyntheticBlock(APP, 12, 100, 300, "ep-"))
    assert block.endpoint(150) == make_endpoint(APP, "ep-150", 11, 150)
    assert list(block)[50] == block.endpoint(150)


def test_ndjson_is_one_compact_object_a_line(rows: list[dict[str, Any]]) -> None:
    text = ndjson(rows[:100])
    lines = text.decode().splitlines()
    assert len(lines) == 100 == text.count(b"\n") and text.endswith(b"\n")
    assert [json.loads(line) for line in lines] == rows[:100]
    assert ", " not in lines[0] and '": ' not in lines[0]


def test_gzip_level_6_compresses_it_about_as_much_as_a_real_export() -> None:
    """About 9:1 (a real export: about 10:1); the band keeps it realistic, not trivial."""
    text = ndjson(SyntheticBlock(APP, seed=5, start=0, count=20_000, prefix="ep-"))
    ratio = len(text) / len(gzip.compress(text, compresslevel=6))
    assert 6 < ratio < 14, ratio
