"""The sandbox's node agent: a kubelet stand-in.

It registers a Node, binds pending pods to it and runs their containers: as OCI containers
(podman with runc) when every image of the pod is built locally, otherwise as local processes,
each in its own mount namespace with its volumes where it runs as root; it writes their status
back so the real controllers (the Job controller above all) decide what happens next.

- `agent`: the node: registration and heartbeat, binding pods, one pod worker per bound pod.
- `kube`: a JSON client of the API server and a list-then-watch informer.
- `pod`: one pod's worker: volumes, init then main containers, restarts, deletion, deadline.
- `lifecycle`, `status`: the kubelet's rules for a pod's life and for its status (pure).
- `fetch`, `publish`: what a pod refers to, read from the API; its status, written to it.
- `plan`: pod spec -> launch plan (pure), from `images` (argv, user: an image's own
  configuration, or the sandbox's stand-in for the operator image), `env` (variables,
  `$(VAR)`), `downward` (the downward API), `identity` (uid, groups) and `volumes` (mounts).
- `podspec`, `node`, `errors`: what planning reads (the spec's references, the fetched
  `Sources`), the node's facts (`Host`, allocatable) and why a pod cannot be planned yet.
- `runtime`, `launcher`: volumes on disk, containers as processes; each one's first process.
- `containers`: containers as OCI containers: `podman create` built from the plan (pure), the
  engine's configuration and images, exit codes, start errors and the OOM killer.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
from pathlib import Path
from types import FrameType


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the API server")
    parser.add_argument("--node-name", default=socket.gethostname(), help="the Node to register")
    parser.add_argument(
        "--work-dir", required=True, type=Path, help="pod directories and container logs"
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def main(args: argparse.Namespace) -> int:
    from .agent import Agent
    from .kube import Kube

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # Hundreds of pod threads share the connection pool; a full pool only means a reconnect.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    agent = Agent(Kube(args.kubeconfig), args.node_name, args.work_dir.resolve())

    def stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        agent.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.run()
    return 0
