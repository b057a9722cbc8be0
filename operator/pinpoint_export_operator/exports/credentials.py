"""The keys of the exports' Secrets, read once per Secret and shared for a short while.

Each Pinpoint call of an export is made as the keys of its Secret. Reading the Secret before
every poll cost one API request per poll: at 500 exports polling every 5 s, 100 GETs a second
for the same few Secrets. Here each Secret is read at most once per `ttl`, and exports that ask
while it is being read share that one request. A rotated Secret is seen within `ttl`; a call
refused with keys that the Secret no longer holds is retried with the new keys (`rotated`).
Failed reads are not kept: the next caller reads again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pinpoint_export_operator.runtime.aws import StaticCredentials

CREDENTIALS_TTL = 30.0  # seconds a Secret's keys are used before it is read again
_PRUNE_ABOVE = 64  # Secrets remembered before expired entries are dropped


class SecretKeys:
    def __init__(
        self,
        read: Callable[[str, str], StaticCredentials],
        ttl: float = CREDENTIALS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read  # blocking: runs in the default executor
        self._ttl = ttl
        self._clock = clock
        self._cached: dict[tuple[str, str], tuple[float, asyncio.Future[StaticCredentials]]] = {}

    async def get(self, namespace: str, name: str) -> StaticCredentials:
        """The Secret's keys, read now or less than `ttl` ago."""
        key = (namespace, name)
        entry = self._cached.get(key)
        if entry is None or self._clock() - entry[0] >= self._ttl:
            entry = self._start_read(key)
        # Shielded: a caller cancelled while it waits does not cancel the others' read.
        return await asyncio.shield(entry[1])

    async def rotated(self, namespace: str, name: str, used: StaticCredentials) -> bool:
        """Whether the Secret holds other keys than `used` now (read afresh): a call refused
        with `used` is then worth trying again rather than failing."""
        current = await asyncio.shield(self._start_read((namespace, name))[1])
        return current.source != used.source

    def _start_read(self, key: tuple[str, str]) -> tuple[float, asyncio.Future[StaticCredentials]]:
        if len(self._cached) > _PRUNE_ABOVE:
            now = self._clock()
            for stale in [k for k, (at, _) in self._cached.items() if now - at >= self._ttl]:
                del self._cached[stale]
        future = asyncio.ensure_future(asyncio.to_thread(self._read, *key))
        entry = (self._clock(), future)
        self._cached[key] = entry

        def done(read: asyncio.Future[StaticCredentials]) -> None:
            failed = read.cancelled() or read.exception() is not None  # retrieved: never logged
            if failed and self._cached.get(key) is entry:
                del self._cached[key]

        future.add_done_callback(done)
        return entry
