"""Benchmark: the copier, `aws s3 cp --recursive`, a whole-object read, and a whole-object read
with a decode, on the same objects.

    .venv/bin/python bench/copier_bench.py [--repeat N] [--small-count N] [--small-mib M]
                                           [--big-mib M] [--only SET/SHAPE ...]

Starts its own S3 server (versitygw) in a temporary directory and uploads two data sets, each
in two shapes (8 x 20 MiB and 1 x 1 GiB of gzip by default):

- realistic, the headline: Pinpoint-like endpoints, the emulator's own rows
  (`pinpoint_export_sandbox.emulator.synthetic`) written as the emulator writes them (compact
  NDJSON, gzip level 6), about 9:1, so the copier's full decode costs what it costs on a real
  export. Each object is one gzip member, like Pinpoint's pieces, spliced from a few segments
  compressed once (each ends on a full flush; the CRC-32s are combined): 1.2 GB of gzip in
  seconds rather than compressing 11 GB of JSON;
- incompressible: random bytes in stored blocks, of the same sizes: decoding it is nearly free,
  so it measures transfer, hashing and writing.

The last (`read+decode`) only reads and decodes: what the plainest copier that decodes every
object takes. A lower bound: every tool first starts (imports boto3, makes its client) and
lists the objects before a byte arrives (`startup_seconds`: that alone, the best of the
rounds), and the S3 server (on the same cores) spends CPU on every copy (measured for each), so
no copier that decodes every object can take less than start-up + (decode + the server's
least) / cores (`decoding_copier_floor_seconds`).

Each shape of each set is copied with each tool, `--repeat` rounds, each round in a different
order. Each copy is a child process: its wall time, CPU time (user + system, from wait4) and
peak RSS (ru_maxrss) are measured; the page cache is synced before each copy so that no tool
pays for another's writeback; the 1-minute load average before each copy is recorded (the
machine may be shared). The best time of the rounds is reported (the least disturbed by other
load), with the CPU time and peak RSS of that run. The children share a bytecode cache in the
temporary directory, warmed by a first unmeasured copy, as an installed tool has its .pyc
files (the copier's image compiles them at build time). The copier's summary line must count
every endpoint (`lines`).

The decode column is what the copier's decode alone (inflate to the end, CRC and length
checked, newlines counted) costs in CPU on the same bytes, on one thread in this process,
with the copier's decoder (`isal`) and with zlib: the copier's CPU target is awscli's plus
that. Writes bench/results/copier.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from isal.isal_zlib import crc32_combine

from pinpoint_export_operator.copier import verify
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.synthetic import SyntheticBlock, ndjson
from pinpoint_export_sandbox.s3server import S3Credentials, S3Server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "copier.json"
VENV_BIN = Path(sys.executable).parent
MiB = 1 << 20
GiB = 1 << 30
BUCKET = "bench"
WARM_UP = "warm-up"
APP = "3f9a0c1e5b7d4e2f8a6c0b1d3e5f7a9c"
SEGMENT_ENDPOINTS = 30_000  # about 2.5 MiB of gzip each
SEGMENTS = 8  # distinct segments; objects reuse them in turn
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, unknown OS
FINAL_BLOCK = b"\x03\x00"  # an empty final block (fixed Huffman): what ends a deflate stream

# The AWS sample: list, then read each whole object into memory and write it out.
NAIVE = """
import sys
from pathlib import Path
import boto3

bucket, prefix, dest = sys.argv[1:]
s3 = boto3.client("s3")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get("Contents", []):
        data = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        (Path(dest) / Path(item["Key"]).name).write_bytes(data)
"""

# What every tool does before its first byte: start, make its client, list the objects.
STARTUP = """
import sys
import boto3

bucket, prefix = sys.argv[1:]
boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
"""

# The plainest copier that decodes in full: the whole-object read, and each object decoded with
# the copier's own decoder and nothing else (no sha256, no line count, no fsync), as many
# objects at a time as there are cores.
READ_AND_DECODE = """
import os, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import boto3
from pinpoint_export_operator.copier.verify import BLOCK, Gunzip

bucket, prefix, dest = sys.argv[1:]
s3 = boto3.client("s3")

def copy(key):
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    gunzip = Gunzip()
    for offset in range(0, len(data), BLOCK):
        gunzip.feed(data[offset : offset + BLOCK])
    gunzip.close()
    (Path(dest) / Path(key).name).write_bytes(data)

pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
with ThreadPoolExecutor(os.cpu_count()) as pool:
    list(pool.map(copy, keys))
"""


@dataclass(frozen=True)
class Segment:
    """A raw deflate stream ending on a full flush (so segments can follow one another in any
    order), with what the gzip trailer needs of its decoded bytes."""

    deflate: bytes
    crc: int
    size: int
    lines: int


def make_segment(seed: int) -> Segment:
    """SEGMENT_ENDPOINTS endpoints of `seed`, compressed as the emulator compresses a piece."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    out, crc, size = [], 0, 0
    for start in range(0, SEGMENT_ENDPOINTS, 1000):
        text = ndjson(SyntheticBlock(APP, seed, start, 1000, "ep-"))
        crc, size = zlib.crc32(text, crc), size + len(text)
        out.append(packer.compress(text))
    out.append(packer.flush(zlib.Z_FULL_FLUSH))
    return Segment(b"".join(out), crc, size, SEGMENT_ENDPOINTS)


@dataclass
class Dataset:
    """The objects of one data set in one shape, under `<name>/` in the bucket."""

    name: str  # "realistic/small"
    label: str  # what the table calls it
    objects: int
    bytes: int = 0
    decoded_bytes: int = 0
    lines: int = 0
    decode_cpu_seconds: dict[str, float] = field(default_factory=dict)  # by decoder


@dataclass
class Measure:
    tool: str
    dataset: str
    seconds: float
    cpu_seconds: float  # user + system: what the tool costs, whatever else runs
    server_cpu_seconds: float  # what the S3 server spent meanwhile, on the same cores
    bytes: int
    peak_rss_mib: float
    load_1m: float  # the machine's load average before the copy

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MiB / self.seconds

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_seconds / (self.bytes / GiB)


class Realistic:
    """Single-member gzip objects spliced from the segments, in turn."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self._next = 0

    def write(self, path: Path, size: int) -> tuple[int, int]:
        """An object of about `size` bytes (whole segments, at least one); (decoded, lines)."""
        crc = total = lines = written = 0
        with path.open("wb") as out:
            out.write(GZIP_HEADER)
            while written == 0 or written + len(self.segments[self._next].deflate) // 2 < size:
                segment = self.segments[self._next]
                self._next = (self._next + 1) % len(self.segments)
                out.write(segment.deflate)
                crc = crc32_combine(crc, segment.crc, segment.size)
                total, lines = total + segment.size, lines + segment.lines
                written += len(segment.deflate)
            out.write(FINAL_BLOCK + struct.pack("<II", crc, total & 0xFFFFFFFF))
        return total, lines

    def decode_cpu_seconds_per_byte(self, inflate: str) -> float:
        """CPU seconds the copier's decode takes per compressed byte, on the segments (the
        best of 3), with decoder `inflate`."""
        member = GZIP_HEADER + b"".join(s.deflate for s in self.segments) + FINAL_BLOCK
        crc = functools.reduce(lambda c, s: crc32_combine(c, s.crc, s.size), self.segments, 0)
        size = sum(s.size for s in self.segments)
        member += struct.pack("<II", crc, size & 0xFFFFFFFF)
        times = []
        for _ in range(3):
            started = time.thread_time()
            lines = verify.LineCount()
            gunzip = verify.Gunzip(lines, inflate)
            for offset in range(0, len(member), verify.BLOCK):
                gunzip.feed(member[offset : offset + verify.BLOCK])
            gunzip.close()
            times.append(time.thread_time() - started)
            assert lines.lines == sum(s.lines for s in self.segments)
        return min(times) / len(member)


@functools.cache
def _random_pool() -> bytes:
    return os.urandom(64 * MiB)


def write_incompressible(path: Path, size: int) -> None:
    """One gzip member of `size` random bytes in stored blocks (fast to make)."""
    pool = _random_pool()
    packer = zlib.compressobj(0, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with path.open("wb") as out:
        for offset in range(0, size, len(pool)):
            out.write(packer.compress(pool[: min(len(pool), size - offset)]))
        out.write(packer.flush())


def upload_datasets(
    client: S3Client, work: Path, args: argparse.Namespace, only: set[str]
) -> list[Dataset]:
    """Make and upload each data set in each shape; the incompressible objects are the size
    of the realistic ones."""
    progress(f"making {SEGMENTS} segments of {SEGMENT_ENDPOINTS} endpoints...")
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        realistic = Realistic(list(pool.map(make_segment, range(1, SEGMENTS + 1))))
    per_byte = {name: realistic.decode_cpu_seconds_per_byte(name) for name in verify.DECODERS}
    config = TransferConfig(multipart_chunksize=64 * MiB)
    path = work / "upload.gz"
    realistic.write(path, 1)  # one segment: what each tool copies once, unmeasured
    client.upload_file(str(path), BUCKET, f"{WARM_UP}/piece-00000.gz", Config=config)
    datasets = []
    for shape, count, mib in (
        ("small", args.small_count, args.small_mib),
        ("big", 1, args.big_mib),
    ):
        sizes = []
        real = Dataset(f"realistic/{shape}", f"realistic {count} x {mib} MiB", count)
        junk = Dataset(f"incompressible/{shape}", f"incompressible {count} x {mib} MiB", count)
        for n in range(count):
            decoded, lines = realistic.write(path, mib * MiB)
            sizes.append(path.stat().st_size)
            real.decoded_bytes += decoded
            real.lines += lines
            if real.name in only:
                upload(client, path, f"{real.name}/piece-{n:05d}.gz", config, real)
        real.decode_cpu_seconds = {name: cost * sum(sizes) for name, cost in per_byte.items()}
        if junk.name in only:
            for n, size in enumerate(sizes):
                write_incompressible(path, size)
                upload(client, path, f"{junk.name}/piece-{n:05d}.gz", config, junk)
        path.unlink()
        datasets += [d for d in (real, junk) if d.name in only]
    return datasets


def upload(client: S3Client, path: Path, key: str, config: TransferConfig, into: Dataset) -> None:
    client.upload_file(str(path), BUCKET, key, Config=config)
    into.bytes += path.stat().st_size


def progress(line: str) -> None:
    sys.stderr.write(line + "\n")


class Launcher:
    """Runs the measured copies from a small helper process.

    A child's ru_maxrss includes the memory of the process it was forked from (Linux keeps the
    high-water mark across exec), and this process holds the test data. The helper is small, so
    what it adds is a small constant (`floor_mib`, measured with /bin/true).
    """

    SCRIPT = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(job["argv"], env=job["env"], stdout=subprocess.PIPE)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    done = {"seconds": seconds, "cpu": cpu, "maxrss_kib": usage.ru_maxrss, "code": code,
            "load": load, "stdout": out.decode(errors="replace")[-4096:]}
    print(json.dumps(done), flush=True)
"""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.floor_mib = self.measure(["true"], dict(os.environ))["maxrss_kib"] / 1024

    def measure(self, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        """Wall seconds, CPU seconds, peak RSS (KiB), load average and stdout of a child."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        os.sync()  # no tool pays for the previous one's writeback
        self._proc.stdin.write(json.dumps({"argv": argv, "env": env}) + "\n")
        self._proc.stdin.flush()
        done: dict[str, Any] = json.loads(self._proc.stdout.readline())
        if done["code"] != 0:
            raise RuntimeError(f"{argv[:4]} failed with {done['code']}")
        return done

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait()


def copied_bytes(dest: Path, suffix: str = ".gz") -> int:
    return sum(p.stat().st_size for p in dest.rglob(f"*{suffix}") if p.is_file())


def tools(dataset: str, dest: Path) -> dict[str, list[str]]:
    source = f"s3://{BUCKET}/{dataset}/"
    return {
        "copier": [sys.executable, "-m", "pinpoint_export_operator", "copy", "--source", source,
                   "--dest", str(dest / "run-1"), "--log-level", "WARNING"],
        "awscli": [str(VENV_BIN / "aws"), "s3", "cp", "--recursive", "--only-show-errors",
                   source, str(dest)],
        "naive": [sys.executable, "-c", NAIVE, BUCKET, f"{dataset}/", str(dest)],
        "read+decode": [sys.executable, "-c", READ_AND_DECODE, BUCKET, f"{dataset}/", str(dest)],
    }  # fmt: skip


def rounds(order: list[str], repeat: int) -> Iterator[list[str]]:
    """Each round starts with a different tool: no tool always follows the same one."""
    for round_ in range(repeat):
        shift = round_ % len(order)
        yield order[shift:] + order[:shift]


def child_env(credentials: S3Credentials, work: Path) -> dict[str, str]:
    """The S3 server's variables, and a bytecode cache of the children's own (this session's
    PYTHONDONTWRITEBYTECODE would have every child compile botocore again, ~0.5 s each)."""
    env = {**os.environ, **credentials.env(), "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(
    launcher: Launcher, server: S3Server, work: Path, datasets: list[Dataset], repeat: int
) -> tuple[list[Measure], list[float], float]:
    """The best run of each tool on each data set, the load average before every run, and the
    start-up (the best of `repeat`)."""
    credentials = server.credentials
    env = child_env(credentials, work)
    for argv in tools(WARM_UP, work / "dest").values():  # fills the bytecode cache
        (work / "dest").mkdir()
        launcher.measure(argv, env)
        shutil.rmtree(work / "dest")
    startup = [sys.executable, "-c", STARTUP, BUCKET, f"{WARM_UP}/"]
    startup_seconds = min(launcher.measure(startup, env)["seconds"] for _ in range(repeat))
    progress(f"start-up (import boto3, client, one listing): {startup_seconds:.2f}s")
    results: dict[tuple[str, str], list[Measure]] = {}
    loads = []
    for dataset in datasets:
        argvs = tools(dataset.name, work / "dest")
        for round_, order in enumerate(rounds(list(argvs), repeat)):
            for tool in order:
                dest = work / "dest"
                dest.mkdir()
                served = process.cpu_seconds(server.pid)
                done = launcher.measure(argvs[tool], env)
                served = process.cpu_seconds(server.pid) - served
                got = copied_bytes(dest)
                if got != dataset.bytes:
                    raise RuntimeError(f"{tool} copied {got} bytes of {dataset.bytes}")
                if tool == "copier":
                    lines = json.loads(done["stdout"].strip().splitlines()[-1])["lines"]
                    if dataset.lines and lines != dataset.lines:
                        raise RuntimeError(f"the copier counted {lines} lines of {dataset.lines}")
                shutil.rmtree(dest)
                m = Measure(
                    tool,
                    dataset.name,
                    done["seconds"],
                    done["cpu"],
                    served,
                    got,
                    done["maxrss_kib"] / 1024,
                    done["load"],
                )
                progress(
                    f"  {dataset.name} round {round_ + 1}: {tool:11} {m.seconds:6.2f}s "
                    f"{m.mib_per_s:7.1f} MiB/s {m.cpu_seconds:6.2f}s CPU "
                    f"(server {m.server_cpu_seconds:.2f}s) "
                    f"{m.peak_rss_mib:7.1f} MiB RSS  load {m.load_1m:.2f}"
                )
                results.setdefault((dataset.name, tool), []).append(m)
                loads.append(m.load_1m)
    return [min(ms, key=lambda m: m.seconds) for ms in results.values()], loads, startup_seconds


def report(
    best: list[Measure],
    datasets: list[Dataset],
    args: argparse.Namespace,
    floor_mib: float,
    loads: list[float],
    startup_seconds: float,
) -> dict[str, object]:
    by = {(m.dataset, m.tool): m for m in best}
    summary = {}
    for d in datasets:
        copier, awscli, naive = (by[d.name, tool] for tool in ("copier", "awscli", "naive"))
        decode = d.decode_cpu_seconds.get(verify.INFLATE, 0.0)
        # No copier that decodes every object can take less: its start-up, then the decode and
        # the S3 server's work (the least it did for any tool), spread perfectly over every core.
        served = min(m.server_cpu_seconds for m in best if m.dataset == d.name)
        floor = startup_seconds + (decode + served) / (os.cpu_count() or 1)
        summary[d.name] = {
            "copier_vs_awscli": round(awscli.seconds / copier.seconds, 2),
            "copier_vs_naive": round(naive.seconds / copier.seconds, 2),
            "read_and_decode_vs_awscli": round(
                awscli.seconds / by[d.name, "read+decode"].seconds, 2
            ),
            "decoding_copier_floor_seconds": round(floor, 3),
            "decoding_copier_floor_vs_awscli": round(awscli.seconds / floor, 2),
            "copier_cpu_seconds_per_gib": round(copier.cpu_per_gib, 2),
            "awscli_plus_decode_cpu_seconds_per_gib": round(
                awscli.cpu_per_gib + decode / (d.bytes / GiB), 2
            ),
        }
    realistic = [name for name in summary if name.startswith("realistic/")]
    targets: dict[str, bool] = {
        "copier_at_least_as_fast_as_awscli_on_realistic": all(
            summary[name]["copier_vs_awscli"] >= 1 for name in realistic
        ),
        "copier_cpu_at_most_awscli_plus_decode_on_realistic": all(
            summary[name]["copier_cpu_seconds_per_gib"]
            <= summary[name]["awscli_plus_decode_cpu_seconds_per_gib"]
            for name in realistic
        ),
    }
    if ("realistic/big", "copier") in by:
        rss = by["realistic/big", "copier"].peak_rss_mib
        targets["copier_peak_rss_under_100_mib_on_realistic_big"] = rss < 100
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # before each measured copy: the machine may be shared
            "load_average_1m": {"min": round(min(loads), 2), "max": round(max(loads), 2)},
        },
        "copier_inflate": verify.INFLATE,
        "copier_line_count": verify.LINE_COUNT,
        "startup_seconds": round(startup_seconds, 3),
        "datasets": {
            d.name: {
                "objects": d.objects,
                "label": d.label,
                "bytes": d.bytes,
                "decoded_bytes": d.decoded_bytes,
                "ratio": round(d.decoded_bytes / d.bytes, 2) if d.decoded_bytes else 1.0,
                "lines": d.lines,
                "decode_cpu_seconds": {k: round(v, 2) for k, v in d.decode_cpu_seconds.items()},
                "decode_mib_per_s_per_core": {
                    k: round(d.bytes / MiB / v) for k, v in d.decode_cpu_seconds.items()
                },
            }
            for d in datasets
        },
        "note": "the copier also verifies every object (sha256, a full gzip decode with CRC and "
        "length, line count) and fsyncs each file before renaming it; awscli and the "
        "whole-object read do neither, read+decode only the decode. Seconds: the best of "
        "the rounds; CPU and RSS: that run's",
        "repeat": args.repeat,
        "rss_floor_mib": round(floor_mib, 1),  # what the launcher adds to every peak RSS
        "runs": [
            {
                **asdict(m),
                "mib_per_s": round(m.mib_per_s, 1),
                "seconds": round(m.seconds, 3),
                "cpu_seconds": round(m.cpu_seconds, 2),
                "server_cpu_seconds": round(m.server_cpu_seconds, 2),
                "cpu_seconds_per_gib": round(m.cpu_per_gib, 2),
                "peak_rss_mib": round(m.peak_rss_mib, 1),
                "load_1m": round(m.load_1m, 2),
            }
            for m in best
        ],
        "ratios": summary,
        "targets": targets,
    }


def markdown(best: list[Measure], datasets: list[Dataset]) -> str:
    lines = [
        "| objects | tool | seconds | MiB/s | vs awscli | CPU s | CPU s/GiB | decode CPU s "
        "| server CPU s | peak RSS (MiB) | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    awscli = {m.dataset: m for m in best if m.tool == "awscli"}
    by_name = {d.name: d for d in datasets}
    for m in best:
        d = by_name[m.dataset]
        costs = d.decode_cpu_seconds
        decode = " / ".join(f"{costs[k]:.1f} {k}" for k in costs) if m.tool == "copier" else ""
        lines.append(
            f"| {d.label} | {m.tool} | {m.seconds:.2f} | {m.mib_per_s:.0f} | "
            f"{awscli[m.dataset].seconds / m.seconds:.2f}x | {m.cpu_seconds:.1f} | "
            f"{m.cpu_per_gib:.1f} | {decode} | {m.server_cpu_seconds:.1f} | "
            f"{m.peak_rss_mib:.0f} | {m.load_1m:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = [f"{data}/{shape}" for data in ("realistic", "incompressible")
             for shape in ("small", "big")]  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=8)
    parser.add_argument("--small-mib", type=int, default=20)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--only", nargs="+", choices=names, default=names, metavar="SET/SHAPE")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    launcher = Launcher()  # before the data is made: see Launcher
    try:
        with tempfile.TemporaryDirectory(prefix="copier-bench-") as tmp:
            work = Path(tmp)
            server = S3Server(work / "s3")
            with server as credentials:
                client = credentials.client()
                client.create_bucket(Bucket=BUCKET)
                datasets = upload_datasets(client, work, args, set(args.only))
                progress(f"uploaded; copier: {verify.INFLATE} inflate, {verify.LINE_COUNT} count")
                best, loads, startup = run(launcher, server, work, datasets, args.repeat)
    finally:
        launcher.close()
    result = report(best, datasets, args, launcher.floor_mib, loads, startup)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(markdown(best, datasets) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
