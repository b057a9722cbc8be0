"""Daemons that sleep until due, and wake early when something they wait on changed.

Each resource's daemon registers its object's uid; event handlers `poke` that uid (a copy Job
changed, a schedule's export finished). Kopf's stop flag ends every wait at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol


class Stopped(Protocol):
    """Kopf's daemon stop flag (`kopf.DaemonStopped`)."""

    def __bool__(self) -> bool: ...
    def wait(self) -> Awaitable[Any]: ...


class Wakeups:
    """One event per running daemon, set when something it waits on changed."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def register(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def registered(self, uid: str) -> bool:
        return uid in self._events

    def forget(self, uid: str) -> None:
        self._events.pop(uid, None)

    def poke(self, uid: str) -> None:
        if uid in self._events:
            self._events[uid].set()


async def wait_for_wakeup(delay: float, wakeup: asyncio.Event, stopped: Stopped) -> None:
    """Sleep `delay` seconds, or less if `wakeup` is set or the daemon is stopped."""
    waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
