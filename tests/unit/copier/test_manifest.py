"""manifest.json and the termination-message summary."""

from __future__ import annotations

import json

from pinpoint_export_operator.copier.manifest import (
    TERMINATION_LOG_LIMIT,
    FileRecord,
    build_manifest,
    failure,
    manifest_bytes,
    parse_manifest,
    pieces,
    summary,
)

A = FileRecord("b.gz", 10, "ab" * 32, "run/b.gz", "e1", lines=3)
B = FileRecord("a.gz", 20, "cd" * 32, "run/a.gz", "e2", lines=5)
B_PLAIN = FileRecord("a.jsonl", 70, "ef" * 32, "run/a.gz", "e2", decompressed_from="a.gz", lines=5)


def test_manifest_lists_files_by_name_with_totals() -> None:
    manifest = build_manifest("s3://bucket/run/", [A, B_PLAIN, B])
    assert manifest["source"] == "s3://bucket/run/"
    assert [f["name"] for f in manifest["files"]] == ["a.gz", "a.jsonl", "b.gz"]
    assert manifest["files"][0] == {
        "name": "a.gz",
        "bytes": 20,
        "sha256": "cd" * 32,
        "source": "run/a.gz",
        "etag": "e2",
        "lines": 5,
    }
    assert manifest["files"][1]["decompressedFrom"] == "a.gz"
    # Lines are the endpoints of the pieces: a .jsonl repeats its .gz, and is not added.
    assert manifest["totals"] == {"files": 3, "bytes": 100, "lines": 8}


def test_manifest_is_the_same_bytes_whatever_the_order() -> None:
    one = manifest_bytes(build_manifest("s3://b/p/", [A, B, B_PLAIN]))
    two = manifest_bytes(build_manifest("s3://b/p/", [B_PLAIN, B, A]))
    assert one == two and one.endswith(b"\n")
    assert json.loads(one)["version"] == 1


def test_an_empty_export_has_an_empty_manifest() -> None:
    assert build_manifest("s3://b/p/", [])["totals"] == {"files": 0, "bytes": 0, "lines": 0}


def test_a_manifest_written_before_lines_were_counted_is_still_valid() -> None:
    older = [FileRecord("a.gz", 20, "cd" * 32, "run/a.gz", "e2")]
    manifest = build_manifest("s3://b/p/", older)
    assert "lines" not in manifest["files"][0] and "lines" not in manifest["totals"]
    assert parse_manifest(manifest_bytes(manifest), "s3://b/p/") == manifest
    assert json.loads(summary(manifest, objects=1, resumed=1, seconds=0.0))["lines"] is None


def test_summary_is_one_json_line() -> None:
    line = summary(build_manifest("s3://b/p/", [A, B]), objects=2, resumed=1, seconds=1.23456)
    assert "\n" not in line
    assert json.loads(line) == {
        "files": 2,
        "bytes": 30,
        "lines": 8,
        "objects": 2,
        "resumed": 1,
        "alreadyComplete": False,
        "seconds": 1.235,
        "manifest": "manifest.json",
    }


def test_a_manifest_read_back_is_trusted_only_as_written() -> None:
    manifest = build_manifest("s3://b/p/", [A, B, B_PLAIN])
    data = manifest_bytes(manifest)
    assert parse_manifest(data, "s3://b/p/") == manifest and pieces(manifest) == 2
    assert parse_manifest(data, "s3://b/other/") is None  # another run's
    tampered = data.replace(b'"bytes": 100', b'"bytes": 101')
    assert tampered != data
    for wrong in [tampered, data[:-20], b"[]", b'{"files": [1]}', b"\xff"]:
        assert parse_manifest(wrong, "s3://b/p/") is None, wrong


def test_failure_line_fits_the_termination_log() -> None:
    line = failure(
        code=3, reason="NoSuchBucket", message="\U0001f4a5" * 5000, retryable=False, seconds=0.5
    )
    data = json.loads(line)
    assert len(line) <= TERMINATION_LOG_LIMIT and "\n" not in line
    assert (data["error"], data["exitCode"], data["retryable"]) == ("NoSuchBucket", 3, False)
    assert data["message"].startswith("\U0001f4a5")
