"""The search for a run's Pinpoint job: pages newest first, resumed where a page failed,
stopped at jobs older than the run."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pinpoint_export_operator.exports.pinpoint import Pinpoint, SearchCursor
from pinpoint_export_operator.runtime import timestamps

APP = "0" * 32
RUN = "s3://bucket/exports/ns/x/run/"
CUTOFF = timestamps.parse("2026-11-28T10:00:00Z")
NEW, OLD = "2026-11-28T11:00:00Z", "2026-11-28T09:00:00Z"
THROTTLED = ClientError(
    {"Error": {"Code": "TooManyRequestsException"}, "ResponseMetadata": {"HTTPStatusCode": 429}},
    "GetExportJobs",
)


def job(created: str, prefix: str = "s3://bucket/exports/ns/other/") -> dict[str, Any]:
    return {
        "Id": f"job-{created}-{prefix}",
        "JobStatus": "COMPLETED",
        "CreationDate": created,
        "Definition": {"S3UrlPrefix": prefix},
    }


class FakeListing:
    """GetExportJobs over fixed pages (token `pN` names page N); a page in `fail` raises its
    error the first time it is asked for."""

    def __init__(self, *pages: list[dict[str, Any]], fail: dict[int, Exception] | None = None):
        self.pages = pages
        self.fail = dict(fail or {})
        self.tokens: list[str | None] = []

    def get_export_jobs(self, ApplicationId: str, PageSize: str, Token: str | None = None) -> Any:
        self.tokens.append(Token)
        number = int(Token[1:]) if Token else 1
        if number in self.fail:
            raise self.fail.pop(number)
        page: dict[str, Any] = {"Item": self.pages[number - 1]}
        if number < len(self.pages):
            page["NextToken"] = f"p{number + 1}"
        return {"ExportJobsResponse": page}


def search(listing: FakeListing, cursor: SearchCursor) -> Any:
    return Pinpoint(listing).find_export_job(APP, None, RUN, CUTOFF, cursor)


def test_a_throttled_page_is_asked_for_again_not_the_list_from_page_one() -> None:
    listing = FakeListing([job(NEW)], [job(NEW, RUN)], fail={2: THROTTLED})
    cursor = SearchCursor()
    with pytest.raises(ClientError):
        search(listing, cursor)
    assert cursor.token == "p2"
    found = search(listing, cursor)
    assert found is not None and found.adopted and found.id == f"job-{NEW}-{RUN}"
    assert listing.tokens == [None, "p2", "p2"]
    assert cursor.token is None  # found: the next search starts afresh


def test_an_empty_page_with_a_next_token_does_not_end_the_search() -> None:
    listing = FakeListing([], [job(NEW, RUN)])
    found = search(listing, SearchCursor())
    assert found is not None and found.id == f"job-{NEW}-{RUN}"
    assert listing.tokens == [None, "p2"]


def test_the_search_stops_at_the_first_page_older_than_the_cutoff() -> None:
    listing = FakeListing([job(NEW)], [job(OLD), job(OLD)], [job(OLD, RUN)])
    cursor = SearchCursor()
    assert search(listing, cursor) is None
    assert listing.tokens == [None, "p2"]
    assert cursor.token is None
