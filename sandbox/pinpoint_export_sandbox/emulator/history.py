"""Old, finished export jobs seeded into an app, as an account that has exported for years has.

History is cheap: its jobs are records only (COMPLETED, nothing written to S3), under S3
prefixes no real run uses (`HISTORY_URL`). It always lies before every job already in the app,
so listings stay newest first, and it pages like any other job.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from pinpoint_export_sandbox.emulator.model import iso8601
from pinpoint_export_sandbox.emulator.storage import App, EndpointSource, ExportJob, new_id

HISTORY_BUCKET = "pinpoint-emulator-history"
HISTORY_URL = f"s3://{HISTORY_BUCKET}/"
MAX_HISTORY = 1_000_000
SPACING = dt.timedelta(minutes=1)  # between two seeded jobs' creation
DURATION = dt.timedelta(seconds=30)  # from a seeded job's creation to its completion
# Jobs created through the API take sequence numbers counting up from 1 (`storage`); seeded
# history counts down from -1, so it sorts before them in listings and their tokens, and each
# later batch (which lies further back in time) sorts before the one seeded earlier.
_history_sequence = itertools.count(-1, -1)
_NO_ENDPOINTS = EndpointSource((), {})


@dataclass(frozen=True)
class History:
    """A batch of seeded jobs."""

    application_id: str
    count: int
    s3_url_prefix: str  # every seeded job's S3UrlPrefix starts with it
    newest: str | None  # CreationDate of the newest job seeded
    oldest: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "application_id": self.application_id,
            "seeded": self.count,
            "s3_url_prefix": self.s3_url_prefix,
            "newest": self.newest,
            "oldest": self.oldest,
        }


def seed_history(app: App, count: int, before: dt.datetime | None, account_id: str) -> History:
    """Add `count` COMPLETED jobs to `app`, created one `SPACING` apart before `before`.

    `before` (timezone-aware) must be neither in the future nor after the app's oldest job;
    None means as late as that allows. Raises ValueError for what is out of range.
    """
    if not 0 <= count <= MAX_HISTORY:
        raise ValueError(f"count must be within [0, {MAX_HISTORY}]")
    latest, reason = dt.datetime.now(dt.UTC), "in the future"
    if app.jobs:
        oldest = dt.datetime.fromisoformat(app.jobs[0].creation_date)
        latest, reason = min(latest, oldest), "after the app's oldest job"
    if before is None:
        before = latest
    elif before.tzinfo is None:
        raise ValueError("before must name its time zone")
    elif before > latest:
        raise ValueError(f"before must not be {reason} ({iso8601(latest)})")
    role_arn = f"arn:aws:iam::{account_id}:role/{HISTORY_BUCKET}"
    prefix = f"{HISTORY_URL}{app.id}/"
    newest_first = [
        _finished_job(app.id, before - SPACING * (n + 1), prefix, role_arn) for n in range(count)
    ]
    app.jobs[:0] = reversed(newest_first)
    return History(
        app.id,
        count,
        prefix,
        newest_first[0].creation_date if newest_first else None,
        newest_first[-1].creation_date if newest_first else None,
    )


def _finished_job(
    application_id: str, created: dt.datetime, prefix: str, role_arn: str
) -> ExportJob:
    job_id = new_id()
    return ExportJob(
        job_id,
        application_id,
        {"RoleArn": role_arn, "S3UrlPrefix": f"{prefix}{job_id}/"},
        _NO_ENDPOINTS,
        creation_date=iso8601(created),
        seq=next(_history_sequence),
        status="COMPLETED",
        total_pieces=1,
        completed_pieces=1,
        completion_date=iso8601(created + DURATION),
    )
