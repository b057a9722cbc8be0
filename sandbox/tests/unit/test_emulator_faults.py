"""Fault settings and their draws."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pinpoint_export_sandbox.emulator.faults import FaultInjector, Faults


async def draws(faults: Faults, operation: str = "GetExportJob", n: int = 1000) -> Counter[str]:
    injector = FaultInjector()
    await injector.configure(faults)
    return Counter(str(injector.error_for(operation)) for _ in range(n))


async def test_rates_are_reproducible_proportions() -> None:
    faults = Faults(throttle_rate=0.3, error_rate=0.1, seed=42)
    first = await draws(faults)
    assert first == await draws(faults)
    assert abs(first["TooManyRequestsException"] - 300) < 50
    assert abs(first["InternalServerErrorException"] - 100) < 35
    assert await draws(Faults()) == Counter({"None": 1000})
    forbidden = Faults(error_rate=1.0, error_code="ForbiddenException")
    assert await draws(forbidden, n=3) == Counter({"ForbiddenException": 3})


async def test_operations_limit_the_faults() -> None:
    faults = Faults(throttle_rate=1.0, operations=("GetExportJob",))
    assert await draws(faults, "GetExportJob", 5) == Counter({"TooManyRequestsException": 5})
    assert await draws(faults, "CreateExportJob", 5) == Counter({"None": 5})


def test_job_failures_are_consumed() -> None:
    injector = FaultInjector()
    injector.faults = Faults(fail_jobs=2)
    assert [injector.take_job_failure() for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    "document",
    [
        {"throttle_rate": 1.5},
        {"throttle_rate": 0.6, "error_rate": 0.6},
        {"latency_seconds": -1},
        {"freeze_status": "SLEEPING"},
        {"error_rate": 0.1, "error_code": "TeapotException"},
        {"surprise": 1},
    ],
)
def test_invalid_settings_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults.from_json(document)


def test_json_round_trip() -> None:
    faults = Faults(throttle_rate=0.5, operations=("GetExportJob",), freeze_status="PROCESSING")
    assert Faults.from_json(faults.to_json()) == faults
