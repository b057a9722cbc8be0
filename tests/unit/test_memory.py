"""The operator's malloc arenas are capped where the C library is glibc."""

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
