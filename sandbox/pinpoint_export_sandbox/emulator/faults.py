"""Fault injection: throttling, server errors, latency, failed and frozen export jobs, and the
failures an exactly-once client must survive: answers lost after their call took effect, and
slow or truncated listings of export jobs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from pinpoint_export_sandbox.emulator.model import ApiError, service_model
from pinpoint_export_sandbox.emulator.storage import JOB_STATUSES

ERROR_CODES = frozenset(shape.name for shape in service_model().error_shapes)
# A load balancer's bare 5xx page: no modeled body, so botocore takes the status as the code.
GATEWAY_STATUSES = ("502", "503", "504")
# How a lost answer can look: a modeled server error, or a gateway's status.
LOST_ANSWER_CODES = frozenset(
    {
        shape.name
        for shape in service_model().error_shapes
        if shape.metadata.get("error", {}).get("httpStatusCode", 400) >= 500
    }
    | set(GATEWAY_STATUSES)
)
LOSE_RESPONSE_MODES = ("error", "drop")
# The listings the list_* settings slow down and truncate (whatever `operations` says).
LISTINGS = frozenset({"GetExportJobs", "GetSegmentExportJobs"})


@dataclass(frozen=True)
class Faults:
    """What to break. Rates are fractions of the calls to `operations` (None: every operation).

    `operations` also limits `latency_seconds` and the lost answers; the list_* settings always
    apply to the listings of export jobs (`LISTINGS`) alone.
    """

    throttle_rate: float = 0.0  # 429 TooManyRequestsException
    error_rate: float = 0.0  # answered with `error_code` instead
    error_code: str = "InternalServerErrorException"  # any modeled error, e.g. ForbiddenException
    # Between receiving a call (its body read) and acting on it: a call whose client stops
    # waiting meanwhile still takes effect, as a slow service's does.
    latency_seconds: float = 0.0
    fail_jobs: int = 0  # the next N export jobs end FAILED
    freeze_status: str | None = None  # jobs stop when they reach this status until unfrozen
    # The next `lose_count` calls that take effect lose their answer: "error" answers them with
    # `lose_response_code` (a modeled 5xx, or a gateway's bare 502/503/504), "drop" closes the
    # connection without an answer. Calls refused before taking effect never lose one.
    lose_response: str | None = None
    lose_response_code: str = "InternalServerErrorException"
    lose_count: int = 1
    list_latency_seconds: float = 0.0  # added before each answer to a listing
    list_page_limit: int | None = None  # listings' pages hold at most this many jobs
    operations: tuple[str, ...] | None = None
    seed: int | None = None  # makes the throttle/error draws reproducible

    def __post_init__(self) -> None:
        if not (0 <= self.throttle_rate <= 1 and 0 <= self.error_rate <= 1):
            raise ValueError("rates must be within [0, 1]")
        if self.throttle_rate + self.error_rate > 1:
            raise ValueError("throttle_rate + error_rate must not exceed 1")
        if self.latency_seconds < 0 or self.list_latency_seconds < 0:
            raise ValueError("latency_seconds and list_latency_seconds must not be negative")
        if not _is_count(self.fail_jobs) or not _is_count(self.lose_count):
            raise ValueError("fail_jobs and lose_count must be integers >= 0")
        if self.list_page_limit is not None and not (
            _is_count(self.list_page_limit) and self.list_page_limit >= 1
        ):
            raise ValueError("list_page_limit must be an integer >= 1")
        if self.lose_response is not None and self.lose_response not in LOSE_RESPONSE_MODES:
            raise ValueError(f"lose_response must be one of {', '.join(LOSE_RESPONSE_MODES)}")
        if self.lose_response_code not in LOST_ANSWER_CODES:
            raise ValueError(
                f"lose_response_code must be one of {', '.join(sorted(LOST_ANSWER_CODES))}"
            )
        if self.error_code not in ERROR_CODES:
            raise ValueError(f"error_code must be one of {', '.join(sorted(ERROR_CODES))}")
        if self.freeze_status is not None and self.freeze_status not in JOB_STATUSES:
            raise ValueError(f"freeze_status must be one of {', '.join(JOB_STATUSES)}")

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Faults:
        unknown = set(document) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        operations = document.get("operations")
        return cls(**{**document, "operations": None if operations is None else tuple(operations)})

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        if self.operations is not None:
            document["operations"] = list(self.operations)
        return document


@dataclass(frozen=True)
class LostAnswer:
    """The answer to a call that took effect, lost: an error in its place, or nothing at all."""

    error_code: str | None  # one of LOST_ANSWER_CODES; None: the connection drops


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class FaultInjector:
    """Holds the current faults; lives on the emulator's event loop."""

    def __init__(self) -> None:
        self.faults = Faults()
        self._rng = random.Random()
        self._changed = asyncio.Condition()

    async def configure(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        async with self._changed:
            self._changed.notify_all()  # frozen jobs re-check

    def applies(self, operation: str) -> bool:
        return self.faults.operations is None or operation in self.faults.operations

    async def before(self, operation: str) -> None:
        """Delay a call to `operation`, or fail it, as configured."""
        delay = self.delay_for(operation)
        if delay:
            await asyncio.sleep(delay)
        code = self.error_for(operation)
        if code is not None:
            raise ApiError(code, "Injected by the Pinpoint emulator")

    def delay_for(self, operation: str) -> float:
        """The seconds to wait before answering `operation`."""
        faults = self.faults
        delay = faults.latency_seconds if self.applies(operation) else 0.0
        return delay + (faults.list_latency_seconds if operation in LISTINGS else 0.0)

    def error_for(self, operation: str) -> str | None:
        """The error code to answer `operation` with instead of serving it, if any."""
        faults = self.faults
        if not self.applies(operation) or not (faults.throttle_rate or faults.error_rate):
            return None
        draw = self._rng.random()  # one draw per call, so the rates are exact proportions
        if draw < faults.throttle_rate:
            return "TooManyRequestsException"
        if draw < faults.throttle_rate + faults.error_rate:
            return faults.error_code
        return None

    def take_lost_answer(self, operation: str) -> LostAnswer | None:
        """How the answer to a call of `operation` that took effect is lost, if it is.

        Consumes one of `lose_count`.
        """
        faults = self.faults
        if faults.lose_response is None or faults.lose_count <= 0 or not self.applies(operation):
            return None
        self.faults = dataclasses.replace(faults, lose_count=faults.lose_count - 1)
        return LostAnswer(faults.lose_response_code if faults.lose_response == "error" else None)

    def listing_page_limit(self) -> int | None:
        """The most jobs a page of a listing holds, whatever PageSize asks."""
        return self.faults.list_page_limit

    def take_job_failure(self) -> bool:
        """Whether a new export job should fail (consumes one of `fail_jobs`)."""
        if self.faults.fail_jobs <= 0:
            return False
        self.faults = dataclasses.replace(self.faults, fail_jobs=self.faults.fail_jobs - 1)
        return True

    async def wait_unfrozen(self, status: str) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.faults.freeze_status != status)
