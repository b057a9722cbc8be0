"""`pinpoint-export-sandbox up | down | serve`: the sandbox as a service for `make sandbox`.

`serve` runs the sandbox in the foreground until SIGTERM or SIGINT. `up` starts `serve` as a
detached process and returns once `<state-dir>/env` is written; `down` stops it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path

from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.stack import SANDBOX_COMMAND, Sandbox, SandboxEnv

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("PPE_SANDBOX_DIR", ".sandbox")),
        help="where the sandbox keeps its state, logs and env file (default: .sandbox)",
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for start-up")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    state_dir: Path = args.state_dir.resolve()
    command = {"up": up, "down": down, "serve": serve}[args.command]
    return command(state_dir, args.timeout)


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "sandbox.pid"


def _running_pid(state_dir: Path) -> int | None:
    try:
        pid = int(_pid_file(state_dir).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def up(state_dir: Path, timeout: float) -> int:
    env_file = state_dir / "env"
    if _running_pid(state_dir) and env_file.exists() and SandboxEnv.read(env_file).is_alive():
        log.info("sandbox already running: source %s", env_file)
        return 0
    down(state_dir, timeout)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "sandbox.log"
    with log_path.open("wb") as out:
        child = subprocess.Popen(
            [*SANDBOX_COMMAND, "serve", f"--state-dir={state_dir}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the terminal and make
        )
    _pid_file(state_dir).write_text(str(child.pid))
    process.wait_for(env_file.exists, timeout, "sandbox start", alive=child, log=log_path)
    log.info("sandbox ready: source %s", env_file)
    return 0


def down(state_dir: Path, timeout: float) -> int:
    pid = _running_pid(state_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        try:
            process.wait_for(lambda: _running_pid(state_dir) is None, 60, "sandbox stop")
        except TimeoutError:
            os.killpg(pid, signal.SIGKILL)
        log.info("sandbox stopped")
    _pid_file(state_dir).unlink(missing_ok=True)
    return 0


def serve(state_dir: Path, timeout: float) -> int:
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    sandbox = Sandbox(state_dir)
    with sandbox as env:
        log.info("sandbox ready: source %s", env.state_dir / "env")
        while not stopping.wait(2):
            try:
                sandbox.check_alive()
            except RuntimeError as error:
                # A component that died stops the whole sandbox: never a half-running one.
                log.error("sandbox component died, stopping: %s", error)
                return 1
    return 0
