"""The operator's heap: glibc's malloc gives threads that allocate at the same time arenas of
their own, up to eight per core, and memory freed into an arena stays there. The operator's 36
Kubernetes and 16 AWS threads each parse and build JSON bodies, so at 500 exports its resident
size grew with the arenas rather than with what it holds; two arenas serve its threads, whose
work is mostly waiting on the network."""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def cap_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas for the threads started from now on; False where the C library is
    not glibc (musl, for one, has no arenas)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
