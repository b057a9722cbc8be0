"""The copier's exit codes (HELP below), and which failures a retry can fix.

The copy Job's `podFailurePolicy` (exports/copy_job.py) turns them into decisions:

    rules:
    - action: FailJob            # a retry cannot help: fail now, keep backoffLimit for real faults
      onExitCodes: {containerName: copier, operator: In, values: [2, 3]}  # PERMANENT_EXIT_CODES
    - action: Ignore             # an evicted or preempted pod is not the copier's failure
      onPodConditions: [{type: DisruptionTarget}]

Every other exit (75, 1) counts against the Job's backoffLimit and is retried.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from botocore import exceptions as botocore_errors

from pinpoint_export_operator.runtime.errors import is_transient_status

OK = 0
INTERNAL = 1
USAGE = 2
PERMANENT = 3
RETRYABLE = 75

# For the operator's podFailurePolicy (FailJob on these).
PERMANENT_EXIT_CODES = (USAGE, PERMANENT)

HELP = """\
  0   OK         every object copied and verified; manifest.json, _SUCCESS and latest written
                 (or the run was already complete: its recorded summary is reported)
  1   INTERNAL   an unexpected error (a bug); retried within the Job's backoffLimit
  2   USAGE      bad command line (argparse's own code); permanent
  3   PERMANENT  a retry cannot help: missing bucket, access denied, bad credentials, an object
                 whose bytes in S3 are not valid gzip, a full or read-only volume, too little
                 free space for the objects, a destination directory it cannot write
                 (checked before S3 is listed), a symlink on the destination path, something
                 planted where the run directory or a file must go, keys that cannot be mapped
  75  RETRYABLE  EX_TEMPFAIL: network, throttling, 5xx, an object changed during the copy, a
                 download that failed verification in transit, fewer objects listed than
                 --expect-objects (the listing may lag); a rerun resumes the copy
"""


class CopyError(Exception):
    """A failure the copier understands; `permanent` says whether a rerun could succeed."""

    permanent = False
    reason = "CopyFailed"


class PermanentError(CopyError):
    permanent = True


class ObjectError(CopyError):
    """A failure of one object: the message names its S3 key, and stays bounded."""

    def __init__(self, key: str, detail: str) -> None:
        # repr: a hostile key's control characters are shown escaped, never written raw.
        super().__init__(f"{clip(repr(key), KEY_LIMIT)}: {clip(detail, DETAIL_LIMIT)}")
        self.key = key


class CorruptObject(ObjectError):
    """A downloaded object is not a complete gzip stream."""

    reason = "CorruptObject"

    def __init__(self, key: str, detail: str, *, permanent: bool) -> None:
        where = "in S3 (its MD5 matches the ETag)" if permanent else "as downloaded"
        super().__init__(key, f"not valid gzip {where}: {detail}")
        self.permanent = permanent


class ObjectFailed(ObjectError):
    """Another error (S3, network, disk) while copying one object: exits as `cause` would,
    with the object's key in the message."""

    def __init__(self, key: str, cause: Exception) -> None:
        super().__init__(key, str(cause) or type(cause).__name__)
        self.cause = cause


class IncompleteListing(CopyError):
    """Fewer objects listed than expected: S3 listings may lag behind writes."""

    reason = "IncompleteListing"


class UnmappableKeys(PermanentError):
    reason = "UnmappableKeys"


# Bounds of an object's error message: the key (up to 1024 bytes in S3) and the detail are
# each cut in the middle, so both ends stay readable.
KEY_LIMIT = 200
DETAIL_LIMIT = 300
CUT_MARK = "[...]"


def clip(text: str, limit: int) -> str:
    """`text`, or its head and tail around CUT_MARK if it is longer than `limit`."""
    if len(text) <= limit:
        return text
    if limit < len(CUT_MARK):
        return text[:limit]
    kept = limit - len(CUT_MARK)
    return text[: kept - kept // 2] + CUT_MARK + text[len(text) - kept // 2 :]


# S3 error codes that a retry cannot fix, whatever their HTTP status.
_PERMANENT_S3_CODES = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "AuthorizationHeaderMalformed",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "InvalidObjectState",
        "NoSuchBucket",
        "PermanentRedirect",
        "SignatureDoesNotMatch",
    }
)
# 4xx codes that are transient: an object replaced mid-copy (412 on If-Match) or vanished
# (the rerun lists again), expired temporary credentials (refreshed on rerun), timeouts.
_RETRYABLE_S3_CODES = frozenset(
    {
        "ExpiredToken",
        "NoSuchKey",
        "PreconditionFailed",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TokenRefreshRequired",
    }
)
# Local filesystem errors that need a human: full, read-only, forbidden, or something planted
# in the way (a symlink as the run directory, a file where a directory goes, or the reverse).
_PERMANENT_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EDQUOT,
        errno.EEXIST,
        errno.EISDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
        errno.ENOSPC,
        errno.ENOTDIR,
        errno.EPERM,
        errno.EROFS,
    }
)


# Connecting, timeouts, resets, bodies cut short.
_NETWORK_ERRORS = (
    botocore_errors.ConnectionError,
    botocore_errors.HTTPClientError,
    botocore_errors.IncompleteReadError,
)


@dataclass(frozen=True)
class Outcome:
    code: int
    reason: str
    message: str

    @property
    def retryable(self) -> bool:
        return self.code not in PERMANENT_EXIT_CODES


def classify(error: BaseException) -> Outcome:
    """The exit code for an error that ended the copy (pure)."""
    message = str(error) or type(error).__name__
    if isinstance(error, ObjectFailed):
        cause = classify(error.cause)
        return Outcome(cause.code, cause.reason, message)
    if isinstance(error, CopyError):
        return Outcome(PERMANENT if error.permanent else RETRYABLE, error.reason, message)
    if isinstance(error, botocore_errors.ClientError):
        return _classify_client_error(error, message)
    if isinstance(
        error, botocore_errors.NoCredentialsError | botocore_errors.PartialCredentialsError
    ):
        return Outcome(PERMANENT, "NoCredentials", message)
    if isinstance(error, botocore_errors.ParamValidationError | botocore_errors.NoRegionError):
        return Outcome(PERMANENT, "InvalidRequest", message)
    if isinstance(error, _NETWORK_ERRORS):
        return Outcome(RETRYABLE, "NetworkError", message)
    if isinstance(error, OSError):
        if error.errno in _PERMANENT_ERRNOS:
            return Outcome(PERMANENT, "DestinationError", message)
        return Outcome(RETRYABLE, "IOError", message)
    return Outcome(INTERNAL, type(error).__name__, message)


def _classify_client_error(error: botocore_errors.ClientError, message: str) -> Outcome:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    reason = code or f"HTTP{status}"
    if code in _PERMANENT_S3_CODES:
        return Outcome(PERMANENT, reason, message)
    if code in _RETRYABLE_S3_CODES or is_transient_status(status):
        return Outcome(RETRYABLE, reason, message)
    if 400 <= status < 500:
        return Outcome(PERMANENT, reason, message)
    return Outcome(RETRYABLE, reason, message)
