"""Benchmark: the copier, `aws s3 cp --recursive` and a whole-object read, on the same objects.

    .venv/bin/python bench/copier_bench.py [--repeat N] [--small-count N] [--small-mib M]
                                           [--big-mib M]

Starts its own S3 server (versitygw) in a temporary directory, uploads two sets of gzip objects
(8 x 64 MiB and 1 x 1 GiB by default) and copies each set with each tool, `--repeat` rounds,
each round in a different order. Each copy is a child process: its wall time, CPU time and peak
RSS (ru_maxrss from wait4) are measured; the page cache is synced before each copy so that no
tool pays for another's writeback. The best time of the rounds is reported (the least disturbed
by other load), with the CPU time and peak RSS of that run. Writes bench/results/copier.json
and prints a Markdown table.

The content is incompressible (random bytes in stored gzip blocks): decoding it is cheap, so the
numbers measure transfer, verification and writing rather than inflate speed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig

from pinpoint_export_sandbox.s3server import S3Credentials, S3Server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "copier.json"
VENV_BIN = Path(sys.executable).parent
MiB = 1 << 20
BUCKET = "bench"

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


@dataclass
class Measure:
    tool: str
    dataset: str
    seconds: float
    cpu_seconds: float  # user + system: what the tool costs, whatever else runs
    bytes: int
    peak_rss_mib: float

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MiB / self.seconds


@functools.cache
def gzip_member(variant: int, size: int) -> bytes:
    """A gzip member of `size` random bytes in stored blocks (fast to make); a few variants."""
    pool = _random_pool()
    shift = variant * MiB
    raw = (pool[shift:] + pool[:shift])[:size]
    packer = zlib.compressobj(0, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(raw) + packer.flush()


@functools.cache
def _random_pool() -> bytes:
    return os.urandom(64 * MiB)


def upload_datasets(
    client: S3Client, work: Path, small_count: int, small_mib: int, big_mib: int
) -> dict[str, int]:
    """Upload `small` (small_count x small_mib) and `big` (1 x big_mib); returns bytes per set.

    An object is a multi-member gzip stream of members of up to 64 MiB, drawn from 4 variants,
    so that making 1.5 GB takes seconds, not minutes.
    """
    config = TransferConfig(multipart_chunksize=64 * MiB)
    sizes = {}
    for dataset, count, mib in (("small", small_count, small_mib), ("big", 1, big_mib)):
        sizes[dataset] = 0
        for n in range(count):
            path = work / "upload.gz"
            with path.open("wb") as out:
                for offset in range(0, mib * MiB, 64 * MiB):
                    out.write(gzip_member((n + offset) % 4, min(64 * MiB, mib * MiB - offset)))
            client.upload_file(str(path), BUCKET, f"{dataset}/piece-{n:05d}.gz", Config=config)
            sizes[dataset] += path.stat().st_size
            path.unlink()
    return sizes


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
    started = time.perf_counter()
    child = subprocess.Popen(job["argv"], env=job["env"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    done = {"seconds": seconds, "cpu": cpu, "maxrss_kib": usage.ru_maxrss, "code": code}
    print(json.dumps(done), flush=True)
"""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.floor_mib = self.measure(["true"], dict(os.environ))[2]

    def measure(self, argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
        """Wall seconds, CPU seconds and peak RSS (MiB) of a child process."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        os.sync()  # no tool pays for the previous one's writeback
        self._proc.stdin.write(json.dumps({"argv": argv, "env": env}) + "\n")
        self._proc.stdin.flush()
        done = json.loads(self._proc.stdout.readline())
        if done["code"] != 0:
            raise RuntimeError(f"{argv[:4]} failed with {done['code']}")
        return float(done["seconds"]), float(done["cpu"]), done["maxrss_kib"] / 1024

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
    }  # fmt: skip


def run(
    launcher: Launcher, credentials: S3Credentials, work: Path, sizes: dict[str, int], repeat: int
) -> list[Measure]:
    env = {**os.environ, **credentials.env()}
    results: dict[tuple[str, str], list[Measure]] = {}
    for dataset in sizes:
        for round_ in range(repeat):
            order = list(tools(dataset, work / "dest").items())
            # Each round starts with a different tool: no tool always follows the same one.
            for tool, argv in order[round_ % 3 :] + order[: round_ % 3]:
                dest = work / "dest"
                dest.mkdir()
                seconds, cpu, rss = launcher.measure(argv, env)
                got = copied_bytes(dest)
                if got != sizes[dataset]:
                    raise RuntimeError(f"{tool} copied {got} bytes of {sizes[dataset]}")
                shutil.rmtree(dest)
                m = Measure(tool, dataset, seconds, cpu, got, rss)
                progress(
                    f"  {dataset} round {round_ + 1}: {tool:7} {seconds:6.2f}s "
                    f"{m.mib_per_s:7.1f} MiB/s {cpu:6.2f}s CPU {rss:7.1f} MiB RSS"
                )
                results.setdefault((dataset, tool), []).append(m)
    return [min(ms, key=lambda m: m.seconds) for ms in results.values()]


def report(
    best: list[Measure], sizes: dict[str, int], args: argparse.Namespace, floor_mib: float
) -> dict[str, object]:
    by = {(m.dataset, m.tool): m for m in best}
    summary = {
        dataset: {
            "copier_vs_awscli": round(
                by[dataset, "copier"].mib_per_s / by[dataset, "awscli"].mib_per_s, 2
            ),
            "copier_vs_naive": round(
                by[dataset, "copier"].mib_per_s / by[dataset, "naive"].mib_per_s, 2
            ),
        }
        for dataset in sizes
    }
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "datasets": {
            "small": f"{args.small_count} x {args.small_mib} MiB gzip objects",
            "big": f"1 x {args.big_mib} MiB gzip object",
            "bytes": sizes,
        },
        "note": "the copier also verifies every object (sha256, a full gzip decode) and fsyncs "
        "each file before renaming it; awscli and the whole-object read do neither",
        "repeat": args.repeat,
        "rss_floor_mib": round(floor_mib, 1),  # what the launcher adds to every peak RSS
        "runs": [
            {
                **asdict(m),
                "mib_per_s": round(m.mib_per_s, 1),
                "seconds": round(m.seconds, 3),
                "cpu_seconds": round(m.cpu_seconds, 2),
                "peak_rss_mib": round(m.peak_rss_mib, 1),
            }
            for m in best
        ],
        "ratios": summary,
        "targets": {
            "copier_at_least_as_fast_as_awscli": all(
                s["copier_vs_awscli"] >= 1 for s in summary.values()
            ),
            "copier_peak_rss_under_100_mib_on_big": by["big", "copier"].peak_rss_mib < 100,
        },
    }


def markdown(best: list[Measure], result: dict[str, object]) -> str:
    lines = [
        "| objects | tool | seconds | MiB/s | vs awscli | CPU seconds | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    awscli = {m.dataset: m for m in best if m.tool == "awscli"}
    labels = result["datasets"]
    assert isinstance(labels, dict)
    for m in best:
        lines.append(
            f"| {labels[m.dataset]} | {m.tool} | {m.seconds:.2f} | {m.mib_per_s:.0f} | "
            f"{m.mib_per_s / awscli[m.dataset].mib_per_s:.2f}x | {m.cpu_seconds:.1f} | "
            f"{m.peak_rss_mib:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=8)
    parser.add_argument("--small-mib", type=int, default=64)
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="copier-bench-") as tmp:
        work = Path(tmp)
        with S3Server(work / "s3") as credentials:
            client = credentials.client()
            client.create_bucket(Bucket=BUCKET)
            progress("uploading...")
            sizes = upload_datasets(client, work, args.small_count, args.small_mib, args.big_mib)
            launcher = Launcher()
            try:
                best = run(launcher, credentials, work, sizes, args.repeat)
            finally:
                launcher.close()
    result = report(best, sizes, args, launcher.floor_mib)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(markdown(best, result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
