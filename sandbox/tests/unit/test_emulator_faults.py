"""Fault settings and their draws."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pinpoint_export_sandbox.emulator.faults import (
    LOST_ANSWER_CODES,
    FaultInjector,
    Faults,
    LostAnswer,
)


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


def test_lost_answers_run_out_and_keep_to_their_operations() -> None:
    injector = FaultInjector()
    injector.faults = Faults(lose_response="drop", lose_count=2, operations=("CreateExportJob",))
    assert injector.take_lost_answer("GetExportJobs") is None
    lost = [injector.take_lost_answer("CreateExportJob") for _ in range(3)]
    assert lost == [LostAnswer(None), LostAnswer(None), None]
    assert injector.faults.lose_count == 0 and injector.faults.lose_response == "drop"

    injector.faults = Faults(lose_response="error", lose_response_code="503")
    assert injector.take_lost_answer("GetApp") == LostAnswer("503")
    assert injector.take_lost_answer("GetApp") is None  # lose_count defaults to one
    injector.faults = Faults(lose_count=5)  # no lose_response: nothing is lost
    assert injector.take_lost_answer("GetApp") is None
    assert injector.faults.lose_count == 5


def test_lost_answers_are_server_errors() -> None:
    assert sorted(LOST_ANSWER_CODES) == ["502", "503", "504", "InternalServerErrorException"]
    assert Faults().lose_response_code == "InternalServerErrorException"


def test_listings_are_slowed_and_truncated_whatever_operations_say() -> None:
    injector = FaultInjector()
    injector.faults = Faults(
        latency_seconds=0.5,
        list_latency_seconds=2.0,
        list_page_limit=3,
        operations=("CreateExportJob",),
    )
    assert injector.delay_for("GetExportJobs") == injector.delay_for("GetSegmentExportJobs") == 2
    assert injector.delay_for("CreateExportJob") == 0.5
    assert injector.delay_for("GetExportJob") == 0  # one job, not a listing
    assert injector.listing_page_limit() == 3
    injector.faults = Faults(latency_seconds=0.5, list_latency_seconds=2.0)
    assert injector.delay_for("GetExportJobs") == 2.5


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
        {"fail_jobs": -1},
        {"fail_jobs": True},
        {"lose_response": "vanish"},
        {"lose_response": "error", "lose_response_code": "NotFoundException"},  # not a 5xx
        {"lose_response": "error", "lose_response_code": "500"},  # modeled: by its name
        {"lose_count": -1},
        {"lose_count": 1.5},
        {"list_latency_seconds": -0.1},
        {"list_page_limit": 0},
        {"list_page_limit": "5"},
    ],
)
def test_invalid_settings_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults.from_json(document)


def test_json_round_trip() -> None:
    faults = Faults(throttle_rate=0.5, operations=("GetExportJob",), freeze_status="PROCESSING")
    assert Faults.from_json(faults.to_json()) == faults
    lossy = Faults(
        lose_response="error",
        lose_response_code="502",
        lose_count=3,
        list_latency_seconds=0.25,
        list_page_limit=7,
        operations=("CreateExportJob",),
    )
    assert Faults.from_json(lossy.to_json()) == lossy
