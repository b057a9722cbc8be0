"""Which failures end the copy Job at once (permanent) and which a retry may fix."""

from __future__ import annotations

import errno

import pytest
from botocore import exceptions as botocore_errors

from pinpoint_export_operator.copier.exitcodes import (
    CUT_MARK,
    INTERNAL,
    PERMANENT,
    PERMANENT_EXIT_CODES,
    RETRYABLE,
    USAGE,
    CorruptObject,
    ObjectFailed,
    UnmappableKeys,
    classify,
    clip,
)
from pinpoint_export_operator.copier.transfer import Aborted, TransferError


def client_error(code: str, status: int) -> botocore_errors.ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore_errors.ClientError(response, "GetObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [
        ("NoSuchBucket", 404, PERMANENT),
        ("AccessDenied", 403, PERMANENT),
        ("InvalidAccessKeyId", 403, PERMANENT),
        ("SignatureDoesNotMatch", 403, PERMANENT),
        ("403", 403, PERMANENT),  # HEAD-style errors carry no body
        ("InvalidArgument", 400, PERMANENT),
        ("SlowDown", 503, RETRYABLE),
        ("InternalError", 500, RETRYABLE),
        ("ServiceUnavailable", 503, RETRYABLE),
        ("TooManyRequests", 429, RETRYABLE),
        ("RequestTimeout", 400, RETRYABLE),
        ("PreconditionFailed", 412, RETRYABLE),  # the object changed mid-copy
        ("NoSuchKey", 404, RETRYABLE),  # listed, then gone: list again
        ("ExpiredToken", 400, RETRYABLE),
    ],
)
def test_s3_errors(code: str, status: int, exit_code: int) -> None:
    outcome = classify(client_error(code, status))
    assert (outcome.code, outcome.reason) == (exit_code, code)


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (botocore_errors.EndpointConnectionError(endpoint_url="http://s3"), RETRYABLE),
        (botocore_errors.ReadTimeoutError(endpoint_url="http://s3"), RETRYABLE),
        (botocore_errors.ConnectionClosedError(endpoint_url="http://s3"), RETRYABLE),
        (botocore_errors.ResponseStreamingError(error="reset"), RETRYABLE),
        (botocore_errors.IncompleteReadError(actual_bytes=1, expected_bytes=2), RETRYABLE),
        (botocore_errors.NoCredentialsError(), PERMANENT),
        (botocore_errors.ParamValidationError(report="bad bucket"), PERMANENT),
        (ConnectionResetError(errno.ECONNRESET, "reset"), RETRYABLE),
        (OSError(errno.ENOSPC, "No space left on device"), PERMANENT),
        (OSError(errno.EROFS, "Read-only file system"), PERMANENT),
        (OSError(errno.EACCES, "Permission denied"), PERMANENT),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), PERMANENT),
        (OSError(errno.EIO, "I/O error"), RETRYABLE),
        (CorruptObject("k.gz", "truncated", permanent=True), PERMANENT),
        (CorruptObject("k.gz", "truncated", permanent=False), RETRYABLE),
        (UnmappableKeys("collision"), PERMANENT),
        (TransferError("k.gz", "short body"), RETRYABLE),
        (Aborted(), INTERNAL),  # never the reported error: if it were, that is a bug
        (KeyError("bug"), INTERNAL),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_other_errors(error: BaseException, exit_code: int) -> None:
    outcome = classify(error)
    assert outcome.code == exit_code
    assert outcome.retryable == (exit_code not in PERMANENT_EXIT_CODES)
    assert outcome.message


def test_corrupt_object_message_says_where_the_damage_is() -> None:
    assert "in S3" in str(CorruptObject("k.gz", "truncated", permanent=True))
    assert "as downloaded" in str(CorruptObject("k.gz", "truncated", permanent=False))


def test_the_job_fails_at_once_on_usage_and_permanent_errors_only() -> None:
    assert set(PERMANENT_EXIT_CODES) == {USAGE, PERMANENT}
    assert RETRYABLE == 75 and INTERNAL not in PERMANENT_EXIT_CODES


def test_an_object_failure_exits_as_its_cause_would_with_the_key_in_front() -> None:
    outcome = classify(ObjectFailed("run/a.gz", client_error("AccessDenied", 403)))
    assert (outcome.code, outcome.reason) == (PERMANENT, "AccessDenied")
    assert outcome.message.startswith("'run/a.gz': An error occurred (AccessDenied)")
    outcome = classify(ObjectFailed("run/a.gz", OSError(errno.EIO, "I/O error")))
    assert (outcome.code, outcome.reason) == (RETRYABLE, "IOError")


def test_long_text_is_cut_in_the_middle_with_a_visible_mark() -> None:
    assert clip("short", 5) == "short"
    cut = clip("a" * 50 + "b" * 50, 21)
    assert cut == "a" * 8 + CUT_MARK + "b" * 8
    detail = str(CorruptObject("k" * 2000 + ".gz", "x" * 2000, permanent=True))
    assert len(detail) < 550 and detail.count(CUT_MARK) == 2 and ".gz': " in detail
