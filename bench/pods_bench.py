"""Benchmark: how long the sandbox's node takes to start the operator's pods, as OCI containers
of the image `make image` built and as host processes (an image name that is not built).

- operator: the chart's pod (rendered by `helm template`, its ServiceAccount and RBAC applied)
  created as a bare Pod; seconds from the create call to the pod Running, and to /healthz 200.
- copy pod: the pod the operator's copy Job runs (`exports/copy_job.build`), copying an empty
  run prefix (a listing, an empty manifest, `_SUCCESS`, `latest`); seconds from the create call
  to Running and to Succeeded, and the copier's own seconds (from its termination message).

Samples run one at a time on an otherwise idle sandbox (`--state-dir`, started if needed);
medians and minimums are reported. Writes bench/results/pods.json. Not a test:
`python bench/pods_bench.py`.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from pinpoint_export_operator.config import CopierDefaults
from pinpoint_export_operator.exports import copy_job
from pinpoint_export_operator.exports.steps import Export
from pinpoint_export_sandbox import binaries, demo, process, storage, supervisor
from pinpoint_export_sandbox.nodeagent.containers import Podman
from pinpoint_export_sandbox.stack import SandboxEnv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHART = ROOT / "charts" / "pinpoint-export-operator"
NOT_BUILT = "registry.local/pinpoint-export-operator:bench"  # runs as a host process
BUCKET = "pod-bench"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
log = logging.getLogger("pods_bench")


def chart_image() -> str:
    named = subprocess.run([ROOT / "tools" / "image.sh", "name"], capture_output=True, check=True)
    return named.stdout.decode().strip()


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(samples), 3), "min": round(min(samples), 3)}


class Pods:
    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core, self.namespace = core, namespace

    def read(self, name: str) -> Any:
        return self.core.read_namespaced_pod(name, self.namespace)

    def phase_reached(self, name: str, phases: tuple[str, ...]) -> Callable[[], Any]:
        def reached() -> Any:
            pod = self.read(name)
            return pod if pod.status and pod.status.phase in phases else None

        return reached

    def delete(self, name: str) -> None:
        self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=5)

        def gone() -> bool:
            try:
                self.read(name)
            except client.ApiException as error:
                return bool(error.status == 404)
            return False

        process.wait_for(gone, 60, f"pod {name} gone", interval=0.1)


def operator_pod(env: SandboxEnv, kubectl: list[str], namespace: str, port: int) -> dict[str, Any]:
    """The chart's operator pod (its ServiceAccount and RBAC applied), watching `namespace`."""
    rendered = subprocess.run(
        [
            str(binaries.find("helm4")), "template", "ppe-bench", str(CHART),
            "--namespace", namespace,
            "--set", f"livenessPort={port}", "--set", "metrics.port=0",
            "--set", f"watchNamespaces={{{namespace}}}",
            "--set", f"aws.region={env.s3.region}",
        ],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    others = [d for d in documents if d["kind"] != "Deployment"]
    subprocess.run(
        [*kubectl, "apply", "-f", "-"], input=yaml.safe_dump_all(others), text=True, check=True
    )
    template: dict[str, Any] = deployment["spec"]["template"]
    return template


def operator_starts(pods: Pods, template: dict[str, Any], image: str, port: int, times: int) -> Any:
    running, healthy = [], []
    for sample in range(times):
        name = f"operator-{sample}"
        spec = json.loads(json.dumps(template["spec"]))
        spec["containers"][0]["image"] = image
        body = {"metadata": {"name": name, "labels": template["metadata"]["labels"]}, "spec": spec}
        started = time.perf_counter()
        pods.core.create_namespaced_pod(pods.namespace, body)
        process.wait_for(pods.phase_reached(name, ("Running",)), 60, f"{name} Running", 0.02)
        running.append(time.perf_counter() - started)

        def answers() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return bool(r.status == 200)

        process.wait_for(answers, 60, f"{name} /healthz", interval=0.02)
        healthy.append(time.perf_counter() - started)
        pods.delete(name)
    return {"to_running": summary(running), "to_healthz_200": summary(healthy)}


def copy_pod(env: SandboxEnv, namespace: str, image: str, sample: int) -> dict[str, Any]:
    """The pod of the copy Job the operator would create for an export of an empty run."""
    export = Export(
        namespace=namespace,
        name=f"bench-{sample}",
        uid=f"00000000-0000-0000-0000-{sample:012d}",
        creation_timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        generation=1,
        spec={
            "applicationId": "0" * 32,
            "roleArn": "arn:aws:iam::123456789012:role/bench",
            "s3UrlPrefix": f"s3://{BUCKET}/empty/",
            "destination": {"claimName": "exports", "path": "bench"},
            "credentials": {"secretRef": {"name": "s3"}},
        },
    )
    defaults = CopierDefaults(
        image=image, region=env.s3.region, s3_endpoint_url=env.s3.endpoint_url
    )
    template = copy_job.build(export, defaults)["spec"]["template"]
    return {"metadata": {"name": f"copy-{sample}"}, "spec": template["spec"]}


def copy_starts(pods: Pods, env: SandboxEnv, image: str, times: int, offset: int) -> Any:
    running, succeeded, copier = [], [], []
    for sample in range(offset, offset + times):
        body = copy_pod(env, pods.namespace, image, sample)
        name = body["metadata"]["name"]
        started = time.perf_counter()
        pods.core.create_namespaced_pod(pods.namespace, body)
        process.wait_for(
            pods.phase_reached(name, ("Running", "Succeeded", "Failed")), 60, name, 0.02
        )
        running.append(time.perf_counter() - started)
        pod = process.wait_for(pods.phase_reached(name, ("Succeeded", "Failed")), 60, name, 0.02)
        succeeded.append(time.perf_counter() - started)
        terminated = pod.status.container_statuses[0].state.terminated
        assert pod.status.phase == "Succeeded", terminated
        copier.append(json.loads(terminated.message.splitlines()[-1])["seconds"])
        pods.delete(name)
    return {
        "to_running": summary(running),
        "to_succeeded": summary(succeeded),
        "copier_own_seconds": summary(copier),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".sandbox")
    parser.add_argument("--times", type=int, default=5, help="samples of each")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    image = chart_image()
    podman = Podman.find()
    if podman is None or podman.run("image", "exists", image).returncode != 0:
        raise SystemExit(f"{image} is not built: run `make image`")
    state_dir = args.state_dir.resolve()
    supervisor.up(state_dir, timeout=180)
    env = SandboxEnv.read(state_dir / "env")
    kubectl = [str(binaries.find("kubectl")), f"--kubeconfig={env.kubeconfig}"]
    demo.install_crds(kubectl)
    s3 = env.s3.client()
    if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)

    api = storage.api_client(env.kubeconfig)
    core = client.CoreV1Api(api)
    namespace = f"pod-bench-{int(time.time())}"
    core.create_namespace({"metadata": {"name": namespace, "labels": RESTRICTED}})
    process.wait_for(lambda: core.read_namespaced_service_account("default", namespace), 30, "sa")
    storage.bound_claim(api, namespace, "exports")
    keys = {"AWS_ACCESS_KEY_ID": env.s3.access_key, "AWS_SECRET_ACCESS_KEY": env.s3.secret_key}
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "s3"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in keys.items()},
        },
    )
    pods = Pods(core, namespace)
    port = process.free_port()
    template = operator_pod(env, kubectl, namespace, port)
    result: dict[str, Any] = {"image": image, "samples": args.times}
    try:
        for mode, chosen in (("container", image), ("host_process", NOT_BUILT)):
            log.info("operator pods as %s", mode)
            result.setdefault("operator", {})[mode] = operator_starts(
                pods, template, chosen, port, args.times
            )
            log.info("copy pods as %s", mode)
            offset = 0 if mode == "container" else args.times
            result.setdefault("copy_pod", {})[mode] = copy_starts(
                pods, env, chosen, args.times, offset
            )
    finally:
        core.delete_namespace(namespace)
    result["cpus"] = os.cpu_count()
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pods.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
