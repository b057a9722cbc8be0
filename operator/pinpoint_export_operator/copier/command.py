"""`pinpoint-export-operator copy`: copy a finished export's pieces from S3 to a run directory.

The program of the copy Job. Credentials and endpoint come from the standard boto3 chain
(AWS_ACCESS_KEY_ID..., AWS_ENDPOINT_URL_S3, IRSA); only the run directory is written, so a
read-only root filesystem and a non-root user are fine. The last line on stdout, and the
termination log, is a one-line JSON summary.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pinpoint_export_operator.copier import exitcodes
from pinpoint_export_operator.copier.layout import LATEST
from pinpoint_export_operator.copier.manifest import failure, summary
from pinpoint_export_operator.copier.pipeline import MiB, Options, copy_run
from pinpoint_export_operator.copier.source import S3Url, make_client, parse_s3_url

log = logging.getLogger(__name__)

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")  # AssumeRole's RoleSessionName


def _s3_url(value: str) -> S3Url:
    try:
        return parse_s3_url(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run_dir(value: str) -> Path:
    path = Path(value).absolute()
    if ".." in path.parts or path.name in ("", LATEST):
        raise argparse.ArgumentTypeError(f"not a usable run directory: {value!r}")
    return path


def _session_name(value: str) -> str:
    if not _SESSION_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not a role session name: {value[:80]!r}")
    return value


def _session_tag(value: str) -> tuple[str, str]:
    key, separator, tag = value.partition("=")
    if not key or not separator:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {value[:80]!r}")
    return key, tag


def _int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """A parser of integers from `low` up to `high` (None: no upper bound)."""

    def parse(value: str) -> int:
        number = int(value)
        if number < low or (high is not None and number > high):
            raise argparse.ArgumentTypeError(
                f"{number} is not in {low}..{'' if high is None else high}"
            )
        return number

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "exit codes:\n" + exitcodes.HELP
    parser.add_argument(
        "--source",
        required=True,
        type=_s3_url,
        metavar="s3://BUCKET/PREFIX/",
        help="the export run's prefix; every .gz object under it is copied",
    )
    parser.add_argument(
        "--dest",
        required=True,
        type=_run_dir,
        metavar="DIR",
        help="the run directory (created); <DIR>/../latest will point at it",
    )
    parser.add_argument(
        "--decompress", action="store_true", help="also write the decoded .jsonl beside each .gz"
    )
    parser.add_argument(
        "--concurrency",
        type=_int_range(1, 64),
        default=8,
        help="ranged GETs in flight (default: %(default)s)",
    )
    parser.add_argument(
        "--part-size",
        type=_int_range(1, 512),
        default=16,
        metavar="MIB",
        help="bytes per ranged GET, in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--expect-objects",
        type=_int_range(0),
        metavar="N",
        help="the least number of .gz objects the listing must find; if it finds fewer, exit "
        f"{exitcodes.RETRYABLE} (RETRYABLE: S3 listings may lag) without writing "
        "manifest.json, _SUCCESS or latest (default: no check)",
    )
    parser.add_argument(
        "--keep-runs",
        type=_int_range(1, 1000),
        metavar="N",
        help="after publishing, remove the oldest complete runs beside this one beyond N (this "
        "one included); never latest's target, an incomplete run, or anything else "
        "(default: keep all)",
    )
    parser.add_argument("--endpoint-url", help="S3 endpoint (default: AWS_ENDPOINT_URL_S3 or AWS)")
    parser.add_argument("--region", help="S3 region (default: the boto3 chain)")
    parser.add_argument(
        "--assume-role-arn",
        metavar="ARN",
        help="read the bucket as this role, assumed with the chain's credentials (STS)",
    )
    parser.add_argument(
        "--role-session-name",
        type=_session_name,
        metavar="NAME",
        help="the assumed role's session name, 2-64 of [A-Za-z0-9_+=,.@-] "
        "(default: pinpoint-export-operator)",
    )
    parser.add_argument(
        "--external-id", metavar="ID", help="the ExternalId the role's trust policy expects"
    )
    parser.add_argument(
        "--session-tag",
        action="append",
        type=_session_tag,
        default=[],
        metavar="KEY=VALUE",
        help="a tag of the assumed role's session, repeatable (needs sts:TagSession)",
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"where the JSON summary goes too (default: {DEFAULT_TERMINATION_LOG} if it exists)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.log_level != "DEBUG":  # botocore's INFO lines say where credentials were found
        logging.getLogger("botocore").setLevel(logging.WARNING)
    started = time.monotonic()
    options = Options(
        source=args.source,
        dest=args.dest,
        decompress=args.decompress,
        concurrency=args.concurrency,
        part_size=args.part_size * MiB,
        expect_objects=args.expect_objects,
        keep_runs=args.keep_runs,
    )
    try:
        client = make_client(
            endpoint_url=args.endpoint_url,
            region=args.region,
            assume_role_arn=args.assume_role_arn,
            role_session_name=args.role_session_name,
            external_id=args.external_id,
            session_tags=tuple(args.session_tag),
            max_connections=options.concurrency,  # only the GET threads call S3 at once
        )
        result = copy_run(client, options)
    except Exception as error:
        outcome = exitcodes.classify(error)
        log.error(
            "copy failed: %s (exit %d): %s",
            outcome.reason,
            outcome.code,
            outcome.message,
            exc_info=outcome.code == exitcodes.INTERNAL,
        )
        line = failure(
            code=outcome.code,
            reason=outcome.reason,
            message=outcome.message,
            retryable=outcome.retryable,
            seconds=time.monotonic() - started,
        )
        _report(args.termination_log, line)
        return outcome.code
    line = summary(
        result.manifest,
        objects=result.objects,
        resumed=result.resumed,
        seconds=time.monotonic() - started,
        already_complete=result.already_complete,
    )
    sys.stdout.write(line + "\n")
    _report(args.termination_log, line)
    return exitcodes.OK


def _report(path: Path | None, line: str) -> None:
    """Write the summary where the kubelet reads it; outside a pod there is no such file, and
    nothing is created unless a path is given."""
    if path is None:
        if not DEFAULT_TERMINATION_LOG.exists():
            return
        path = DEFAULT_TERMINATION_LOG
    try:
        path.write_text(line + "\n")
    except OSError as error:
        log.warning("cannot write the termination log %s: %s", path, error)
