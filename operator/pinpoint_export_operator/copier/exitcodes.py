"""The copier's exit codes (HELP below), and which failures a retry can fix.

The copy Job's `podFailurePolicy` turns them into decisions:

    rules:
    - action: FailJob            # a retry cannot help: fail now, keep backoffLimit for real faults
      onExitCodes: {operator: In, values: [2, 3]}    # PERMANENT_EXIT_CODES
    - action: Count              # everything else (75, 1) is retried within backoffLimit
      onExitCodes: {operator: NotIn, values: [2, 3]}
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
  1   INTERNAL   an unexpected error (a bug); retried within the Job's backoffLimit
  2   USAGE      bad command line (argparse's own code); permanent
  3   PERMANENT  a retry cannot help: missing bucket, access denied, bad credentials, an object
                 whose bytes in S3 are not valid gzip, a full or read-only volume, something
                 planted where the run directory or a file must go, keys that cannot be mapped
  75  RETRYABLE  EX_TEMPFAIL: network, throttling, 5xx, an object changed during the copy, a
                 download that failed verification in transit; a rerun resumes the copy
"""


class CopyError(Exception):
    """A failure the copier understands; `permanent` says whether a rerun could succeed."""

    permanent = False
    reason = "CopyFailed"


class PermanentError(CopyError):
    permanent = True


class CorruptObject(CopyError):
    """A downloaded object is not a complete gzip stream."""

    reason = "CorruptObject"

    def __init__(self, key: str, detail: str, *, permanent: bool) -> None:
        where = "in S3 (its MD5 matches the ETag)" if permanent else "as downloaded"
        super().__init__(f"{key}: not valid gzip {where}: {detail}")
        self.permanent = permanent


class UnmappableKeys(PermanentError):
    reason = "UnmappableKeys"


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
