"""Operator benchmark: many exports at once on the sandbox.

Measures, against the targets in the README's table: all exports reach Succeeded; the
operator's peak RSS; API writes per export (Events included, counted in the API server's audit
log under the operator's own identity); Pinpoint polls per export against duration/interval + 2
(polls answered, alone or by a shared listing, and the calls they took); and the latencies
COMPLETED → copy Job created, copy Job complete → Ready.

    .venv/bin/python bench/operator_bench.py [--exports 500] [--poll 5] [--namespaces 1]
    # results/operator-500.json
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import re
import statistics
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_sandbox import binaries, demo, process, storage, supervisor
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.stack import SandboxEnv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BUCKET = "pinpoint-exports"
OPERATOR_USER = "pinpoint-export-operator"


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


# How often the operator's RSS is sampled, with the exports' phases at that moment.
TIMELINE_SECONDS = 30


DRY_RUN = " (dry run)"


def audit(logs: Path, namespaces: list[str]) -> tuple[dict[str, int], dict[tuple[str, str], float]]:
    """The operator's writes in `namespaces`, by resource, and when each copy Job was created
    (the moment its create was answered, to the microsecond: `creationTimestamp` has whole
    seconds), from the audit log in `logs` and the files the API server rotated it to (every
    200 MB: a 2,000-export run writes more)."""
    counts: dict[str, int] = {}
    jobs_created: dict[tuple[str, str], float] = {}
    lines = (line for log in sorted(logs.glob("audit*.log")) for line in log.open())
    for line in lines:
        entry = json.loads(line)
        ref = entry.get("objectRef", {})
        if (
            entry.get("user", {}).get("username") != OPERATOR_USER
            or ref.get("namespace") not in namespaces
        ):
            continue
        key = ref.get("resource", "?") + ("/" + ref["subresource"] if "subresource" in ref else "")
        code = entry.get("responseStatus", {}).get("code", 200)
        if "dryRun=" in entry.get("requestURI", ""):
            key += DRY_RUN  # the copy Job's preflight: admission runs, nothing is stored
        elif code >= 400:
            key += " (rejected: conflict, retried)"
        elif key == "jobs" and entry.get("verb") == "create":
            jobs_created[(ref["namespace"], ref.get("name", ""))] = ts(entry["stageTimestamp"])
        counts[key] = counts.get(key, 0) + 1
    return counts, jobs_created


def existing(core: client.CoreV1Api, namespaces: list[str]) -> list[str]:
    """Those of `namespaces` that still exist."""
    names = {n.metadata.name for n in core.list_namespace().items}
    return [n for n in namespaces if n in names]


def p99(values: list[float]) -> float:
    """Inclusive: never beyond the largest value (the exclusive method extrapolates)."""
    if len(values) < 2:
        return round(values[0], 2) if values else 0.0
    return round(statistics.quantiles(values, n=100, method="inclusive")[98], 2)


def by_completion(pairs: list[tuple[float, float]], width: int = 20) -> list[dict[str, float]]:
    """(completed, latency) pairs grouped by when Pinpoint completed, `width` seconds at a
    time from the first: whether the slow ones come together (a burst) or anywhere."""
    if not pairs:
        return []
    first = min(done for done, _ in pairs)
    groups: dict[int, list[float]] = collections.defaultdict(list)
    for done, latency in pairs:
        groups[int(done - first) // width * width].append(latency)
    return [
        {"s": start, "exports": len(group), "median": round(statistics.median(group), 2),
         "max": round(max(group), 2)}
        for start, group in sorted(groups.items())
    ]  # fmt: skip


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def sandbox_cpu(state_dir: Path) -> dict[str, float]:
    """CPU seconds so far of each process of the sandbox (the supervisor's children), their
    waited-for children included; the node agent's (the copy pods, run as its children) apart,
    as `pods`."""
    try:
        root = int((state_dir / "sandbox.pid").read_text())
    except (OSError, ValueError):
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    usage: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[1]) != root:
            continue
        args = [a.decode() for a in cmdline if a]
        name = Path(args[0]).name.split("-v")[0] if args else "?"
        if name.startswith("python") and "pinpoint_export_sandbox" in args:
            name = args[args.index("pinpoint_export_sandbox") + 1]
        # utime + stime, then cutime + cstime: the children waited for
        itself, children = (sum(int(f) for f in fields[i : i + 2]) / tick for i in (11, 13))
        if name == "node-agent":  # the sandbox's kubelet, apart from its pods
            usage["pods"] = usage.get("pods", 0.0) + children
        else:
            itself += children
        usage[name] = usage.get(name, 0.0) + itself
    return usage


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the bucket holding quantile `q` of a cumulative histogram."""
    total = buckets[-1][1] if buckets else 0
    return next((le for le, count in buckets if count >= q * total), None) if total else None


def internals(text: str) -> dict[str, Any]:
    """p50/p99 (bucket bounds) of the operator's loop lag, pool waits, API latencies and how long
    after Pinpoint's jobs completed it saw them and created their copy Jobs."""
    series: dict[str, list[tuple[float, float]]] = {}
    for name, labels, count in re.findall(
        r"^pinpoint_export_((?:event_loop_lag|pool_wait|call_duration|since_completion)"
        r"_seconds)_bucket"
        r"\{([^}]*)\} (\S+)$",
        text,
        re.M,
    ):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        le = float(pairs.pop("le"))
        key = name + "{" + ",".join(f"{k}={v}" for k, v in sorted(pairs.items())) + "}"
        series.setdefault(key, []).append((le, float(count)))
    return {
        key: {"count": int(b[-1][1]), "p50": quantile(b, 0.5), "p99": quantile(b, 0.99)}
        for key, b in sorted(series.items())
        if b and b[-1][1]
    }


def polls(text: str) -> float:
    """Polls of Pinpoint jobs the operator answered, however answered."""
    counts = re.findall(r"^pinpoint_export_job_polls_total\{[^}]*\} (\S+)$", text, re.M)
    return sum(float(count) for count in counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exports", type=int, default=500)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--poll", type=int, default=5, help="pollIntervalSeconds")
    parser.add_argument(
        "--namespaces", type=int, default=1, help="spread the exports over this many namespaces"
    )
    parser.add_argument(
        "--trace-memory",
        type=Path,
        metavar="REPORT",
        help="run the operator under tracemalloc (bench/traced_operator.py), reporting there; "
        "the run's figures are then printed, not saved",
    )
    args = parser.parse_args()

    state_dir = ROOT / ".sandbox"
    supervisor.up(state_dir, timeout=180)
    env = SandboxEnv.read(state_dir / "env")
    demo.install_crds([str(binaries.find("kubectl")), f"--kubeconfig={env.kubeconfig}"])
    emulator = EmulatorAdmin(env.pinpoint_url)
    app = emulator.create_app("bench")
    emulator.seed(app, args.endpoints)
    emulator.reset(state=False)
    s3 = env.s3.client()
    if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)

    stamp = int(time.time())
    namespaces = [f"bench-{stamp}-{n}" for n in range(args.namespaces)]
    api = storage.api_client(env.kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    keys = {"AWS_ACCESS_KEY_ID": env.s3.access_key, "AWS_SECRET_ACCESS_KEY": env.s3.secret_key}
    for namespace in namespaces:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        process.wait_for(
            lambda ns=namespace: core.read_namespaced_service_account("default", ns), 30, "sa"
        )
        storage.bound_claim(api, namespace, "exports", "10Gi")
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="pinpoint-credentials"),
                data={k: base64.b64encode(v.encode()).decode() for k, v in keys.items()},
            ),
        )

    log = state_dir / "logs" / "operator-bench.log"
    operator_env = {
        **os.environ,
        **env.variables(),
        "KUBECONFIG": str(env.state_dir / "control-plane" / "operator.kubeconfig"),
        "PPE_NAMESPACES": ",".join(namespaces),
        "PPE_S3_ENDPOINT_URL": env.s3.endpoint_url,
        "PPE_COPIER_IMAGE": "registry.local/pinpoint-export-operator:bench",
        "PPE_LIVENESS_PORT": str(process.free_port()),
        "PPE_METRICS_PORT": str(metrics_port := process.free_port()),
        "PPE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "pinpoint_export_operator", "run"]
    if args.trace_memory:
        command[1:3] = [str(ROOT / "bench" / "traced_operator.py"), str(args.trace_memory)]
    operator = process.start(command, log, env=operator_env)
    try:
        load_before = os.getloadavg()
        busy_before, sandbox_before = machine_busy(), sandbox_cpu(state_dir)
        started = time.monotonic()
        timeline: list[dict[str, Any]] = []  # the operator's RSS as the run goes
        for i in range(args.exports):
            namespace = namespaces[i % len(namespaces)]
            body = {
                "apiVersion": f"{names.GROUP}/{names.VERSION}",
                "kind": "PinpointExport",
                "metadata": {"name": f"export-{i:04d}"},
                "spec": {
                    "applicationId": app,
                    "roleArn": "arn:aws:iam::123456789012:role/PinpointExportToS3",
                    "s3UrlPrefix": f"s3://{BUCKET}/bench/",
                    "credentials": {"secretRef": {"name": "pinpoint-credentials"}},
                    "destination": {"claimName": "exports", "path": f"e{i:04d}"},
                    "pollIntervalSeconds": args.poll,
                },
            }
            custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.EXPORTS, body
            )

        def finished() -> list[dict[str, Any]] | None:
            items = [
                item
                for namespace in namespaces
                for item in custom.list_namespaced_custom_object(
                    names.GROUP, names.VERSION, namespace, names.EXPORTS
                )["items"]
            ]
            phases = [i.get("status", {}).get("phase") for i in items]
            done = sum(p in ("Succeeded", "Failed") for p in phases)
            seconds = time.monotonic() - started
            if not timeline or seconds - timeline[-1]["s"] >= TIMELINE_SECONDS:
                timeline.append(
                    {
                        "s": round(seconds),
                        "rss_mb": round(rss_mb(operator.pid)),
                        "phases": dict(collections.Counter(p or "New" for p in phases)),
                    }
                )
            return items if done == args.exports else None

        # Up to 1.5 s per export on two cores, most of it the copy pods (110 at a time).
        timeout = max(1800, 3 * args.exports)
        items = process.wait_for(
            finished, timeout, "all exports finished", interval=2, alive=operator
        )
        elapsed = time.monotonic() - started
        rss = peak_rss_mb(operator.pid)
        cpu = process.cpu_seconds(operator.pid)
        busy_after, sandbox_after = machine_busy(), sandbox_cpu(state_dir)
        load_after = os.getloadavg()
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        jobs = {
            (j.metadata.namespace, j.metadata.name): j
            for namespace in namespaces
            for j in client.BatchV1Api(api).list_namespaced_job(namespace).items
        }
        # Before the clean-up below, whose writes (letting go of the copy Jobs) are not the run's.
        writes, jobs_created = audit(env.state_dir / "control-plane" / "logs", namespaces)
    finally:
        # While the operator runs: it lets go of the copy Jobs (their finalizer) as they go.
        for namespace in namespaces:
            core.delete_namespace(namespace)
        process.wait_for(
            lambda: not existing(core, namespaces), 600, "namespaces deleted", interval=2
        )
        process.stop(operator)

    succeeded = sum(i["status"]["phase"] == "Succeeded" for i in items)
    to_copy, to_ready, poll_bounds = [], [], []
    copies: list[tuple[float, float]] = []  # (COMPLETED, then the copy Job after it)
    for item in items:
        status = item["status"]
        key = (item["metadata"]["namespace"], status.get("copyJob", {}).get("name", ""))
        job = jobs.get(key)
        if job is None or status["phase"] != "Succeeded":
            continue
        completed = ts(status["exportJob"]["completionDate"])
        to_copy.append(jobs_created[key] - completed)
        copies.append((completed, to_copy[-1]))
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        to_ready.append(ts(ready["lastTransitionTime"]) - job.status.completion_time.timestamp())
        exporting = completed - ts(status["startTime"])
        poll_bounds.append(exporting / args.poll + 2)
    counters = emulator.counters()
    result = {
        "exports": args.exports,
        "namespaces": args.namespaces,
        "succeeded": succeeded,
        "seconds": round(elapsed, 1),
        "operator_peak_rss_mb": round(rss, 1),
        "operator_cpu_s": round(cpu, 1),
        "operator_cpu_ms_per_export": round(cpu * 1000 / args.exports, 1),
        # Writes that store something; dry runs are listed by resource below.
        "api_writes_per_export": round(
            sum(n for key, n in writes.items() if not key.endswith(DRY_RUN)) / args.exports, 2
        ),
        "api_writes_by_resource": writes,
        # Polls answered (alone or by a listing shared with others), and the calls they took.
        "pinpoint_polls_per_export": round(polls(scraped.decode()) / args.exports, 2),
        "pinpoint_poll_calls_per_export": round(
            (counters.get("GetExportJob", 0) + counters.get("GetExportJobs", 0)) / args.exports, 2
        ),
        "poll_bound_per_export": round(sum(poll_bounds) / max(len(poll_bounds), 1), 2),
        "pinpoint_calls": counters,
        "completed_to_copy_job_s_median": round(statistics.median(to_copy or [0]), 2),
        "completed_to_copy_job_s_p99": p99(to_copy),
        "completed_to_copy_job_s_max": round(max(to_copy, default=0), 2),
        "completed_to_copy_job_by_completion": by_completion(copies),
        "copy_complete_to_ready_s_median": round(statistics.median(to_ready or [0]), 2),
        "copy_complete_to_ready_s_p99": p99(to_ready),
        "copy_complete_to_ready_s_max": round(max(to_ready, default=0), 2),
        "poll_interval_s": args.poll,
        # The machine is shared (2 cores; other runs of the sandbox may be on it): its load
        # and how busy its CPUs were during the run, and what the sandbox's own processes used.
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_start_end": [round(load_before[0], 2), round(load_after[0], 2)],
            "cpu_busy_fraction": round(
                (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1), 2
            ),
            "sandbox_cpu_s": {
                name: round(used - sandbox_before.get(name, 0.0), 1)
                for name, used in sorted(sandbox_after.items())
            },
        },
        # Where the operator's time went, from its own /metrics at the end of the run.
        "operator_internals": internals(scraped.decode()),
        "operator_rss_timeline": timeline,
    }
    if not args.trace_memory:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"operator-{args.exports}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if succeeded == args.exports else 1


if __name__ == "__main__":
    sys.exit(main())
