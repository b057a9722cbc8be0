"""The free-space check before a copy: statvfs on the destination's filesystem against what the
run will write, failing at once (PERMANENT) rather than filling the volume halfway.

What is needed is the size of the objects not already complete on disk; with `--decompress`
the decoded size is unknown before decoding, so it is estimated as 10 times the compressed
size (a conservative ratio for JSON lines), and the message says it is an estimate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pinpoint_export_operator.copier.exitcodes import PermanentError

DECOMPRESS_FACTOR = 10  # decoded JSON lines are rarely more than ~10x their gzip

Statvfs = Callable[[str], os.statvfs_result]


class InsufficientSpace(PermanentError):
    reason = "InsufficientSpace"


def human(size: int) -> str:
    """`size` bytes as e.g. `1.5 GiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def nearest_existing(path: Path) -> Path:
    """`path`, or its closest ancestor that exists: the filesystem the run will land on."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path("/")


def check_free_space(
    dest: Path, compressed: int, *, decompress: bool, statvfs: Statvfs = os.statvfs
) -> None:
    """Raise InsufficientSpace unless the filesystem of `dest` has room for `compressed` bytes
    of objects (and, with `decompress`, their estimated decoded files)."""
    if compressed <= 0:
        return
    needed = compressed * DECOMPRESS_FACTOR if decompress else compressed
    where = nearest_existing(dest)
    st = statvfs(str(where))
    free = st.f_bavail * st.f_frsize  # what an unprivileged writer may use
    if needed <= free:
        return
    what = (
        f"an estimated {needed} bytes ({human(needed)}: {DECOMPRESS_FACTOR}x the "
        f"{human(compressed)} of .gz objects, with --decompress)"
        if decompress
        else f"{needed} bytes ({human(needed)})"
    )
    raise InsufficientSpace(
        f"the copy needs {what}, but only {free} bytes ({human(free)}) are free on the "
        f"filesystem of {str(where)[:200]}"
    )
