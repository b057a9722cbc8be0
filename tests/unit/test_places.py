"""Places for calls: bounded, urgent callers first, arrival order within each kind, and a
waiter cancelled at any moment never keeps or loses a place."""

from __future__ import annotations

import asyncio

import pytest

from pinpoint_export_operator.runtime.places import Places


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_at_most_count_held_and_urgent_callers_go_first() -> None:
    places = Places(2)
    order: list[str] = []
    held = 0
    release = asyncio.Event()

    async def caller(name: str, urgent: bool) -> None:
        nonlocal held
        async with places.hold(urgent):
            held += 1
            assert held <= 2
            order.append(name)
            await release.wait()
            held -= 1

    first = [asyncio.create_task(caller(f"early{i}", False)) for i in range(2)]
    await settle()
    arrivals = [("create1", False), ("poll1", True), ("create2", False), ("poll2", True)]
    waiting = [asyncio.create_task(caller(name, urgent)) for name, urgent in arrivals]
    await settle()
    assert order == ["early0", "early1"]
    release.set()
    await asyncio.gather(*first, *waiting)
    assert order == ["early0", "early1", "poll1", "poll2", "create1", "create2"]


async def test_a_free_place_is_taken_at_once() -> None:
    places = Places(1)
    async with places.hold():
        pass
    async with asyncio.timeout(1), places.hold(urgent=True):
        pass


@pytest.mark.parametrize("handed_over", [False, True])
async def test_a_cancelled_waiter_keeps_no_place(handed_over: bool) -> None:
    """Cancelled while it waits, or just after a place was handed to it (before it ran again):
    either way the place goes on to the next waiter."""
    places = Places(1)
    got: list[str] = []

    async def waiter(name: str) -> None:
        async with places.hold():
            got.append(name)

    async with places.hold():
        cancelled = asyncio.create_task(waiter("cancelled"))
        later = asyncio.create_task(waiter("later"))
        await settle()
        if not handed_over:
            cancelled.cancel()
            await settle()
    # Leaving the block handed the place over without yielding to the loop: `cancelled` has
    # it but has not run yet.
    if handed_over:
        cancelled.cancel()
    async with asyncio.timeout(1):
        await later
    assert got == ["later"] and cancelled.cancelled()
    async with asyncio.timeout(1), places.hold():  # and the place is free again
        pass
