"""`--keep-runs`: remove the oldest complete run directories beside the one just published.

Runs are siblings in the parent of the run directory (`<path>/<runId>`). Under the same flock
that guards `latest`, the complete runs are listed: entries whose name is a run id, that are
directories (never through a symlink), and that hold `_SUCCESS` and a valid `manifest.json`
whose source is that run's prefix. The newest `keep` of them stay; of the older ones, every one
but `latest`'s target and the run just published is removed. Anything else is never touched:
an incomplete run (another copier may be writing it), a directory or symlink of another name,
a symlink named like a run.

A run is removed through a descriptor of it opened with O_NOFOLLOW: only if it holds nothing
but regular files named in its manifest (plus `manifest.json` and `_SUCCESS`), each unlinked
with `dir_fd` (`_SUCCESS` first, so that an interrupted removal leaves an incomplete run, not a
damaged complete one), then the directory itself. A directory holding anything unexpected is
left, with a warning. Retention is housekeeping: its failures are logged, never fatal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat

from pinpoint_export_operator.copier.layout import RunDir, locked
from pinpoint_export_operator.copier.manifest import MANIFEST, SUCCESS, recorded_manifest

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def prune(run: RunDir, keep: int) -> list[str]:
    """Remove the complete runs beside `run` beyond the newest `keep`; the names removed."""
    removed = []
    with locked(run.parent_fd):
        protected = {run.name, run.latest_run()}
        complete = sorted(_complete_runs(run.parent_fd), reverse=True)
        for name in complete[keep:]:
            if name not in protected and _remove_run(run.parent_fd, name):
                removed.append(name)
        if removed:
            os.fsync(run.parent_fd)
    if removed:
        log.info("removed %d old runs beyond --keep-runs=%d: %s", len(removed), keep, removed)
    return removed


def _complete_runs(parent_fd: int) -> list[str]:
    with os.scandir(parent_fd) as entries:
        candidates = [
            e.name for e in entries if RUN_ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        ]
    complete = []
    for name in candidates:
        fd = _open_run(parent_fd, name)
        if fd is None:
            continue
        try:
            if _run_files(fd, name) is not None:
                complete.append(name)
        finally:
            os.close(fd)
    return complete


def _open_run(parent_fd: int, name: str) -> int | None:
    """A descriptor on directory `name`, never through a symlink; None if there is none."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as error:
        log.debug("%s is no run directory: %s", name, error)
        return None


def _run_files(fd: int, name: str) -> set[str] | None:
    """The files run directory `fd` (named `name`) consists of, if it is a complete run."""
    if _read_regular(fd, SUCCESS) is None:
        return None
    data = _read_regular(fd, MANIFEST)
    manifest = recorded_manifest(data) if data is not None else None
    if manifest is None or not manifest["source"].endswith(f"/{name}/"):
        return None
    return {entry["name"] for entry in manifest["files"]} | {MANIFEST, SUCCESS}


def _read_regular(dir_fd: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:  # missing, or a symlink (ELOOP)
        return None
    with open(fd, "rb") as file:
        return file.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _remove_run(parent_fd: int, name: str) -> bool:
    """Remove complete run `name` if it holds only its own regular files; whether it did."""
    fd = _open_run(parent_fd, name)
    if fd is None:
        return False
    try:
        expected = _run_files(fd, name) or set()
        with os.scandir(fd) as entries:
            found = {e.name: e.is_file(follow_symlinks=False) for e in entries}
        unexpected = sorted(n for n, regular in found.items() if not regular or n not in expected)
        if not expected or unexpected:
            log.warning("old run %s left in place: it holds %s", name, unexpected[:5] or "no run")
            return False
        for entry in sorted(found, key=lambda n: n != SUCCESS):  # _SUCCESS first
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry, dir_fd=fd)
        os.rmdir(name, dir_fd=parent_fd)
    except OSError as error:
        log.warning("old run %s not (fully) removed: %s", name, error)
        return False
    finally:
        os.close(fd)
    return True
