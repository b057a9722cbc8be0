"""The run directory on the volume: atomic files, `_SUCCESS`, and the `latest` link.

The run directory is reached from `/` one component at a time, each opened with O_NOFOLLOW
relative to the one before (and created if missing): a symlink anywhere on the path, the run
directory included, is refused and nothing is written through it. Every operation then goes
through a descriptor of the run directory (`dir_fd`), and files are opened with O_NOFOLLOW and
O_EXCL, so a symlink planted in the directory can only be replaced, never followed. A file
appears under its final name only complete and fsynced (`.part`, fsync, rename, fsync of the
directory), so a final name is trustworthy after a crash. `latest` only moves forward: run names
sort by time, and a run never takes it from a newer one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from pinpoint_export_operator.copier.safepaths import PART

log = logging.getLogger(__name__)

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


def _open_subdir(parent_fd: int, path: Path, *, create: bool, mode: int) -> int:
    """A descriptor on directory `path.name` in `parent_fd`, never through a symlink; made with
    `mode` if missing and `create`. Errors name the whole `path`, not just its last component."""
    try:
        try:
            return os.open(path.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise
        with contextlib.suppress(FileExistsError):  # made meanwhile by another run: fine
            os.mkdir(path.name, mode, dir_fd=parent_fd)
        return os.open(path.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(path.name, parent_fd):
            refused = "a symlink on the destination path, not followed"
            raise OSError(errno.ELOOP, refused, str(path)) from error
        raise OSError(error.errno, error.strerror, str(path)) from error


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_parent(path: Path, *, create: bool) -> int:
    """A descriptor on `path.parent`, walked down from `/` with `_open_subdir`."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for depth in range(2, len(path.parts)):
            child = _open_subdir(fd, Path(*path.parts[:depth]), create=create, mode=0o777)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def locked(fd: int) -> Iterator[None]:
    """An exclusive flock on directory `fd`, so that two runs finishing at once cannot both read
    `latest` before either swaps it. Where a filesystem refuses it (NFS emulates flock with
    write locks, which a directory cannot take), the swap goes on unlocked."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as error:
        log.debug("no lock for the latest link: %s", error)
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class RunDir:
    """`<parent>/<name>`: created with its parents if needed (`create`), and refused if it or
    any directory above it is a symlink. FileNotFoundError if missing and not `create`."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path.absolute()
        self.name = self.path.name
        self.parent_fd = _open_parent(self.path, create=create)
        try:
            self.fd = _open_subdir(self.parent_fd, self.path, create=create, mode=0o755)
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

    def _open_regular(self, name: str) -> tuple[int, int] | None:
        """A descriptor on `name` and its size if it is a regular file, else None."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:  # a planted symlink: re-copy, the rename replaces it
                return None
            raise
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            return fd, st.st_size
        os.close(fd)
        return None

    def open_complete(self, name: str, size: int) -> int | None:
        """A descriptor on `name` if it is a regular file of `size` bytes, else None."""
        opened = self._open_regular(name)
        if opened is None:
            return None
        fd, actual = opened
        if actual == size:
            return fd
        os.close(fd)
        return None

    def read(self, name: str) -> bytes | None:
        """The content of `name` if it is a regular file (one the copier wrote), else None."""
        opened = self._open_regular(name)
        if opened is None:
            return None
        with open(opened[0], "rb") as file:
            return file.read()

    def part(self, name: str) -> PartFile:
        return PartFile(self, name)

    def write_atomic(self, name: str, data: bytes) -> None:
        with self.part(name) as part:
            part.write(data)
            part.publish()

    def point_latest(self) -> None:
        """Swap `<parent>/latest` to this run: a relative symlink renamed over the old one;
        unless it already points here, or at a newer run (a later name) that exists."""
        with locked(self.parent_fd):
            current = self.latest_run()
            if current is not None and current >= self.name:
                if current > self.name:
                    log.info("%s stays at %s, a newer run than %s", LATEST, current, self.name)
                return
            temp = f".{LATEST}.{self.name}{PART}"
            _unlink(temp, self.parent_fd)
            os.symlink(self.name, temp, dir_fd=self.parent_fd)
            os.rename(temp, LATEST, src_dir_fd=self.parent_fd, dst_dir_fd=self.parent_fd)
            os.fsync(self.parent_fd)

    def latest_run(self) -> str | None:
        """The sibling run directory `latest` points at, or None: missing, not a symlink,
        dangling, or pointing anywhere else (all replaced)."""
        try:
            target = os.readlink(LATEST, dir_fd=self.parent_fd)
            if "/" in target or target in (".", ".."):
                return None
            mode = os.stat(target, dir_fd=self.parent_fd, follow_symlinks=False).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            if error.errno == errno.EINVAL:  # not a symlink: the rename will say what it is
                return None
            raise
        return target if stat.S_ISDIR(mode) else None


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
