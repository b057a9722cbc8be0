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
    """What is wrong and what to change, in a message bounded like the others."""
    groups = ",".join(map(str, who.groups)) or "none"
    return (
        f"{directory} is not writable by the copier (uid {who.uid}, gid {who.gid}, groups "
        f"{groups}): it is owned by {owner}:{group} with mode {mode:04o}. Give the copy pod "
        f"write access to the claim's directory: on the volume, `chown {who.uid}:{who.gid}` "
        f"it, or make it group-writable for gid {who.gid} (`chgrp {who.gid}`, `chmod g+rwx`); "
        "or use storage that applies the pod's fsGroup (hostPath and NFS volumes do not)"
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
