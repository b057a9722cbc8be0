"""The whole sandbox as one object: control plane, S3 server, Pinpoint emulator, node agent.

`SandboxEnv` is what the outside world learns of a running sandbox: it is written to
`<state-dir>/env` as shell `export` lines, so `source .sandbox/env` points kubectl, boto3 and
awscli at it, and tests read it back to reuse a sandbox started by `make sandbox`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pinpoint_export_sandbox import process, storage
from pinpoint_export_sandbox.controlplane import ControlPlane
from pinpoint_export_sandbox.s3server import S3Credentials, S3Server

NODE_NAME = "sandbox-node"
SANDBOX_COMMAND = (sys.executable, "-m", "pinpoint_export_sandbox")


@dataclass(frozen=True)
class SandboxEnv:
    state_dir: Path
    kubeconfig: Path
    s3: S3Credentials
    pinpoint_url: str
    volumes_dir: Path
    node_name: str = NODE_NAME

    def variables(self) -> dict[str, str]:
        return {
            "KUBECONFIG": str(self.kubeconfig),
            **self.s3.env(),
            "AWS_ENDPOINT_URL_PINPOINT": self.pinpoint_url,
            # The emulator also serves STS AssumeRole (handing out the S3 server's keys).
            "AWS_ENDPOINT_URL_STS": self.pinpoint_url,
            "PPE_SANDBOX_DIR": str(self.state_dir),
            "PPE_SANDBOX_VOLUMES": str(self.volumes_dir),
            "PPE_SANDBOX_NODE": self.node_name,
        }

    def write(self) -> Path:
        path = self.state_dir / "env"
        lines = [f"export {k}={shlex.quote(v)}" for k, v in self.variables().items()]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.rename(path)  # readers never see half a file
        return path

    @classmethod
    def read(cls, path: Path) -> SandboxEnv:
        values: dict[str, str] = {}
        for line in path.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = shlex.split(value)[0] if value else ""
        return cls(
            state_dir=Path(values["PPE_SANDBOX_DIR"]),
            kubeconfig=Path(values["KUBECONFIG"]),
            s3=S3Credentials(
                endpoint_url=values["AWS_ENDPOINT_URL_S3"],
                access_key=values["AWS_ACCESS_KEY_ID"],
                secret_key=values["AWS_SECRET_ACCESS_KEY"],
                region=values["AWS_REGION"],
            ),
            pinpoint_url=values["AWS_ENDPOINT_URL_PINPOINT"],
            volumes_dir=Path(values["PPE_SANDBOX_VOLUMES"]),
            node_name=values["PPE_SANDBOX_NODE"],
        )

    def is_alive(self) -> bool:
        """Whether the sandbox this file describes still answers."""
        try:
            urllib.request.urlopen(self.pinpoint_url + "/_emulator/health", timeout=2)
            storage.server_version(self.kubeconfig)
        except Exception:
            return False
        return True


@dataclass
class Sandbox:
    """Starts every component under `state_dir`; a context manager that stops them all."""

    state_dir: Path
    control_plane: ControlPlane = field(init=False)
    s3_server: S3Server = field(init=False)
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        self.control_plane = ControlPlane(self.state_dir / "control-plane")
        self.s3_server = S3Server(self.state_dir / "s3")

    def start(self) -> SandboxEnv:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> SandboxEnv:
        s3 = self.s3_server.start()
        # The emulator imports while the control plane starts; both are waited on after.
        pinpoint_url = self._start_emulator(s3)
        self.control_plane.start()
        self._wait_emulator(pinpoint_url)
        env = SandboxEnv(
            state_dir=self.state_dir,
            kubeconfig=self.control_plane.kubeconfig,
            s3=s3,
            pinpoint_url=pinpoint_url,
            volumes_dir=self.state_dir / "volumes",
        )
        storage.install_storage_class(env.kubeconfig)
        env.volumes_dir.mkdir(parents=True, exist_ok=True)
        self._python(
            "provisioner", f"--kubeconfig={env.kubeconfig}", f"--volumes-dir={env.volumes_dir}"
        )
        self._start_node_agent(env)
        storage.wait_for_node(env.kubeconfig, env.node_name)
        env.write()
        return env

    def _python(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = self.state_dir / "logs" / f"{name}.log"
        argv = [*SANDBOX_COMMAND, name, *args]
        self._children[name] = process.start(argv, log, env=env)

    def _start_emulator(self, s3: S3Credentials) -> str:
        port = process.free_port()
        self._python("emulator", f"--port={port}", env={**os.environ, **s3.env()})
        return f"http://127.0.0.1:{port}"

    def _wait_emulator(self, url: str) -> None:
        process.wait_for(
            lambda: urllib.request.urlopen(url + "/_emulator/health", timeout=1).status == 200,
            30,
            "Pinpoint emulator",
            alive=self._children["emulator"],
            log=self.state_dir / "logs" / "emulator.log",
        )

    def _start_node_agent(self, env: SandboxEnv) -> None:
        self._python(
            "node-agent",
            f"--kubeconfig={env.kubeconfig}",
            f"--node-name={env.node_name}",
            f"--work-dir={self.state_dir / 'node'}",
        )

    def check_alive(self) -> None:
        self.control_plane.check_alive()
        for name, child in self._children.items():
            if child.poll() is not None:
                raise RuntimeError(f"sandbox {name} exited with {child.returncode}")

    def stop(self) -> None:
        # The node agent first, so it stops its pods' processes before the API goes away.
        for child in reversed(self._children.values()):
            process.stop(child)
        self._children.clear()
        self.control_plane.stop()
        self.s3_server.stop()
        (self.state_dir / "env").unlink(missing_ok=True)

    def __enter__(self) -> SandboxEnv:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
