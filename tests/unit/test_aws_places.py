"""AwsCalls' places: creates leave a quarter of them to the other calls."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from pinpoint_export_operator.runtime.aws import AwsCalls


async def enter(
    calls: AwsCalls, *, creates: bool, inside: asyncio.Event, leave: asyncio.Event
) -> None:
    async with calls.slot(creates=creates):
        inside.set()
        await leave.wait()


async def test_creates_leave_a_quarter_of_the_places_to_other_calls() -> None:
    calls = AwsCalls(concurrency=4)
    async with AsyncExitStack() as held:
        for _ in range(3):
            await held.enter_async_context(calls.slot(creates=True))
        create_inside, create_leave = asyncio.Event(), asyncio.Event()
        create = asyncio.create_task(
            enter(calls, creates=True, inside=create_inside, leave=create_leave)
        )
        # A poll finds the place the creates left, though a create asked first.
        await asyncio.wait_for(held.enter_async_context(calls.slot()), timeout=5)
        await asyncio.sleep(0)  # the create's task runs until it waits for a place
        assert not create_inside.is_set()
    # The creates held leave: the waiting create gets one of their places.
    await asyncio.wait_for(create_inside.wait(), timeout=5)
    create_leave.set()
    await create


async def test_a_single_place_serves_creates_too() -> None:
    calls = AwsCalls(concurrency=1)
    async with calls.slot(creates=True):
        pass
