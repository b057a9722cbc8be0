"""`pinpoint-export-sandbox emulator`: run the Pinpoint emulator alone.

S3 comes from botocore's own variables (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION); STS's AssumeRole hands out those same keys (see `sts`).
Logs go to stderr; nothing is printed to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from pinpoint_export_sandbox.emulator.app import EmulatorConfig, bind, serve
from pinpoint_export_sandbox.emulator.jobs import Timing
from pinpoint_export_sandbox.emulator.sts import IssuedKeys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=Timing.step_seconds,
        help="how long an export job stays in each status (default %(default)s)",
    )
    parser.add_argument(
        "--piece-size",
        type=int,
        default=Timing.piece_size,
        help="endpoints per exported .gz piece (default %(default)s)",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION", "us-east-1"),
        help="region named in ARNs (default: $AWS_REGION or us-east-1)",
    )
    parser.add_argument("--account-id", default="123456789012", help="account named in ARNs")
    parser.add_argument(
        "--export-workers",
        type=int,
        default=4,
        help="threads writing export pieces to S3 (default %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default %(default)s)")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.piece_size < 1 or args.step_seconds < 0 or args.export_workers < 1:
        logging.error("--piece-size and --export-workers must be >= 1, --step-seconds >= 0")
        return 2
    config = EmulatorConfig(
        timing=Timing(step_seconds=args.step_seconds, piece_size=args.piece_size),
        region=args.region,
        account_id=args.account_id,
        export_workers=args.export_workers,
        sts_keys=IssuedKeys.from_env(),
    )
    asyncio.run(_run(config, args.host, args.port))
    return 0


async def _run(config: EmulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with bind(host, port) as sock:
        await serve(config, None, sock, stop)
    logging.getLogger(__name__).info("Pinpoint emulator stopped")
