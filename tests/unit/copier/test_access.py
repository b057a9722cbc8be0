"""The destination's access check: a directory the copier cannot write fails at once,
permanently, before S3 is listed, with what to change."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinpoint_export_operator.copier.access import (
    DestinationNotWritable,
    Identity,
    check_writable,
    not_writable,
)
from pinpoint_export_operator.copier.exitcodes import PERMANENT, CopyError, classify
from pinpoint_export_operator.copier.pipeline import Options, copy_run
from pinpoint_export_operator.copier.source import parse_s3_url

from .fake_s3 import SOURCE, FakeS3

COPIER = Identity(65532, 65532, (65532,))


def statvfs(read_only: bool) -> object:
    flag = os.ST_RDONLY if read_only else 0
    return lambda path: os.statvfs_result((4096, 4096, 1, 1, 1, 0, 0, 0, flag, 255))


def test_the_message_names_both_sides_and_the_fixes() -> None:
    message = not_writable(Path("/data/nightly"), 0, 0, 0o755, COPIER)
    assert message == (
        "/data/nightly is not writable by uid 65532 (gid 65532, groups 65532): owned by 0:0, "
        "mode 0755. On the volume, chown it to 65532:65532 (or chgrp 65532 and chmod g+rwx), "
        "or use storage that applies the pod's fsGroup"
    )
    assert len(message) <= 220  # with the operator's words, within its 400 characters


def test_the_nearest_existing_directory_and_a_resumed_run_are_checked(tmp_path: Path) -> None:
    asked: list[Path] = []

    def allowed(path: Path, mode: int) -> bool:
        asked.append(path)
        assert mode == os.W_OK | os.X_OK
        return True

    check_writable(tmp_path / "nightly" / "run-1", access=allowed)
    assert asked == [tmp_path]  # where `nightly` will be made
    (tmp_path / "nightly" / "run-1").mkdir(parents=True)
    asked.clear()
    check_writable(tmp_path / "nightly" / "run-1", access=allowed)
    assert asked == [tmp_path / "nightly", tmp_path / "nightly" / "run-1"]


def test_a_directory_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "nightly").mkdir(mode=0o755)
    with pytest.raises(DestinationNotWritable) as raised:
        check_writable(
            tmp_path / "nightly" / "run-1",
            who=COPIER,
            access=lambda path, mode: False,
            statvfs=statvfs(read_only=False),  # type: ignore[arg-type]
        )
    outcome = classify(raised.value)
    assert (outcome.code, outcome.reason) == (PERMANENT, "DestinationNotWritable")
    owner = os.stat(tmp_path / "nightly")
    assert outcome.message.startswith(
        f"{tmp_path / 'nightly'} is not writable by uid 65532 (gid 65532, groups 65532): "
        f"owned by {owner.st_uid}:{owner.st_gid}, mode 0755."
    )


def test_a_read_only_volume(tmp_path: Path) -> None:
    with pytest.raises(DestinationNotWritable, match="read-only volume"):
        check_writable(
            tmp_path / "run-1",
            access=lambda path, mode: False,
            statvfs=statvfs(read_only=True),  # type: ignore[arg-type]
        )


def test_the_copy_fails_before_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = FakeS3(2)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(CopyError) as raised:
        copy_run(s3.client, Options(parse_s3_url(SOURCE), tmp_path / "run-1"))
    assert classify(raised.value).reason == "DestinationNotWritable"
    assert s3.calls == []
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def root_owned() -> Iterator[Path]:
    """A directory owned by root, mode 0755, that any user can reach."""
    with tempfile.TemporaryDirectory(dir="/tmp") as top:
        Path(top).chmod(0o755)
        directory = Path(top) / "claim"
        directory.mkdir(mode=0o755)
        yield directory


def as_copier(dest: Path) -> str:
    """check_writable(dest) in a child process that runs as the copy pod does (uid and gid
    65532, fsGroup 65532): the error's message, or "" if it may write."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exec, the interpreter may sit under a closed home directory
        try:
            os.setgroups([65532])
            os.setresgid(65532, 65532, 65532)
            os.setresuid(65532, 65532, 65532)
            try:
                check_writable(dest)
                message = ""
            except DestinationNotWritable as error:
                message = str(error)
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")
def test_as_uid_65532_on_a_root_owned_0755_directory(root_owned: Path) -> None:
    """The real check, as the copy pod's user."""
    dest = root_owned / "nightly" / "run-1"
    assert as_copier(dest).startswith(
        f"{root_owned} is not writable by uid 65532 (gid 65532, groups 65532): owned by 0:0, "
        "mode 0755."
    )
    root_owned.chmod(0o2775)
    os.chown(root_owned, 0, 65532)  # what fsGroup does to a volume that manages ownership
    assert as_copier(dest) == ""
