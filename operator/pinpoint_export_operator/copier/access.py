"""Whether the copier may write where the run goes, checked before S3 is listed.

The copier runs as uid/gid 65532 with the copy pod's fsGroup (65532). Storage that manages
ownership applies that fsGroup (the volume becomes group-writable); a directory owned by root
with mode 0755, as NFS exports and hostPath volumes often are, stays as it is, and a non-root
copier cannot write to it. That fails the copy at once (PERMANENT) with what to change, rather
than after the listing with a bare `Permission denied`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pinpoint_export_operator.copier.exitcodes import PermanentError
from pinpoint_export_operator.copier.space import Statvfs, nearest_existing

Access = Callable[[Path, int], bool]


class DestinationNotWritable(PermanentError):
    reason = "DestinationNotWritable"


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def current(cls) -> Identity:
        return cls(os.getuid(), os.getgid(), tuple(sorted(set(os.getgroups()))))


def not_writable(directory: Path, owner: int, group: int, mode: int, who: Identity) -> str:
    """What is wrong and what to change, short enough to reach the export's status whole
    (the operator keeps 400 characters, its own words and the Job's name included)."""
    groups = ",".join(map(str, who.groups)) or "none"
    return (
        f"{directory} is not writable by uid {who.uid} (gid {who.gid}, groups {groups}): owned "
        f"by {owner}:{group}, mode {mode:04o}. On the volume, chown it to {who.uid}:{who.gid} "
        f"(or chgrp {who.gid} and chmod g+rwx), or use storage that applies the pod's fsGroup"
    )


def check_writable(
    dest: Path,
    *,
    who: Identity | None = None,
    access: Access | None = None,
    statvfs: Statvfs = os.statvfs,
) -> None:
    """Raise DestinationNotWritable unless the copier can create the run directory and
    `latest` beside it (in the nearest existing directory above `dest`) and, if `dest` exists
    already (a resumed run), write into it."""
    directories = [nearest_existing(dest.parent)]
    if dest.is_dir():
        directories.append(dest)
    for directory in directories:
        if (access or os.access)(directory, os.W_OK | os.X_OK):
            continue
        if statvfs(str(directory)).f_flag & os.ST_RDONLY:
            raise DestinationNotWritable(
                f"{directory} is on a read-only volume: the claim must be mounted read-write"
            )
        info = directory.stat()
        raise DestinationNotWritable(
            not_writable(
                directory,
                info.st_uid,
                info.st_gid,
                info.st_mode & 0o7777,
                who or Identity.current(),
            )
        )
