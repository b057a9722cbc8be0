"""The operator's malloc arenas are capped, and their free pages given back, where the C
library is glibc."""

from __future__ import annotations

import ctypes
import platform

import pytest

from pinpoint_export_operator.runtime import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_takes_the_cap() -> None:
    assert memory.cap_malloc_arenas()


def test_another_c_library_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert memory.cap_malloc_arenas() is False
    assert memory.release_free_memory() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_free_memory_inside_the_heap_goes_back_to_the_kernel() -> None:
    # Chunks above 512 bytes come from malloc, not Python's own allocator; every seventh is
    # kept, so the freed ones are holes inside the heap that its top alone cannot give back.
    chunks = [bytearray(2000) for _ in range(40_000)]
    kept = chunks[::7]
    del chunks
    before = resident_mb()
    assert memory.release_free_memory()
    assert resident_mb() < before - 30  # about 65 MB were freed
    assert len(kept) == 5715


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024
