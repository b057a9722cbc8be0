"""The copier killed mid-file: the copy Job's retry resumes and the result is identical."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
from pathlib import Path

import pytest

from pinpoint_export_operator import api as names
from pinpoint_export_operator.runtime import timestamps
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.s3server import S3Credentials

from .conftest import BUCKET, Exports

pytestmark = pytest.mark.e2e
BIG_OBJECT_MB = 256


def copier_pid(run_dir_suffix: str) -> int | None:
    """The copier process (run by the node agent) writing to this run directory."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"copy" in argv and any(a.endswith(run_dir_suffix.encode()) for a in argv):
            return int(entry.name)
    return None


def big_gzip(path: Path, megabytes: int) -> str:
    """A gzip object of incompressible lines, written to a file; returns its sha256."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(megabytes):
            out.write(os.urandom(1024 * 1024).hex().encode()[: 1024 * 1024] + b"\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_copier_killed_mid_file_resumes(
    exports: Exports, emulator: EmulatorAdmin, s3: S3Credentials, tmp_path: Path
) -> None:
    emulator.seed(exports.app, 200)
    # Hold the Pinpoint job before it completes, to add a large piece to its run prefix.
    emulator.set_faults(freeze_status="COMPLETING")
    try:
        exports.apply("resumed")
        meta = exports.wait("resumed", "Exporting")["metadata"]
        run = names.run_id(timestamps.parse(meta["creationTimestamp"]), meta["uid"])
        prefix = names.run_prefix(f"s3://{BUCKET}/endpoints/", exports.namespace, "resumed", run)
        key = prefix.removeprefix(f"s3://{BUCKET}/") + "big/0.gz"
        source = tmp_path / "big.gz"
        expected_sha = big_gzip(source, BIG_OBJECT_MB)
        s3.client().upload_file(str(source), BUCKET, key)
    finally:
        emulator.set_faults()

    run_dir = exports.volume / "marketing" / "nightly" / run
    parts = lambda: [p for p in run_dir.rglob("*.part") if p.stat().st_size > 0]  # noqa: E731
    process.wait_for(parts, 120, "a partly written file", interval=0.01)
    assert not (run_dir / "_SUCCESS").exists()
    pid = process.wait_for(lambda: copier_pid(f"/{run}"), 10, "the copier process")
    os.kill(pid, signal.SIGKILL)

    finished = exports.wait("resumed", timeout=240)
    assert finished["status"]["phase"] == "Succeeded", finished["status"]
    assert finished["status"]["copyJob"]["failed"] >= 1  # the killed pod, retried
    assert not list(run_dir.rglob("*.part"))
    assert (run_dir / "_SUCCESS").exists()
    files = json.loads((run_dir / "manifest.json").read_text())["files"]
    big = [f for f in files if f["source"].endswith("big/0.gz")]
    assert len(big) == 1 and big[0]["sha256"] == expected_sha
    for entry in files:
        assert hashlib.sha256((run_dir / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    assert finished["status"]["output"]["files"] == len(files)
