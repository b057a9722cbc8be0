"""`make demo`: the operator end to end on the sandbox, narrated for a newcomer.

Starts (or reuses) the sandbox, seeds a Pinpoint project with endpoints, installs the CRDs,
runs the operator, applies the README's example and follows it to the end.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_sandbox import binaries, process, storage, supervisor
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.stack import SandboxEnv

ROOT = Path(__file__).resolve().parents[2]  # the repository: its crds/ and examples/
NAMESPACE = "demo"
BUCKET = "pinpoint-exports"
IMAGE = "registry.local/pinpoint-export-operator:dev"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".sandbox")
    parser.add_argument("--endpoints", type=int, default=10_000)


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    say("Starting the sandbox (etcd, kube-apiserver, kube-controller-manager, S3, Pinpoint)")
    supervisor.up(args.state_dir.resolve(), timeout=180)
    env = SandboxEnv.read(args.state_dir.resolve() / "env")
    kubectl = [str(binaries.find("kubectl")), f"--kubeconfig={env.kubeconfig}"]

    say(f"Seeding a Pinpoint project with {args.endpoints} endpoints")
    emulator = EmulatorAdmin(env.pinpoint_url)
    app = emulator.create_app("demo")
    emulator.seed(app, args.endpoints)
    s3 = env.s3.client()
    if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)

    say("Installing the CRDs and the example's claim and Secret")
    install_crds(kubectl)
    with storage.api_client(env.kubeconfig) as api:
        _prepare_namespace(api, env)
        log = args.state_dir.resolve() / "logs" / "operator.log"
        say(f"Running the operator (log: {log})")
        operator = _start_operator(env, log)
        try:
            manifest = _example(app)
            name = manifest["metadata"]["name"]
            custom = client.CustomObjectsApi(api)
            try:
                custom.delete_namespaced_custom_object(
                    names.GROUP, names.VERSION, NAMESPACE, names.EXPORTS, name
                )
                say(f"Deleted the previous demo export {name} (its files stay)")
                process.wait_for(lambda: _gone(custom, name), 30, "previous export deleted")
            except client.ApiException as error:
                if error.status != 404:
                    raise
            say("kubectl apply -f examples/pinpointexport.yaml")
            subprocess.run(
                [*kubectl, "apply", "-n", NAMESPACE, "-f", "-"],
                input=yaml.safe_dump(manifest).encode(),
                check=True,
            )
            status = _follow(custom, name)
        finally:
            process.stop(operator)
        _show(kubectl, api, status)
    say(f"Done in {time.monotonic() - started:.0f}s. Try: source .sandbox/env; kubectl get ppe -A")
    print("   Stop the sandbox with: make sandbox-down")
    return 0 if status.get("phase") == "Succeeded" else 1


def install_crds(kubectl: list[str]) -> None:
    """Apply the project's CRDs and wait until the API serves them."""
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
        check=True,
    )
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "-f", str(ROOT / "crds")], check=True
    )


def _prepare_namespace(api: client.ApiClient, env: SandboxEnv) -> None:
    core = client.CoreV1Api(api)
    for create in (
        lambda: core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
        ),
        lambda: core.create_namespaced_persistent_volume_claim(
            NAMESPACE, yaml.safe_load((ROOT / "examples" / "pvc.yaml").read_text())
        ),
        lambda: core.create_namespaced_secret(
            NAMESPACE,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="pinpoint-credentials"),
                data={
                    "AWS_ACCESS_KEY_ID": base64.b64encode(env.s3.access_key.encode()).decode(),
                    "AWS_SECRET_ACCESS_KEY": base64.b64encode(env.s3.secret_key.encode()).decode(),
                },
            ),
        ),
    ):
        try:
            create()
        except client.ApiException as error:
            if error.status != 409:
                raise


def _start_operator(env: SandboxEnv, log: Path) -> subprocess.Popen[bytes]:
    port = process.free_port()
    variables = {
        **os.environ,
        **env.variables(),
        "PPE_S3_ENDPOINT_URL": env.s3.endpoint_url,
        "PPE_COPIER_IMAGE": IMAGE,
        "PPE_LIVENESS_PORT": str(port),
        "PPE_METRICS_PORT": "0",
    }
    operator = process.start(
        [sys.executable, "-m", "pinpoint_export_operator", "run"], log, env=variables
    )
    process.wait_for(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200,
        60,
        "operator liveness",
        alive=operator,
        log=log,
    )
    return operator


def _example(app: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "pinpointexport.yaml").read_text()
    )
    manifest["spec"].update(applicationId=app, s3UrlPrefix=f"s3://{BUCKET}/endpoints/")
    manifest["spec"]["pollIntervalSeconds"] = 2
    return manifest


def _gone(custom: client.CustomObjectsApi, name: str) -> bool:
    try:
        custom.get_namespaced_custom_object(
            names.GROUP, names.VERSION, NAMESPACE, names.EXPORTS, name
        )
    except client.ApiException as error:
        return bool(error.status == 404)
    return False


def _follow(custom: client.CustomObjectsApi, name: str, timeout: float = 300) -> dict[str, Any]:
    """Print each change of phase and message, like `kubectl get ppe -w`."""
    deadline = time.monotonic() + timeout
    last = None
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        obj: dict[str, Any] = custom.get_namespaced_custom_object(  # type: ignore[assignment]
            names.GROUP, names.VERSION, NAMESPACE, names.EXPORTS, name
        )
        status = obj.get("status", {})
        line = f"  {status.get('phase', '-'):<10} {status.get('message', '')}"
        if line != last:
            print(line, flush=True)
            last = line
        if status.get("phase") in ("Succeeded", "Failed"):
            return status
        time.sleep(0.5)  # a display refresh, not synchronisation
    raise TimeoutError(f"export {name} did not finish within {timeout}s")


def _show(kubectl: list[str], api: client.ApiClient, status: dict[str, Any]) -> None:
    say("kubectl get ppe -o wide")
    subprocess.run([*kubectl, "get", "ppe", "-n", NAMESPACE, "-o", "wide"], check=True)
    say("status")
    print(yaml.safe_dump(status, sort_keys=False))
    output = status.get("output")
    if not output:
        return
    root = storage.claim_directory(api, NAMESPACE, output["claimName"])
    run_dir = root / output["path"]
    say(f"files in the claim ({run_dir})")
    for path in sorted(run_dir.parent.iterdir()):
        print(f"  {path.name}{' -> ' + os.readlink(path) if path.is_symlink() else ''}")
    for path in sorted(run_dir.iterdir()):
        print(f"  {output['path']}/{path.name:<40} {path.stat().st_size:>10} bytes")
    say("manifest.json")
    print(json.dumps(json.loads((run_dir / "manifest.json").read_text()), indent=2)[:3000])
