"""The operator as a real process against the sandbox, which tests can kill and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.stack import SandboxEnv

ROOT = Path(__file__).resolve().parents[2]


def chart_image() -> str:
    """The chart's default image (`tools/image.sh name`), which `make image` builds."""
    named = subprocess.run(
        [str(ROOT / "tools" / "image.sh"), "name"], capture_output=True, text=True, check=True
    )
    return named.stdout.strip()


# The node agent runs the copy pods as containers of the image `make image` built; were it not
# built, as processes of the installed package (any image named *pinpoint-export-operator).
COPIER_IMAGE = chart_image()


class OperatorProcess:
    def __init__(self, sandbox: SandboxEnv, log: Path, *extra_args: str) -> None:
        self.sandbox = sandbox
        self.log = log
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.liveness_port = process.free_port()
        self.metrics_port = process.free_port()

    def start(self) -> None:
        env = {
            **os.environ,
            **self.sandbox.variables(),
            "PPE_S3_ENDPOINT_URL": self.sandbox.s3.endpoint_url,
            "PPE_COPIER_IMAGE": COPIER_IMAGE,
            "PPE_LIVENESS_PORT": str(self.liveness_port),
            "PPE_METRICS_PORT": str(self.metrics_port),
        }
        # The operator's own identity: none; each test export names a credentials Secret.
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(key, None)
        argv = [sys.executable, "-m", "pinpoint_export_operator", "run", *self.extra_args]
        self.proc = process.start(argv, self.log, env=env)
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        process.wait_for(
            lambda: urllib.request.urlopen(url, timeout=1).status == 200,
            60,
            "operator liveness",
            alive=self.proc,
            log=self.log,
        )

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def kill(self) -> None:
        """SIGKILL: no clean-up, as when a node dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            process.stop(self.proc)
