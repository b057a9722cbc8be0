"""Fault injection: throttling, server errors, latency, failed and frozen export jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from pinpoint_export_sandbox.emulator.model import ApiError, service_model
from pinpoint_export_sandbox.emulator.storage import JOB_STATUSES

ERROR_CODES = frozenset(shape.name for shape in service_model().error_shapes)


@dataclass(frozen=True)
class Faults:
    """What to break. Rates are fractions of the calls to `operations` (None: every operation)."""

    throttle_rate: float = 0.0  # 429 TooManyRequestsException
    error_rate: float = 0.0  # answered with `error_code` instead
    error_code: str = "InternalServerErrorException"  # any modeled error, e.g. ForbiddenException
    latency_seconds: float = 0.0  # added before each answer
    fail_jobs: int = 0  # the next N export jobs end FAILED
    freeze_status: str | None = None  # jobs stop when they reach this status until unfrozen
    operations: tuple[str, ...] | None = None
    seed: int | None = None  # makes the throttle/error draws reproducible

    def __post_init__(self) -> None:
        if not (0 <= self.throttle_rate <= 1 and 0 <= self.error_rate <= 1):
            raise ValueError("rates must be within [0, 1]")
        if self.throttle_rate + self.error_rate > 1:
            raise ValueError("throttle_rate + error_rate must not exceed 1")
        if self.latency_seconds < 0 or self.fail_jobs < 0:
            raise ValueError("latency_seconds and fail_jobs must not be negative")
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
        if self.applies(operation) and self.faults.latency_seconds:
            await asyncio.sleep(self.faults.latency_seconds)
        code = self.error_for(operation)
        if code is not None:
            raise ApiError(code, "Injected by the Pinpoint emulator")

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

    def take_job_failure(self) -> bool:
        """Whether a new export job should fail (consumes one of `fail_jobs`)."""
        if self.faults.fail_jobs <= 0:
            return False
        self.faults = dataclasses.replace(self.faults, fail_jobs=self.faults.fail_jobs - 1)
        return True

    async def wait_unfrozen(self, status: str) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.faults.freeze_status != status)
