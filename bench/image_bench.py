"""Benchmark: the operator's image. Size, `make image` cold and warm, and start times.

- cold build: `make image` with XDG_CACHE_HOME pointed at an empty directory, so the container
  storage, its layer cache and the base image's root file system start from nothing (Debian's
  packages are downloaded again by mmdebstrap, the Python ones by pip in the build). What stays
  warm: the Debian packages of the toolchain itself (podman, mmdebstrap, ... already installed).
- warm builds: `make image` again with nothing changed, and after a change to the operator's
  code (a copy of the build's sources with one comment added, built under another name).
- start: the image's command (`copy --help`) in a container as a restricted pod runs it, against
  the same command as a host process; and the operator in a container until /healthz answers
  200, against a control plane of its own (etcd, kube-apiserver, the CRDs), likewise compared
  with the host process.

Needs the sandbox's binaries (tools/build.sh). Writes bench/results/image.json. Not a test:
`python bench/image_bench.py`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pinpoint_export_sandbox import binaries, process
from pinpoint_export_sandbox.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
COMMAND = Path(sys.executable).parent / "pinpoint-export-operator"  # the host's, in the venv
HARDENED = [
    "--user=65532:65532",
    "--read-only",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
]
log = logging.getLogger("image_bench")


def container_env(cache: Path | None = None) -> dict[str, str]:
    """The environment podman needs (tools/containers.sh), for the project's cache or `cache`."""
    env = dict(os.environ)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    out = subprocess.run(
        [ROOT / "tools" / "containers.sh", "env"], env=env, check=True, capture_output=True
    ).stdout.decode()
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 2)


def cold_build() -> float:
    with tempfile.TemporaryDirectory(prefix="ppe-cold-") as cache:
        env = container_env(Path(cache))
        try:
            return timed(["make", "image"], env)
        finally:
            # Layers are overlay mounts and root-owned files: podman removes its own storage.
            runroot = subprocess.run(
                ["podman", "info", "--format", "{{.Store.RunRoot}}"],
                env=env,
                check=True,
                capture_output=True,
            ).stdout.decode()
            subprocess.run(["podman", "system", "reset", "--force"], env=env, check=True)
            shutil.rmtree(Path(runroot.strip()).parent, ignore_errors=True)


def code_change_build(env: dict[str, str]) -> float:
    """A rebuild after an edit of the operator's code, in a copy of the sources (the tree may
    be shared), under a name of its own; then the real image is tagged back (`make image`)."""
    with tempfile.TemporaryDirectory(prefix="ppe-src-") as src:
        # Files with the working tree's modes (git's default umask for archives is 002): a
        # COPY of a file whose mode differs misses the layer cache, dependencies' included.
        archive = subprocess.run(
            ["git", "-c", "tar.umask=user", "archive", "HEAD"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
        init = Path(src, "operator", "pinpoint_export_operator", "__init__.py")
        # A change never built before (the layer cache is content-addressed).
        init.write_text(init.read_text() + f"# a change at {time.time()}\n")
        image = "localhost/pinpoint-export-operator-bench:code-change"
        seconds = timed([f"{src}/tools/image.sh", image], env, cwd=Path(src))
    subprocess.run(["podman", "rmi", image], env=env, check=True, stdout=subprocess.DEVNULL)
    timed(["make", "image"], env)
    return seconds


def median_seconds(run: Callable[[], float], times: int) -> dict[str, float]:
    samples = [run() for _ in range(times)]
    return {"median": round(statistics.median(samples), 3), "min": round(min(samples), 3)}


def healthz_after(start: Callable[[], Callable[[], None]], port: int) -> float:
    """Seconds from `start()` to /healthz 200; `start` returns how to stop what it started."""
    started = time.perf_counter()
    stop = start()
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        process.wait_for(healthy, 60, "/healthz", interval=0.02)
        return time.perf_counter() - started
    finally:
        stop()


def operator_starts(env: dict[str, str], image: str, workdir: Path, times: int) -> dict[str, Any]:
    plane = ControlPlane(workdir / "control-plane")
    plane.start()
    try:
        crds = ROOT / "crds"
        subprocess.run(
            [
                binaries.find("kubectl"),
                f"--kubeconfig={plane.kubeconfig}",
                "apply",
                "--server-side",
                "-f",
                str(crds),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Readable by uid 65532 in the container (the original is the host's root's, 0600).
        kubeconfig = workdir / "kubeconfig"
        shutil.copy(plane.operator_kubeconfig, kubeconfig)
        kubeconfig.chmod(0o644)
        args = ["run", "--namespaces=ppe-image-bench", "--metrics-port=0"]

        def in_container(port: int) -> Callable[[], None]:
            name = f"ppe-image-bench-{port}"
            subprocess.run(
                ["podman", "run", "--detach", "--rm", f"--name={name}", *HARDENED,
                 f"--volume={kubeconfig}:/etc/ppe/kubeconfig:ro",
                 "--env=KUBECONFIG=/etc/ppe/kubeconfig",
                 image, *args, f"--liveness-port={port}"],
                env=env, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip

            def stop() -> None:
                subprocess.run(["podman", "rm", "--force", "--time=2", name], env=env, check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip

            return stop

        def on_host(port: int) -> Callable[[], None]:
            child = process.start(
                [str(COMMAND), *args,
                 f"--liveness-port={port}"],
                workdir / f"operator-{port}.log", env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            )  # fmt: skip
            return lambda: process.stop(child)

        def sample(start: Callable[[int], Callable[[], None]]) -> float:
            port = process.free_port()
            return healthz_after(lambda: start(port), port)

        return {
            "container": median_seconds(lambda: sample(in_container), times),
            "host_process": median_seconds(lambda: sample(on_host), times),
        }
    finally:
        plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=5, help="samples of each start time")
    parser.add_argument("--skip-cold", action="store_true", help="no cold build (minutes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    image = (
        subprocess.run([ROOT / "tools" / "image.sh", "name"], check=True, capture_output=True)
        .stdout.decode()
        .strip()
    )
    env = container_env()
    results: dict[str, Any] = {"image": image}

    if not args.skip_cold:
        log.info("cold make image ...")
        results["cold_build_seconds"] = cold_build()
    log.info("warm builds ...")
    timed(["make", "image"], env)  # whatever the cold build left, the real cache is now warm
    results["warm_build_seconds"] = timed(["make", "image"], env)
    results["code_change_build_seconds"] = code_change_build(env)
    inspect = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", image],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    results["size_mb"] = round(int(inspect.stdout) / 1e6, 1)

    log.info("start times ...")
    help_in_container = ["podman", "run", "--rm", *HARDENED, image, "copy", "--help"]
    results["copy_help_seconds"] = {
        "container": median_seconds(lambda: timed(help_in_container, env), args.times),
        "host_process": median_seconds(
            lambda: timed([str(COMMAND), "copy", "--help"], env), args.times
        ),
    }
    with tempfile.TemporaryDirectory(prefix="ppe-image-bench-") as workdir:
        results["operator_healthz_seconds"] = operator_starts(env, image, Path(workdir), args.times)
    results["cpus"] = os.cpu_count()
    results["load_average_1m"] = round(os.getloadavg()[0], 2)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
