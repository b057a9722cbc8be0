"""One copy run: list, map names, copy or resume each object, then manifest, `_SUCCESS`, `latest`.

A run that already completed (`_SUCCESS` and a valid manifest) is reported as recorded and not
listed again: its objects may have expired since. A listing with fewer objects than expected
(`expect_objects`) fails, retryable, before anything is written. Objects are copied by
a few file threads at once, each object decoded on a thread of its own (so several objects
decode in parallel, on as many cores); their parts share one pool of GET threads
(`concurrency`). The first failure stops everything and is the one reported; a failure of one
object names its key. Before S3 is listed, the copier must be able to write where the run goes
(`access`); before anything is written, the destination's filesystem must have room for the
objects not yet on disk (`space`). Once the run is published, `keep_runs` removes the
oldest complete runs beside it (`retention`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinpoint_export_operator.copier.access import check_writable
from pinpoint_export_operator.copier.exitcodes import (
    CorruptObject,
    IncompleteListing,
    ObjectError,
    ObjectFailed,
)
from pinpoint_export_operator.copier.layout import PartFile, RunDir
from pinpoint_export_operator.copier.manifest import (
    MANIFEST,
    SUCCESS,
    FileRecord,
    build_manifest,
    manifest_bytes,
    parse_manifest,
    pieces,
)
from pinpoint_export_operator.copier.retention import prune
from pinpoint_export_operator.copier.safepaths import LocalNames, plan_names
from pinpoint_export_operator.copier.source import S3Object, S3Url, list_gz_objects
from pinpoint_export_operator.copier.space import Statvfs, check_free_space
from pinpoint_export_operator.copier.transfer import Aborted, Downloader, TransferError
from pinpoint_export_operator.copier.verify import (
    Digest,
    GzipCheck,
    Hasher,
    InvalidGzip,
    Sink,
    etag_md5,
    file_md5,
    read_blocks,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

MiB = 1 << 20


@dataclass(frozen=True)
class Options:
    source: S3Url
    dest: Path
    decompress: bool = False
    concurrency: int = 8  # parallel ranged GETs
    part_size: int = 16 * MiB
    expect_objects: int | None = None  # the least number of .gz objects to list, if known
    keep_runs: int | None = None  # complete runs to keep beside this one, itself included

    def fewer_than_expected(self, objects: int) -> bool:
        return self.expect_objects is not None and objects < self.expect_objects

    @property
    def file_threads(self) -> int:
        # Objects in flight: enough to keep every GET thread busy between objects, and as many
        # decoders as a small node has cores (more would only share the same cores).
        return max(2, self.concurrency // 2)


@dataclass(frozen=True)
class Result:
    manifest: dict[str, Any]
    objects: int
    resumed: int
    already_complete: bool = False


def copy_run(client: S3Client, options: Options, statvfs: Statvfs = os.statvfs) -> Result:
    completed = _completed_run(options)
    if completed is not None:
        return completed
    check_writable(options.dest)  # before S3 is called: fail at once, naming the fix
    objects = list_gz_objects(client, options.source)
    if options.fewer_than_expected(len(objects)):
        raise IncompleteListing(
            f"listed {len(objects)} .gz objects under {options.source}, expected at least "
            f"{options.expect_objects}: the listing may lag behind, retry"
        )
    prefix = len(options.source.prefix)
    names = plan_names(obj.key[prefix:] for obj in objects)
    if not objects:
        log.warning("no .gz objects under %s: an empty export", options.source)
    check_free_space(
        options.dest,
        _missing_bytes(options.dest, objects, names, prefix),
        decompress=options.decompress,
        statvfs=statvfs,
    )
    with RunDir(options.dest) as run:
        # `_SUCCESS` means "complete"; until this run ends, the directory is not.
        run.remove_leftovers(SUCCESS)
        records, resumed = _copy_objects(client, options, run, objects, names)
        manifest = build_manifest(str(options.source), records)
        run.write_atomic(MANIFEST, manifest_bytes(manifest))
        run.write_atomic(SUCCESS, b"")
        _publish(run, options)
    return Result(manifest, len(objects), resumed)


def _publish(run: RunDir, options: Options) -> None:
    """Point `latest` at the complete run, then apply --keep-runs."""
    run.point_latest()
    if options.keep_runs is not None:
        prune(run, options.keep_runs)


def _missing_bytes(
    dest: Path, objects: list[S3Object], names: dict[str, LocalNames], prefix: int
) -> int:
    """The bytes of the objects whose `.gz` is not yet complete in `dest` (a resumed run)."""
    try:
        run = RunDir(dest, create=False)
    except FileNotFoundError:
        return sum(obj.size for obj in objects)
    missing = 0
    with run:
        for obj in objects:
            fd = run.open_complete(names[obj.key[prefix:]].gz, obj.size)
            if fd is None:
                missing += obj.size
            else:
                os.close(fd)
    return missing


def _completed_run(options: Options) -> Result | None:
    """What an earlier run into `dest` recorded, if it completed; None otherwise. The run
    directory is left as it is; only `latest` may move forward to it."""
    try:
        run = RunDir(options.dest, create=False)
    except FileNotFoundError:
        return None
    with run:
        recorded = run.read(MANIFEST) if run.read(SUCCESS) is not None else None
        manifest = parse_manifest(recorded, str(options.source)) if recorded else None
        if manifest is None:
            return None
        objects = pieces(manifest)
        log.info("%s is already complete: nothing copied, its manifest reported", run.path)
        if options.fewer_than_expected(objects):
            log.warning(
                "%s records %d objects, fewer than the %d expected: latest left as it is",
                run.path,
                objects,
                options.expect_objects,
            )
        else:
            _publish(run, options)
    return Result(manifest, objects, objects, already_complete=True)


def _copy_objects(
    client: S3Client,
    options: Options,
    run: RunDir,
    objects: list[S3Object],
    names: dict[str, LocalNames],
) -> tuple[list[FileRecord], int]:
    prefix = len(options.source.prefix)
    records: list[FileRecord] = []
    resumed = 0
    with (
        ThreadPoolExecutor(options.concurrency, "get") as gets,
        ThreadPoolExecutor(options.file_threads, "file") as files,
    ):
        downloader = Downloader(client, options.source.bucket, gets, options.part_size)
        copier = _ObjectCopier(run, downloader, options.decompress)
        futures = [files.submit(copier.copy, obj, names[obj.key[prefix:]]) for obj in objects]
        try:
            for future in as_completed(futures):
                done, was_resumed = future.result()
                records += done
                resumed += was_resumed
        except BaseException:
            downloader.abort.set()
            for future in futures:
                future.cancel()
            raise
    return records, resumed


class _ObjectCopier:
    def __init__(self, run: RunDir, downloader: Downloader, decompress: bool) -> None:
        self._run = run
        self._downloader = downloader
        self._decompress = decompress

    def copy(self, obj: S3Object, names: LocalNames) -> tuple[list[FileRecord], bool]:
        """The object's files, and whether they were already there (a resumed run)."""
        try:
            return self._copy(obj, names)
        except (Aborted, ObjectError):
            raise
        except Exception as error:
            raise ObjectFailed(obj.key, error) from error

    def _copy(self, obj: S3Object, names: LocalNames) -> tuple[list[FileRecord], bool]:
        if self._downloader.abort.is_set():
            raise Aborted()
        started = time.monotonic()
        existing = self._run.open_complete(names.gz, obj.size)
        if existing is not None:
            try:
                records = self._check(
                    obj, names, lambda feed: read_blocks(existing, 0, obj.size, feed)
                )
                log.info("%s: already complete and verified", names.gz)
                return records, True
            except InvalidGzip as error:
                log.warning("%s (%s): present but %s: copying again", names.gz, obj.key, error)
            finally:
                os.close(existing)
        with self._run.part(names.gz) as part:
            os.ftruncate(part.fd, obj.size)
            try:
                records = self._check(
                    obj,
                    names,
                    lambda feed: self._downloader.download(obj, part.fd, feed),
                    gz_part=part,
                )
            except InvalidGzip as error:
                raise _corrupt(obj, part.fd, error) from error
        seconds = time.monotonic() - started
        log.info(
            "%s: %d bytes from %s in %.2fs (%.0f MiB/s)",
            names.gz,
            obj.size,
            obj.key,
            seconds,
            obj.size / MiB / max(seconds, 1e-6),
        )
        return records, False

    def _check(
        self,
        obj: S3Object,
        names: LocalNames,
        source: Callable[[Sink], None],
        gz_part: PartFile | None = None,
    ) -> list[FileRecord]:
        """Feed the object's bytes from `source` through verification (writing the `.jsonl`
        with --decompress), then publish the files; raises InvalidGzip."""
        with ExitStack() as stack:
            plain = Hasher()
            plain_part = (
                stack.enter_context(self._run.part(names.plain)) if self._decompress else None
            )
            check = stack.enter_context(GzipCheck(_tee(plain, plain_part) if plain_part else None))
            source(check.feed)
            gz = check.finish()
            if gz.bytes != obj.size:  # the ranges add up by construction; say so explicitly
                raise TransferError(obj.key, f"got {gz.bytes} bytes, listed {obj.size}")
            if gz_part is not None:
                gz_part.publish()
            records = [_record(obj, names.gz, gz)]
            if plain_part is not None:
                plain_part.publish()
                records.append(_record(obj, names.plain, plain.digest(gz.lines), names.gz))
        return records


def _tee(hasher: Hasher, part: PartFile) -> Sink:
    def sink(data: bytes) -> None:
        hasher.update(data)
        part.write(data)

    return sink


def _record(obj: S3Object, name: str, digest: Digest, derived: str | None = None) -> FileRecord:
    return FileRecord(
        name, digest.bytes, digest.sha256, obj.key, obj.clean_etag, derived, digest.lines
    )


def _corrupt(obj: S3Object, fd: int, error: InvalidGzip) -> CorruptObject:
    """Permanent if the downloaded bytes are exactly what S3 stores (MD5 = ETag): a retry would
    fetch the same broken object. Otherwise (or when the ETag is no MD5) the transfer may be at
    fault, and a retry may succeed."""
    expected = etag_md5(obj.etag)
    in_s3 = expected is not None and file_md5(fd, obj.size) == expected
    return CorruptObject(obj.key, str(error), permanent=in_s3)
