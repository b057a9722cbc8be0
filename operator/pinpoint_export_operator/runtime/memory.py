"""The operator's heap: glibc's malloc gives threads that allocate at the same time arenas of
their own, up to eight per core, and memory freed into an arena stays there. The operator's 36
Kubernetes and 16 AWS threads each parse and build JSON bodies, so at 500 exports its resident
size grew with the arenas rather than with what it holds; two arenas serve its threads, whose
work is mostly waiting on the network.

Even so, free memory inside the heap stays resident: glibc gives back only the top of a heap.
500 exports started at once left about a third of the operator's resident size free (217 MB,
143 MB once trimmed), how much depending on how the burst happened to interleave. The free
pages are given back every few seconds, so what stays after a burst is what the operator holds;
the burst's own peak is not lowered."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2
RELEASE_SECONDS = 5.0


def _glibc(function: str) -> Callable[..., int] | None:
    """`function` of the C library; None where it has none (glibc's extensions)."""
    try:
        return getattr(ctypes.CDLL(None), function)  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def cap_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas for the threads started from now on; False where the C library is
    not glibc (musl, for one, has no arenas)."""
    mallopt = _glibc("mallopt")
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Give the kernel the pages of the heap's free chunks (glibc's malloc_trim); True if any
    were given back."""
    malloc_trim = _glibc("malloc_trim")
    return malloc_trim is not None and bool(malloc_trim(0))


async def release_free_memory_periodically(seconds: float = RELEASE_SECONDS) -> None:
    while True:
        await asyncio.sleep(seconds)
        # On a thread: a trim walks the whole heap, 40 to 120 ms for 400 MB on a busy machine.
        await asyncio.to_thread(release_free_memory)
