"""The run directory on the volume: atomic files, `_SUCCESS`, and the `latest` link.

Every operation goes through a descriptor of the run directory (`dir_fd`), and files are opened
with O_NOFOLLOW and O_EXCL, so a symlink planted in the directory can only be replaced, never
followed. The run directory itself is opened with O_NOFOLLOW too: if it is a symlink, nothing is
written. A file appears under its final name only complete and fsynced (`.part`, fsync, rename,
fsync of the directory), so a final name is trustworthy after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from types import TracebackType

from pinpoint_export_operator.copier.safepaths import PART

LATEST = "latest"
WRITEBACK_BYTES = 16 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO must not hang; it changes nothing for regular files.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a finished range to disk now, so the final fsync has little left to wait
    for (it would otherwise flush a whole object at once) and the page cache is not filled with
    it. On Linux, DONTNEED starts asynchronous writeback of dirty pages and drops clean ones."""
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _unlink(name: str, dir_fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)


class RunDir:
    """`<parent>/<name>`: created if needed, refused if it is a symlink."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.parent_fd = os.open(path.parent, _DIR_FLAGS)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.name, 0o755, dir_fd=self.parent_fd)
            self.fd = os.open(self.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=self.parent_fd)
        except BaseException:
            os.close(self.parent_fd)
            raise

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.parent_fd)

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def remove_leftovers(self, *names: str) -> None:
        """Drop `.part` files of a killed run, and `names` (e.g. a stale `_SUCCESS`)."""
        with os.scandir(self.fd) as entries:
            stale = [e.name for e in entries if e.name.endswith(PART) or e.name in names]
        for name in stale:
            _unlink(name, self.fd)
        os.fsync(self.fd)

    def open_complete(self, name: str, size: int) -> int | None:
        """A descriptor on `name` if it is a regular file of `size` bytes, else None."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:  # a planted symlink: re-copy, the rename replaces it
                return None
            raise
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size == size:
            return fd
        os.close(fd)
        return None

    def part(self, name: str) -> PartFile:
        return PartFile(self, name)

    def write_atomic(self, name: str, data: bytes) -> None:
        with self.part(name) as part:
            part.write(data)
            part.publish()

    def point_latest(self) -> None:
        """Swap `<parent>/latest` to this run: a relative symlink renamed over the old one."""
        temp = f".{LATEST}.{self.name}{PART}"
        _unlink(temp, self.parent_fd)
        os.symlink(self.name, temp, dir_fd=self.parent_fd)
        os.rename(temp, LATEST, src_dir_fd=self.parent_fd, dst_dir_fd=self.parent_fd)
        os.fsync(self.parent_fd)


class PartFile:
    """`<name>.part`, created fresh; `publish()` makes it `<name>`, else it is removed."""

    def __init__(self, run: RunDir, name: str) -> None:
        self._run = run
        self.name = name
        self.temp = name + PART
        _unlink(self.temp, run.fd)  # a leftover, or a planted symlink: removed, never followed
        self.fd = os.open(self.temp, _CREATE_FLAGS, 0o644, dir_fd=run.fd)
        self._done = False
        self._size = 0
        self._written_back = 0

    def write(self, data: bytes) -> None:
        """Append `data`."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self._size += len(data)
        if self._size - self._written_back >= WRITEBACK_BYTES:
            start_writeback(self.fd, self._written_back, self._size - self._written_back)
            self._written_back = self._size

    def publish(self) -> None:
        os.fsync(self.fd)
        os.rename(self.temp, self.name, src_dir_fd=self._run.fd, dst_dir_fd=self._run.fd)
        self._done = True
        os.close(self.fd)
        os.fsync(self._run.fd)

    def discard(self) -> None:
        if not self._done:
            self._done = True
            os.close(self.fd)
            _unlink(self.temp, self._run.fd)

    def __enter__(self) -> PartFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()
