"""The copier against a real S3 server (versitygw), run as the copy Job runs it."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ResponseStreamingError

from pinpoint_export_operator.copier.exitcodes import PERMANENT, RETRYABLE, USAGE
from pinpoint_export_operator.copier.pipeline import MiB, Options, copy_run
from pinpoint_export_operator.copier.safepaths import plan_names
from pinpoint_export_operator.copier.source import parse_s3_url
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.s3server import S3Credentials

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.e2e

PREFIX = "exports/ns/nightly/run-1/"


def endpoints(count: int, seed: int) -> bytes:
    """Pinpoint-like NDJSON endpoints."""
    rnd = random.Random(seed)
    return b"".join(
        b'{"Id":"%d","ChannelType":"EMAIL","Address":"u%d@example.com","Score":%d}\n'
        % (i, rnd.getrandbits(32), rnd.getrandbits(16))
        for i in range(count)
    )


def incompressible_gz(size: int, seed: int) -> bytes:
    """A gzip stream of about `size` bytes, fast to make (stored blocks of random bytes)."""
    return gzip.compress(random.Random(seed).randbytes(size), compresslevel=0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]

    @property
    def code(self) -> int:
        return self.result.returncode

    @property
    def summary(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.result.stdout.strip().splitlines()[-1])
        return parsed


@pytest.fixture
def bucket(s3: S3Credentials) -> str:
    name = f"copier-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def put(s3: S3Credentials, bucket: str) -> Callable[[str, bytes], bytes]:
    client = s3.client()

    def upload(key: str, data: bytes) -> bytes:
        client.put_object(Bucket=bucket, Key=key, Body=data)
        return data

    return upload


def copier_argv(bucket: str, dest: Path, *args: str) -> list[str]:
    source = f"s3://{bucket}/{PREFIX}"
    return [sys.executable, "-m", "pinpoint_export_operator", "copy", "--source", source,
            "--dest", str(dest), *args]  # fmt: skip


def copier_env(s3: S3Credentials) -> dict[str, str]:
    # As in the Job: endpoint and credentials from botocore's variables, and a HOME that does
    # not exist, since the root filesystem is read-only there.
    return {**os.environ, **s3.env(), "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture
def copy(s3: S3Credentials, bucket: str) -> Callable[..., Run]:
    def run(dest: Path, *args: str) -> Run:
        result = subprocess.run(
            copier_argv(bucket, dest, *args),
            env=copier_env(s3),
            capture_output=True,
            text=True,
            timeout=300,
        )
        sys.stderr.write(result.stderr)
        return Run(result)

    return run


def files_of(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


def assert_manifest_matches_files(run_dir: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (run_dir / entry["name"]).read_bytes()
        assert (len(data), sha256(data)) == (entry["bytes"], entry["sha256"]), entry["name"]
    listed = {e["name"] for e in manifest["files"]} | {"manifest.json", "_SUCCESS"}
    assert listed == {p.name for p in run_dir.iterdir()}
    return manifest


def test_happy_path(
    copy: Callable[..., Run], put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    pieces = {
        "a.gz": endpoints(5000, 1),
        "sub/dir/b.gz": endpoints(20000, 2),
        "c.gz": endpoints(1, 3),
    }
    uploaded = {key: put(PREFIX + key, gzip.compress(data)) for key, data in pieces.items()}
    # More than one ranged GET (1 MiB parts), and two gzip members.
    big = incompressible_gz(3 * MiB, 4) + gzip.compress(endpoints(100, 5))
    uploaded["d.gz"] = put(PREFIX + "d.gz", big)
    put(PREFIX + "_SUCCESS", b"")  # Pinpoint's markers and the like: skipped
    put(PREFIX + "write-check.txt", b"x")
    put("exports/ns/nightly/run-10/other.gz", gzip.compress(b"another run\n"))
    termination_log = tmp_path / "termination-log"
    run_dir = tmp_path / "volume" / "nightly" / "run-1"

    run = copy(run_dir, "--decompress", "--part-size", "1", "--concurrency", "4",
               "--termination-log", str(termination_log))  # fmt: skip

    assert run.code == 0
    manifest = assert_manifest_matches_files(run_dir)
    names = {e["name"]: e for e in manifest["files"]}
    assert set(names) == {"a.gz", "a.jsonl", "sub_dir_b.gz", "sub_dir_b.jsonl", "c.gz",
                          "c.jsonl", "d.gz", "d.jsonl"}  # fmt: skip
    for key, data in uploaded.items():
        gz_name = plan_names([key])[key]
        entry = names[gz_name.gz]
        assert (entry["source"], entry["sha256"]) == (PREFIX + key, sha256(data))
        assert entry["etag"] == hashlib.md5(data).hexdigest()
        assert (run_dir / gz_name.plain).read_bytes() == gzip.decompress(data)
        assert names[gz_name.plain]["decompressedFrom"] == gz_name.gz
        lines = gzip.decompress(data).count(b"\n")  # endpoints (and the random bytes' \n)
        assert entry["lines"] == names[gz_name.plain]["lines"] == lines
    assert (run_dir / "_SUCCESS").read_bytes() == b""
    assert os.readlink(run_dir.parent / "latest") == "run-1"
    assert run.summary == {**run.summary, "files": 8, "objects": 4, "resumed": 0}
    assert run.summary["bytes"] == manifest["totals"]["bytes"]
    newlines = sum(gzip.decompress(data).count(b"\n") for data in uploaded.values())
    assert run.summary["lines"] == manifest["totals"]["lines"] == newlines
    assert json.loads(termination_log.read_text()) == run.summary

    # A second run into the completed directory reports its manifest and changes nothing.
    before = files_of(run_dir)
    again = copy(run_dir, "--decompress")
    assert again.code == 0 and again.summary["resumed"] == 4
    assert again.summary["alreadyComplete"] is True and not run.summary["alreadyComplete"]
    assert files_of(run_dir) == before


def test_fewer_objects_than_expected_is_retryable_and_writes_nothing(
    copy: Callable[..., Run], put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    put(PREFIX + "a.gz", gzip.compress(endpoints(10, 1)))
    termination_log = tmp_path / "termination-log"
    short = copy(tmp_path / "run-1", "--expect-objects", "2", "--termination-log",
                 str(termination_log))  # fmt: skip
    assert short.code == RETRYABLE
    report = json.loads(termination_log.read_text())
    assert report["error"] == "IncompleteListing"
    assert "listed 1 " in report["message"] and "at least 2:" in report["message"]
    assert not (tmp_path / "run-1").exists() and not (tmp_path / "latest").exists()
    assert copy(tmp_path / "run-1", "--expect-objects", "1").code == 0


def test_an_empty_export_is_a_success_with_no_files(
    copy: Callable[..., Run], put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    put(PREFIX + "_SUCCESS", b"")
    run = copy(tmp_path / "run-1")
    assert run.code == 0 and run.summary["files"] == 0
    assert sorted(os.listdir(tmp_path / "run-1")) == ["_SUCCESS", "manifest.json"]


def test_killed_mid_file_then_resumed(
    s3: S3Credentials, bucket: str, copy: Callable[..., Run], put: Callable[[str, bytes], bytes],
    tmp_path: Path,
) -> None:  # fmt: skip
    uploaded = {
        f"a-{i}.gz": put(f"{PREFIX}a-{i}.gz", gzip.compress(endpoints(3000, i))) for i in range(3)
    }
    uploaded["z-big.gz"] = put(PREFIX + "z-big.gz", incompressible_gz(64 * MiB, 9))
    run_dir = tmp_path / "run-1"
    big_part = run_dir / "z-big.gz.part"

    # One GET of 1 MiB at a time: slow enough to be caught mid-file.
    argv = copier_argv(bucket, run_dir, "--concurrency", "1", "--part-size", "1", "--decompress")
    copier = subprocess.Popen(argv, env=copier_env(s3), stdout=subprocess.DEVNULL)
    try:
        process.wait_for(
            lambda: big_part.exists() and big_part.stat().st_blocks * 512 >= 8 * MiB,
            60,
            "the big object half-written",
            interval=0.005,
            alive=copier,
        )
    finally:
        copier.send_signal(signal.SIGKILL)
        copier.wait()
    assert big_part.exists()
    assert not (run_dir / "_SUCCESS").exists() and not (run_dir / "z-big.gz").exists()
    done_before = {name for name in os.listdir(run_dir) if name.endswith(".gz")}

    run = copy(run_dir, "--decompress")

    assert run.code == 0
    assert run.summary["resumed"] == len(done_before) > 0
    manifest = assert_manifest_matches_files(run_dir)  # no .part left
    sums = {e["source"]: e["sha256"] for e in manifest["files"] if e["name"].endswith(".gz")}
    assert sums == {PREFIX + key: sha256(data) for key, data in uploaded.items()}
    # The resumed copy is the same as a copy that was never interrupted.
    clean = copy(tmp_path / "run-2", "--decompress")
    assert clean.code == 0
    assert (tmp_path / "run-2" / "manifest.json").read_bytes() == (
        run_dir / "manifest.json"
    ).read_bytes()
    success = (run_dir / "_SUCCESS").stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= success for p in run_dir.iterdir())


NOBODY = 65534
IN_A_POD = """
set -e
mount -t tmpfs -o mode=0755 tmpfs /mnt         # the volume (/tmp may hold the project)
mkdir -m 0777 /mnt/volume
mount -o remount,bind,ro /                       # readOnlyRootFilesystem, /tmp included
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
cd /
as_nobody "$@" --dest /mnt/volume/run-1 || exit 90
cat /mnt/volume/run-1/manifest.json
[ -L /mnt/volume/latest ] && [ -f /mnt/volume/run-1/_SUCCESS ] || exit 91
as_nobody "$@" --dest /mnt/not-writable/run-1 && exit 92 || echo "exit $?"
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")),
    reason="needs root to make a private mount namespace",
)
def test_a_read_only_root_filesystem_and_a_non_root_user(
    s3: S3Credentials, bucket: str, put: Callable[[str, bytes], bytes]
) -> None:
    """As in the copy Job's restricted pod: only the volume is writable, HOME does not exist."""
    data = put(PREFIX + "a.gz", gzip.compress(endpoints(1000, 1)))
    argv = ["unshare", "--mount", "sh", "-c", IN_A_POD, "sh", *copier_argv(bucket, Path("/"))[:-2]]
    result = subprocess.run(argv, env=copier_env(s3), capture_output=True, text=True, timeout=120)
    sys.stderr.write(result.stderr)
    assert result.returncode == 0, result.stdout
    summary, *manifest_lines, last = result.stdout.strip().splitlines()
    assert json.loads(summary)["files"] == 1
    manifest = json.loads("\n".join(manifest_lines))
    assert manifest["files"][0]["sha256"] == sha256(data)
    assert last == f"exit {PERMANENT}"  # EACCES on the volume: permanent


def hostile_client(s3: S3Credentials, stand_ins: dict[str, str]) -> S3Client:
    """A client that sees hostile keys where the stand-in objects are.

    S3 takes any UTF-8 key up to 1024 bytes (`../x.gz`, `/abs.gz`, control characters), but
    the sandbox's server stores objects as files and cleans or refuses such keys. So the
    listing is rewritten on its way in, and GETs of a hostile key fetch its stand-in.
    """
    client = s3.client()
    hostile_of = {real: hostile for hostile, real in stand_ins.items()}

    def rewrite_listing(parsed: dict[str, Any], **_: Any) -> None:
        for item in parsed.get("Contents", []):
            item["Key"] = hostile_of.get(item["Key"], item["Key"])

    def fetch_stand_in(params: dict[str, Any], **_: Any) -> None:
        params["Key"] = stand_ins.get(params["Key"], params["Key"])

    client.meta.events.register("after-call.s3.ListObjectsV2", rewrite_listing)
    client.meta.events.register("before-parameter-build.s3.GetObject", fetch_stand_in)
    return client


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_mtime_ns,
                                   p.read_bytes() if p.is_file() else b"")
        for p in sorted(root.rglob("*"))
    }  # fmt: skip


def test_hostile_keys_never_write_outside_the_run_directory(
    s3: S3Credentials, bucket: str, put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    hostile = [
        "../x.gz",
        "../../../../../../tmp/escape.gz",
        "/abs.gz",
        "a/../../b.gz",
        "x" * 300 + ".gz",
        "y/" * 200 + "deep.gz",
        "ctl\x00\x01\n\x1b[31m.gz",
        "..\\..\\windows.gz",
        "\u2025/\u2215look-alike.gz",
        "x.gz",  # collides with ../x.gz once cleaned
        "latest.gz",
        "manifest.json.gz",
    ]
    keys = [PREFIX + k for k in hostile]
    stand_ins = {key: f"{PREFIX}stand-in-{i}.gz" for i, key in enumerate(keys)}
    # Real keys that the server can hold: backslashes, spaces, non-ASCII.
    keys += [PREFIX + "..\\real\\back slash.gz", PREFIX + "é/ü.gz"]
    contents = {key: gzip.compress(b'{"key":%d}\n' % i) for i, key in enumerate(keys)}
    for key, data in contents.items():
        put(stand_ins.get(key, key), data)

    volume = tmp_path / "volume"
    outside = tmp_path / "outside"  # the sentinel: must stay exactly as it is
    outside.mkdir()
    (outside / "target.gz").write_bytes(b"precious")
    (outside / "sub").mkdir()
    run_dir = volume / "nightly" / "run-1"
    run_dir.mkdir(parents=True)
    names = plan_names(k.removeprefix(PREFIX) for k in keys)
    # Symlinks planted in the destination, pointing outside, where the copier will write.
    x = names["x.gz"]
    plants = [x.gz, x.gz + ".part", x.plain, x.plain + ".part", "manifest.json",
              "manifest.json.part", "_SUCCESS", "_SUCCESS.part"]  # fmt: skip
    for name in plants:
        (run_dir / name).symlink_to(outside / "target.gz")
    (volume / "nightly" / "latest").symlink_to(outside / "sub")
    (volume / "nightly" / ".latest.run-1.part").symlink_to(outside / "sub")
    before = snapshot(outside)

    client = hostile_client(s3, stand_ins)
    result = copy_run(
        client, Options(parse_s3_url(f"s3://{bucket}/{PREFIX}"), run_dir, decompress=True)
    )

    assert snapshot(outside) == before
    assert result.objects == len(keys)
    manifest = assert_manifest_matches_files(run_dir)
    assert all(not p.is_symlink() for p in run_dir.iterdir())
    assert sorted(p.name for p in volume.rglob("*")) == sorted(
        ["nightly", "latest", "run-1", *os.listdir(run_dir)]
    )
    assert os.readlink(volume / "nightly" / "latest") == "run-1"
    by_source = {e["source"]: e for e in manifest["files"] if "decompressedFrom" not in e}
    for key, data in contents.items():
        entry = by_source[key]
        assert entry["name"] == names[key.removeprefix(PREFIX)].gz
        assert (run_dir / entry["name"]).read_bytes() == data


def test_a_symlink_above_the_run_directory_is_refused(
    copy: Callable[..., Run], put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    put(PREFIX + "a.gz", gzip.compress(b"{}\n"))
    outside = tmp_path / "outside"  # /etc, say
    outside.mkdir()
    (tmp_path / "volume").mkdir()
    (tmp_path / "volume" / "a").symlink_to(outside)
    run = copy(tmp_path / "volume" / "a" / "b" / "run-1")
    assert run.code == PERMANENT
    assert str(tmp_path / "volume" / "a") in run.result.stderr
    assert list(outside.iterdir()) == []


def test_a_run_directory_planted_as_a_symlink_is_refused(
    copy: Callable[..., Run], put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    put(PREFIX + "a.gz", gzip.compress(b"{}\n"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "run-1").symlink_to(outside)
    run = copy(tmp_path / "run-1")
    assert run.code == PERMANENT
    assert list(outside.iterdir()) == []


class CutBody:
    """A response body whose connection breaks after `limit` bytes."""

    def __init__(self, body: Any, limit: int) -> None:
        self._body, self._left = body, limit

    def read(self, amount: int) -> bytes:
        if self._left == 0:
            raise ResponseStreamingError(error="connection reset by peer (injected)")
        data: bytes = self._body.read(min(amount, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._body.close()


def test_a_body_cut_mid_stream_is_resumed_from_where_it_stopped(
    s3: S3Credentials, bucket: str, put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    data = put(PREFIX + "a.gz", incompressible_gz(3 * MiB, 1))
    client = s3.client()
    ranges: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        ranges.append(params["Range"])

    def cut_the_first_three(parsed: dict[str, Any], **_: Any) -> None:
        if len(ranges) <= 3:
            parsed["Body"] = CutBody(parsed["Body"], 300_000)

    client.meta.events.register("provide-client-params.s3.GetObject", record)
    client.meta.events.register("after-call.s3.GetObject", cut_the_first_three)
    source = parse_s3_url(f"s3://{bucket}/{PREFIX}")

    result = copy_run(client, Options(source, tmp_path / "run-1", concurrency=1, part_size=MiB))

    assert result.manifest["files"][0]["sha256"] == sha256(data)
    assert (tmp_path / "run-1" / "a.gz").read_bytes() == data
    # Each cut part was asked again from its first missing byte, not from its start.
    assert ranges[:2] == [f"bytes=0-{MiB - 1}", f"bytes=300000-{MiB - 1}"]
    assert len(ranges) == len(set(ranges)) == 4 + 3


@pytest.mark.parametrize(
    ("multipart", "code"),
    [(False, PERMANENT), (True, RETRYABLE)],
    ids=["md5-etag-so-broken-in-s3", "multipart-etag-so-maybe-in-transit"],
)
def test_a_truncated_gz_fails_and_leaves_no_file(
    s3: S3Credentials, bucket: str, copy: Callable[..., Run], put: Callable[[str, bytes], bytes],
    tmp_path: Path, multipart: bool, code: int,
) -> None:  # fmt: skip
    good = put(PREFIX + "good.gz", gzip.compress(endpoints(100, 1)))
    truncated = gzip.compress(endpoints(50000, 2))[:-1000]
    if multipart:  # its ETag is no MD5: the copier cannot tell S3's bytes from a bad transfer
        client = s3.client()
        upload = client.create_multipart_upload(Bucket=bucket, Key=PREFIX + "bad.gz")
        part = client.upload_part(Bucket=bucket, Key=PREFIX + "bad.gz", PartNumber=1,
                                  UploadId=upload["UploadId"], Body=truncated)  # fmt: skip
        client.complete_multipart_upload(
            Bucket=bucket, Key=PREFIX + "bad.gz", UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )  # fmt: skip
    else:
        put(PREFIX + "bad.gz", truncated)
    termination_log = tmp_path / "termination-log"
    run_dir = tmp_path / "run-1"

    run = copy(run_dir, "--decompress", "--termination-log", str(termination_log))

    assert run.code == code
    left = set(os.listdir(run_dir))
    assert not left & {"bad.gz", "bad.jsonl", "bad.gz.part", "bad.jsonl.part", "_SUCCESS"}
    assert left <= {"good.gz", "good.jsonl"}
    if "good.gz" in left:
        assert (run_dir / "good.gz").read_bytes() == good
    report = json.loads(termination_log.read_text())
    assert report["error"] == "CorruptObject" and report["exitCode"] == code
    assert report["retryable"] == (code == RETRYABLE) and "bad.gz" in report["message"]
    assert not (tmp_path / "latest").exists()


def test_missing_bucket_is_permanent(s3: S3Credentials, tmp_path: Path) -> None:
    argv = copier_argv("no-such-bucket-" + uuid.uuid4().hex[:8], tmp_path / "run-1")
    result = subprocess.run(argv, env=copier_env(s3), capture_output=True, text=True, timeout=120)
    assert result.returncode == PERMANENT
    assert "NoSuchBucket" in result.stderr
    assert not (tmp_path / "run-1").exists()  # nothing is created before the listing works


def test_bad_credentials_are_permanent(s3: S3Credentials, bucket: str, tmp_path: Path) -> None:
    env = {**copier_env(s3), "AWS_SECRET_ACCESS_KEY": "wrong"}
    result = subprocess.run(
        copier_argv(bucket, tmp_path / "run-1"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == PERMANENT


def test_unusable_destination_is_permanent(
    copy: Callable[..., Run], put: Callable[[str, bytes], bytes], tmp_path: Path
) -> None:
    put(PREFIX + "a.gz", gzip.compress(b"{}\n"))
    (tmp_path / "a-file").write_text("")
    assert copy(tmp_path / "a-file" / "run-1").code == PERMANENT


@pytest.mark.parametrize(
    "args",
    [["--source", "https://bucket/prefix/"], ["--dest", "/data/latest"], ["--concurrency", "0"]],
)
def test_bad_arguments_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "pinpoint_export_operator", "copy", "--source", "s3://b/p/",
            "--dest", str(tmp_path / "run"), *args]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == USAGE
