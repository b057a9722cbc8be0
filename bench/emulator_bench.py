"""Benchmark: seed and export 100,000 endpoints through the Pinpoint emulator.

Runs the emulator as its own command (as the sandbox does) against a fresh versitygw S3 server,
seeds endpoints through the admin path, exports them with an unmodified boto3 client and polls
to COMPLETED. Writes bench/results/emulator.json. Not a test: `python bench/emulator_bench.py`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator import EmulatorAdmin
from pinpoint_export_sandbox.s3server import S3Server

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("emulator_bench")


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(count: int, piece_size: int, workdir: Path) -> dict[str, Any]:
    with S3Server(workdir / "s3") as s3:
        s3.client().create_bucket(Bucket="bench")
        port = process.free_port()
        emulator_log = workdir / "emulator.log"
        argv = [sys.executable, "-m", "pinpoint_export_sandbox", "emulator"]
        options = [f"--port={port}", "--step-seconds=0", f"--piece-size={piece_size}"]
        child = process.start([*argv, *options], emulator_log, env={**os.environ, **s3.env()})
        try:
            url = f"http://127.0.0.1:{port}"
            admin = EmulatorAdmin(url)
            process.wait_for(admin.health, 30, "emulator", alive=child, log=emulator_log)
            app_id = admin.create_app("bench")

            started = time.perf_counter()
            admin.seed(app_id, count)
            seed_seconds = time.perf_counter() - started

            pinpoint = boto3.client(
                "pinpoint",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                config=Config(retries={"total_max_attempts": 1}),
            )
            started = time.perf_counter()
            job_id = pinpoint.create_export_job(
                ApplicationId=app_id,
                ExportJobRequest={
                    "RoleArn": "arn:aws:iam::123456789012:role/bench",
                    "S3UrlPrefix": "s3://bench/exports/",
                },
            )["ExportJobResponse"]["Id"]

            def finished() -> dict[str, Any] | None:
                job = pinpoint.get_export_job(ApplicationId=app_id, JobId=job_id)
                response = dict(job["ExportJobResponse"])
                return response if response["JobStatus"] in ("COMPLETED", "FAILED") else None

            job = process.wait_for(finished, 600, "export job", interval=0.05)
            export_seconds = time.perf_counter() - started
            rss = peak_rss_mb(child.pid)
        finally:
            process.stop(child)
        objects = s3.client().list_objects_v2(Bucket="bench", Prefix=f"exports/{job_id}/")
        pieces = [o for o in objects.get("Contents", []) if o["Key"].endswith(".gz")]
    if job["JobStatus"] != "COMPLETED" or job["TotalProcessed"] != count:
        raise RuntimeError(f"export did not complete: {job}")
    return {
        "endpoints": count,
        "piece_size": piece_size,
        "seed_seconds": round(seed_seconds, 3),
        "export_seconds": round(export_seconds, 3),
        "seed_and_export_seconds": round(seed_seconds + export_seconds, 3),
        "endpoints_per_second": round(count / export_seconds),
        "pieces": len(pieces),
        "total_pieces_reported": job["TotalPieces"],
        "gzip_bytes": sum(o["Size"] for o in pieces),
        "emulator_peak_rss_mb": round(rss, 1),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # the machine is shared: context
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--piece-size", type=int, default=10_000)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "emulator.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as workdir:
        results = run(args.count, args.piece_size, Path(workdir))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    log.info("results: %s -> %s", results, args.output)


if __name__ == "__main__":
    main()
