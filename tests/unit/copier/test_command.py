"""The copier's command line, source URL, byte ranges and termination log (no servers)."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinpoint_export_operator.cli import main as cli_main
from pinpoint_export_operator.copier import command
from pinpoint_export_operator.copier.exitcodes import OK, RETRYABLE, USAGE
from pinpoint_export_operator.copier.source import S3Object, S3Url, make_client, parse_s3_url
from pinpoint_export_operator.copier.transfer import TransferError, _check_range, split

from .fake_s3 import SOURCE, FakeS3


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("s3://bucket/exports/ns/name/run-1/", S3Url("bucket", "exports/ns/name/run-1/")),
        ("s3://bucket/run-1", S3Url("bucket", "run-1/")),  # a folder: never matches run-10/
        ("s3://bucket/", S3Url("bucket", "")),
        ("s3://bucket", S3Url("bucket", "")),
    ],
)
def test_source_urls(url: str, parsed: S3Url) -> None:
    assert parse_s3_url(url) == parsed
    assert str(parsed).startswith("s3://bucket/")


@pytest.mark.parametrize("url", ["https://bucket/p/", "s3:///p/", "bucket/p/", ""])
def test_bad_source_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_s3_url(url)


@pytest.mark.parametrize(
    "argv",
    [
        ["--source", "http://bucket/p/", "--dest", "/data/run-1"],
        ["--source", "s3://bucket/p/", "--dest", "/data/latest"],  # would replace its own link
        ["--source", "s3://bucket/p/", "--dest", "/data/../run-1"],
        ["--source", "s3://bucket/p/", "--dest", "/"],
        ["--source", "s3://bucket/p/", "--dest", "/data/run-1", "--concurrency", "0"],
        ["--source", "s3://bucket/p/", "--dest", "/data/run-1", "--expect-objects", "-1"],
        ["--source", "s3://bucket/p/"],
    ],
)
def test_bad_arguments_exit_with_the_usage_code(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["copy", *argv])
    assert exited.value.code == USAGE


def test_arguments() -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--source", "s3://b/p", "--dest", "run-1", "--decompress"])
    assert args.source == S3Url("b", "p/")
    assert args.dest == Path.cwd() / "run-1"
    assert (args.decompress, args.concurrency, args.part_size) == (True, 8, 16)
    assert args.expect_objects is None
    assert "75" in parser.format_help()  # the exit codes are documented in --help
    assert "--expect-objects N" in parser.format_help()
    args = parser.parse_args(["--source", "s3://b/p", "--dest", "run-1", "--expect-objects=0"])
    assert args.expect_objects == 0


@given(st.integers(1, 10**9), st.integers(0, 200), st.integers(0, 10**9))
def test_ranges_cover_the_object_in_order(part: int, whole_parts: int, tail: int) -> None:
    size = part * whole_parts + tail % part
    ranges = split(size, part)
    assert sum(end - start for start, end in ranges) == size
    assert all(0 < end - start <= part for start, end in ranges)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert not ranges or (ranges[0][0], ranges[-1][1]) == (0, size)


def test_a_response_must_be_exactly_the_range_asked_for() -> None:
    obj = S3Object("k.gz", 100, '"e"')
    _check_range("bytes 10-19/100", 10, 20, obj)
    for wrong in ["", "bytes 0-99/100", "bytes 10-19/101", "bytes 10-18/100"]:
        with pytest.raises(TransferError):
            _check_range(wrong, 10, 20, obj)


def test_termination_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "termination-log"
    command._report(log, '{"files":1}')
    assert log.read_text() == '{"files":1}\n'
    # Outside a pod the default does not exist, and is not created.
    monkeypatch.setattr(command, "DEFAULT_TERMINATION_LOG", tmp_path / "absent")
    command._report(None, "{}")
    assert not (tmp_path / "absent").exists()
    command._report(tmp_path / "no-such-dir" / "log", "{}")  # a warning, not a failure


def test_the_client_assumes_the_role_and_reaches_custom_endpoints_by_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = make_client(
        endpoint_url="http://127.0.0.1:9",
        region="eu-west-1",
        max_connections=3,
        assume_role_arn="arn:aws:iam::123456789012:role/exports-reader",
    )
    credentials = client._request_signer._credentials  # type: ignore[attr-defined]
    assert credentials.method == "assume-role"  # fetched from STS when first used
    config = vars(client.meta.config)  # botocore's stubs do not declare its options
    assert (config["s3"], config["max_pool_connections"]) == ({"addressing_style": "path"}, 3)
    assert client.meta.region_name == "eu-west-1"


def run_command(
    monkeypatch: pytest.MonkeyPatch, s3: FakeS3, dest: Path, *options: str
) -> tuple[int, dict[str, Any]]:
    """Run `copy` on the fake bucket: the exit code and the termination message."""
    monkeypatch.setattr(command, "make_client", lambda **_: s3.client)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    termination_log = dest.parent / "termination-log"
    argv = ["--source", SOURCE, "--dest", str(dest), "--termination-log", str(termination_log)]
    code = command.main(parser.parse_args([*argv, *options]))
    return code, json.loads(termination_log.read_text())


def test_fewer_objects_than_expected_exit_retryable_naming_both_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, report = run_command(monkeypatch, FakeS3(2), tmp_path / "run-1", "--expect-objects=3")
    assert (code, report["error"], report["retryable"]) == (RETRYABLE, "IncompleteListing", True)
    assert "listed 2 " in report["message"] and "at least 3:" in report["message"]
    assert not (tmp_path / "run-1").exists()


def test_a_rerun_of_a_completed_run_reports_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = FakeS3(2)
    code, first = run_command(monkeypatch, s3, tmp_path / "run-1", "--decompress")
    assert code == OK and (first["files"], first["alreadyComplete"]) == (4, False)
    s3.objects.clear()  # expired

    code, again = run_command(monkeypatch, s3, tmp_path / "run-1", "--expect-objects=2")

    assert code == OK
    assert {k: again[k] for k in ("files", "bytes", "objects", "resumed")} == {
        "files": 4,
        "bytes": first["bytes"],
        "objects": 2,
        "resumed": 2,
    }
    assert again["alreadyComplete"] is True
