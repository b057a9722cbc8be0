"""A bounded number of places for calls, given to urgent callers first.

asyncio.Semaphore wakes its waiters in the order they came. The AWS places are shared by the
exports' creates and their polls: 500 exports applied at once queue 500 CreateExportJob calls,
and the poll of a job that completed meanwhile waited behind them (its copy Job came a median
6.9 s after COMPLETED; 2.9 and 4.3 s in two runs with polls first). Polls are urgent: a place
that comes free goes to a waiting poll before any create. Polls cannot starve the creates: those
of one application wait together and take one place, apart from the jobs a listing missed,
each asked once (exports/polls.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class Places:
    def __init__(self, count: int) -> None:
        # Invariant: places are free only while nobody waits (a released place goes straight
        # to the next waiter).
        self._free = count
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def hold(self, urgent: bool = False) -> AsyncIterator[None]:
        """One place, held for the block; `urgent` callers are given places first."""
        await self._take(self._urgent if urgent else self._others)
        try:
            yield
        finally:
            self._give_back()

    async def _take(self, queue: deque[asyncio.Future[None]]) -> None:
        if self._free:
            self._free -= 1
            return
        place = asyncio.get_running_loop().create_future()
        queue.append(place)
        try:
            await place
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self._give_back()  # handed a place as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # already passed over by _give_back
                    queue.remove(place)
            raise

    def _give_back(self) -> None:
        for queue in (self._urgent, self._others):
            while queue:
                place = queue.popleft()
                if not place.done():  # a cancelled waiter is passed over
                    place.set_result(None)
                    return
        self._free += 1
