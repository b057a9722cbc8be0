"""PinpointExportSchedule end to end: cron runs, concurrency, history, trigger, GitOps re-apply.

Scheduled runs happen on minute boundaries of the real clock, so the tests that need them use
`* * * * *` and run several schedules side by side to pay for each boundary once; everything
else is started by the trigger annotation.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.s3server import S3Credentials

from .conftest import ROOT, Kubectl, export_manifest
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e
MINUTE = 80  # seconds to wait for the next minute boundary, and the run it starts


def schedule_manifest(name: str, application_id: str, **spec: Any) -> dict[str, Any]:
    """The README's example schedule, pointed at the sandbox's app."""
    manifest: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "pinpointexportschedule.yaml").read_text()
    )
    manifest["metadata"]["name"] = name
    manifest["spec"].pop("startingDeadlineSeconds")
    manifest["spec"].update(spec)
    manifest["spec"]["exportTemplate"]["spec"] = export_manifest(name, application_id)["spec"]
    return manifest


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any], *flags: str) -> str:
    done = kubectl("apply", "-n", namespace, *flags, "-f", "-", input=yaml.safe_dump(manifest))
    return done.stdout


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def read_schedule(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj = custom(api).get_namespaced_custom_object(
        names.GROUP, names.VERSION, namespace, names.SCHEDULES, name
    )
    assert isinstance(obj, dict)
    return obj


def wait_status(
    api: client.ApiClient,
    namespace: str,
    name: str,
    ready: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 30,
) -> dict[str, Any]:
    """The schedule's status once `ready` holds: the schedule writes its status after the
    exports it creates or deletes, so a test that saw an export waits for the write."""

    def check() -> dict[str, Any] | None:
        status: dict[str, Any] = read_schedule(api, namespace, name).get("status", {})
        return status if ready(status) else None

    return process.wait_for(check, timeout, f"{namespace}/{name}: {what}")


def exports_of(api: client.ApiClient, namespace: str, schedule: str) -> list[dict[str, Any]]:
    listed = custom(api).list_namespaced_custom_object(
        names.GROUP,
        names.VERSION,
        namespace,
        names.EXPORTS,
        label_selector=f"{names.LABEL_SCHEDULE}={schedule}",
    )
    return sorted(listed["items"], key=lambda o: o["metadata"]["name"])


def wait_exports(
    api: client.ApiClient,
    namespace: str,
    schedule: str,
    ready: Callable[[list[dict[str, Any]]], bool],
    what: str,
    timeout: float = MINUTE,
) -> list[dict[str, Any]]:
    def check() -> tuple[list[dict[str, Any]]] | None:
        exports = exports_of(api, namespace, schedule)
        return (exports,) if ready(exports) else None  # truthy even when no exports is the goal

    try:
        return process.wait_for(check, timeout, f"{namespace}/{schedule}: {what}", interval=0.5)[0]
    except TimeoutError as error:
        seen = [
            (
                e["metadata"]["name"],
                e.get("status", {}).get("phase"),
                e["metadata"].get("deletionTimestamp"),
                e["metadata"].get("finalizers"),
            )
            for e in exports_of(api, namespace, schedule)
        ]
        raise AssertionError(f"{error}; exports now: {seen}") from None


def phases(exports: list[dict[str, Any]]) -> list[str | None]:
    return [e.get("status", {}).get("phase") for e in exports]


def finished(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """`count` exports, each Succeeded or Failed."""
    return lambda e: len(e) == count and all(p in ("Succeeded", "Failed") for p in phases(e))


def event_reasons(api: client.ApiClient, namespace: str, name: str) -> dict[str, list[str]]:
    events = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    found: dict[str, list[str]] = {}
    for event in events.items:
        found.setdefault(event.reason, []).append(event.message)
    return found


def wait_event(
    api: client.ApiClient,
    namespace: str,
    name: str,
    reason: str,
    containing: str = "",
    timeout: float = 30,
) -> None:
    """Wait for an Event of `reason` on `name` whose message contains `containing`: Kopf posts
    Events on a queue of its own, so one may trail the writes around it."""
    process.wait_for(
        lambda: any(containing in m for m in event_reasons(api, namespace, name).get(reason, [])),
        timeout,
        f"{namespace}/{name}: Event {reason}" + (f" with {containing!r}" if containing else ""),
    )


def patch_spec(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    custom(api).patch_namespaced_custom_object(
        names.GROUP, names.VERSION, namespace, names.SCHEDULES, name, {"spec": spec}
    )


def trigger(kubectl: Kubectl, namespace: str, name: str, value: str) -> None:
    kubectl(
        "annotate",
        "-n",
        namespace,
        "--overwrite",
        f"ppes/{name}",
        f"{names.ANNOTATION_TRIGGER}={value}",
    )


def observed(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The schedule once the operator has acted on its current generation and trigger."""

    def check() -> dict[str, Any] | None:
        obj = read_schedule(api, namespace, name)
        status = obj.get("status", {})
        trigger_value = obj["metadata"].get("annotations", {}).get(names.ANNOTATION_TRIGGER)
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        if trigger_value is not None and status.get("lastTriggerValue") != trigger_value:
            return None
        return obj if obj["metadata"].get("finalizers") else None

    return process.wait_for(check, 30, f"{namespace}/{name} observed by the operator")


@pytest.fixture
def schedules(namespace: str, kubectl: Kubectl, operator: OperatorProcess) -> Iterator[str]:
    """The test's namespace; its schedules are deleted while the operator still runs, so that
    their finalizers never hold the namespace in Terminating after the session."""
    yield namespace
    kubectl("delete", "ppes", "--all", "-n", namespace, "--wait=true", "--timeout=60s")


@pytest.fixture
def frozen(emulator: EmulatorAdmin) -> Iterator[None]:
    """Pinpoint jobs stop at PROCESSING until the test ends (or calls set_faults())."""
    emulator.set_faults(freeze_status="PROCESSING")
    yield
    emulator.set_faults()


def test_every_minute_with_each_concurrency_policy_and_suspend(
    api: client.ApiClient,
    schedules: str,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
    frozen: None,
) -> None:
    app = emulator.create_app()
    emulator.seed(app, 20)
    bound_claim("exports")
    policies = {"forbid": "Forbid", "allow": "Allow", "replace": "Replace"}
    for name, policy in policies.items():
        apply(
            kubectl,
            namespace,
            schedule_manifest(name, app, schedule="* * * * *", concurrencyPolicy=policy),
        )
    apply(kubectl, namespace, schedule_manifest("paused", app, schedule="* * * * *", suspend=True))

    # The first minute boundary: one run each, which stays Exporting (frozen).
    first = {
        name: wait_exports(api, namespace, name, lambda e: len(e) == 1, "the first run")[0]
        for name in policies
    }
    for name, export in first.items():
        assert export["metadata"]["labels"][names.LABEL_SCHEDULE] == name
        assert export["metadata"]["labels"]["team"] == "marketing"
        (owner,) = export["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == (
            "PinpointExportSchedule",
            name,
            True,
        )
        scheduled = export["metadata"]["annotations"][names.ANNOTATION_SCHEDULED_AT]
        minutes = export["metadata"]["name"].rsplit("-", 1)[1]
        status = wait_status(
            api, namespace, name, lambda s: "lastScheduleTime" in s, "the first run recorded"
        )
        assert status["lastScheduleTime"] == scheduled
        assert int(minutes) * 60 == int(datetime.fromisoformat(scheduled).timestamp())

    # The second boundary: Allow runs both, Replace swaps, Forbid skips.
    allow = wait_exports(api, namespace, "allow", lambda e: len(e) >= 2, "a second run")
    assert all(p in (None, "Pending", "Exporting") for p in phases(allow)), phases(allow)
    replace = wait_exports(
        api,
        namespace,
        "replace",
        lambda e: len(e) == 1 and e[0]["metadata"]["name"] != first["replace"]["metadata"]["name"],
        "the first run replaced",
    )
    replaced_by = "replaced by " + replace[0]["metadata"]["name"]
    wait_event(api, namespace, "replace", "SuccessfulDelete", replaced_by)
    wait_event(api, namespace, "forbid", "ExportAlreadyActive", timeout=MINUTE)
    assert [e["metadata"]["name"] for e in exports_of(api, namespace, "forbid")] == [
        first["forbid"]["metadata"]["name"]
    ]
    forbid_status = read_schedule(api, namespace, "forbid")["status"]
    assert forbid_status["active"] == 1
    assert (
        forbid_status["lastScheduleTime"]
        == first["forbid"]["metadata"]["annotations"][names.ANNOTATION_SCHEDULED_AT]
    )
    wait_status(api, namespace, "allow", lambda s: s.get("active", 0) >= 2, "two runs active")

    # Suspended: nothing ran, nothing is next.
    paused = read_schedule(api, namespace, "paused")
    assert exports_of(api, namespace, "paused") == []
    assert "nextScheduleTime" not in paused["status"]
    ready = {c["type"]: c for c in paused["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "Suspended")

    table = kubectl("get", "ppes", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "SCHEDULE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "NEXT",
        "STATUS",
        "AGE",
    ]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["allow"][1:7] == ["*", "*", "*", "*", "*", "false"]
    assert int(rows["allow"][7]) >= 2
    assert rows["paused"][6:8] == ["true", "0"]

    # Resumed after two or more missed minutes: one run at once, not one per missed minute.
    patch_spec(api, namespace, "paused", {"suspend": False})
    resumed = wait_exports(api, namespace, "paused", lambda e: len(e) >= 1, "the resumed run", 20)
    assert len(resumed) == 1

    # Deleting a schedule deletes its runs (garbage collection).
    for name in ("allow", "replace", "paused"):
        kubectl("delete", "-n", namespace, f"ppes/{name}", "--wait=true")
    for name in ("allow", "replace", "paused"):
        wait_exports(api, namespace, name, lambda e: e == [], "its runs deleted", 60)

    # Forbid: once the running export finishes, the skipped time starts, late.
    emulator.set_faults()
    done = wait_exports(
        api,
        namespace,
        "forbid",
        lambda e: len(e) == 2 and phases(e)[0] in ("Succeeded", "Failed"),
        "the late run after the first finished",
        120,
    )
    assert phases(done)[0] == "Succeeded"
    late = done[1]["metadata"]["annotations"][names.ANNOTATION_SCHEDULED_AT]
    assert late > first["forbid"]["metadata"]["annotations"][names.ANNOTATION_SCHEDULED_AT]
    assert late <= done[1]["metadata"]["creationTimestamp"]
    patch_spec(api, namespace, "forbid", {"suspend": True})


def test_trigger_history_limits_and_deletion_keep_the_files(
    api: client.ApiClient,
    schedules: str,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    s3: S3Credentials,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    app = emulator.create_app()
    emulator.seed(app, 50)
    volume = bound_claim("exports")
    ok = schedule_manifest("ok", app, schedule="@yearly", successfulExportsHistoryLimit=1)
    # An application Pinpoint does not know: every run fails at once.
    failing = schedule_manifest("failing", app, schedule="@yearly", failedExportsHistoryLimit=1)
    failing["spec"]["exportTemplate"]["spec"]["applicationId"] = uuid.uuid4().hex
    for manifest in (ok, failing):
        apply(kubectl, namespace, manifest)
    for name in ("ok", "failing"):
        # The example's trigger value is there at creation: the baseline, not a request.
        assert observed(api, namespace, name)["status"]["lastTriggerValue"] == "initial"
        assert exports_of(api, namespace, name) == []

    for name in ("ok", "failing"):
        trigger(kubectl, namespace, name, "run-1")
    runs = {
        name: wait_exports(api, namespace, name, finished(1), "run-1", 120)
        for name in ("ok", "failing")
    }
    assert phases(runs["ok"]) == ["Succeeded"] and phases(runs["failing"]) == ["Failed"]
    assert runs["ok"][0]["metadata"]["annotations"][names.ANNOTATION_TRIGGERED_BY] == "run-1"
    first_ok = runs["ok"][0]

    # A second trigger in the same minute takes the next minute's name; then the limits keep
    # one export of each kind.
    for name in ("ok", "failing"):
        trigger(kubectl, namespace, name, "run-2")
    kept = {}
    for name, phase in (("ok", "Succeeded"), ("failing", "Failed")):
        kept[name] = wait_exports(
            api,
            namespace,
            name,
            lambda e, phase=phase: (
                len(e) == 1
                and e[0]["metadata"]["annotations"].get(names.ANNOTATION_TRIGGERED_BY) == "run-2"
                and phases(e) == [phase]
            ),
            "run-2 finished and run-1 deleted",
            120,
        )
    completed = kept["ok"][0]["status"]["completionTime"]
    status = wait_status(
        api,
        namespace,
        "ok",
        lambda s: s.get("lastSuccessfulTime") == completed,
        "the status recording run-2",
    )
    assert status["lastTriggerValue"] == "run-2"
    assert "lastScheduleTime" not in status  # triggers are not scheduled times
    wait_event(api, namespace, "ok", "SuccessfulDelete")

    # The files of the deleted export are still there, on the claim and in S3.
    run_dirs = [first_ok["status"]["output"]["path"], kept["ok"][0]["status"]["output"]["path"]]
    for run_dir in run_dirs:
        assert (volume / run_dir / "_SUCCESS").exists(), run_dir

    # Deleting the schedule deletes its exports, and never their files.
    kubectl("delete", "-n", namespace, "ppes/ok", "--wait=true")
    wait_exports(api, namespace, "ok", lambda e: e == [], "its exports deleted", 60)
    for run_dir in run_dirs:
        assert (volume / run_dir / "_SUCCESS").exists(), run_dir
    for export in (first_ok, kept["ok"][0]):
        prefix = export["status"]["exportJob"]["s3Url"].removeprefix(f"s3://{bucket}/")
        listed = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        assert listed.get("KeyCount", 0) > 0, prefix


def test_keep_runs_on_a_schedule_prunes_its_oldest_runs_and_nothing_else(
    api: client.ApiClient,
    schedules: str,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    """keepRuns 2 in the export template: after three runs the newest two remain beside
    `latest`; what is not a complete run of this path (a stray directory, a symlink named like
    a run, a newer run still being written) is never removed. The trigger annotation starts
    the runs, one after the other; runs are named by the minute, so each waits for a minute of
    its own."""
    app = emulator.create_app()
    emulator.seed(app, 20)
    volume = bound_claim("exports")
    manifest = schedule_manifest("kept", app, schedule="@yearly", successfulExportsHistoryLimit=3)
    destination = manifest["spec"]["exportTemplate"]["spec"]["destination"]
    destination.update(path="marketing/kept", keepRuns=2)
    base = volume / "marketing" / "kept"
    base.mkdir(parents=True)
    (base / "notes").mkdir()
    (volume / "elsewhere").mkdir()
    (base / "20200101T000000Z-0badc0de").symlink_to(volume / "elsewhere")
    # Named as a run a day from now would be, with no manifest: a copier still at work.
    writing = names.run_id(datetime.now(UTC) + timedelta(days=1), uuid.uuid4().hex)
    (base / writing).mkdir()
    (base / writing / "part-00000.gz").write_bytes(b"")
    apply(kubectl, namespace, manifest)
    observed(api, namespace, "kept")  # the example's trigger value is its baseline

    runs = []  # run ids, in the order the runs were started
    for count in range(1, 4):
        value = f"run-{count}"
        trigger(kubectl, namespace, "kept", value)
        done = wait_exports(
            api,
            namespace,
            "kept",
            finished(count),
            f"{value} finished",
            2 * MINUTE,
        )
        assert phases(done) == ["Succeeded"] * count, [e["status"] for e in done]
        (run,) = [
            e["status"]["runId"]
            for e in done
            if e["metadata"]["annotations"].get(names.ANNOTATION_TRIGGERED_BY) == value
        ]
        runs.append(run)
    assert runs == sorted(runs)  # run ids sort by time, which is what keepRuns goes by
    assert sorted(p.name for p in base.iterdir()) == sorted(
        [*runs[1:], "latest", "notes", "20200101T000000Z-0badc0de", writing]
    )
    assert os.readlink(base / "latest") == runs[2]
    for run in runs[1:]:
        assert (base / run / "_SUCCESS").exists() and (base / run / "manifest.json").exists()
    assert (base / writing / "part-00000.gz").exists()
    assert (volume / "elsewhere").is_dir()


def test_reapply_changes_nothing(
    api: client.ApiClient,
    schedules: str,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
) -> None:
    """kubectl apply and server-side apply of the same manifest leave the schedule as it is."""
    app = uuid.uuid4().hex
    for name, flags in (("client-side", ()), ("server-side", ("--server-side",))):
        manifest = schedule_manifest(name, app, schedule="0 2 * * *", timeZone="Europe/Berlin")
        apply(kubectl, namespace, manifest, *flags)
        before = observed(api, namespace, name)
        out = apply(kubectl, namespace, manifest, *flags)
        after = read_schedule(api, namespace, name)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], out
        annotations = after["metadata"]["annotations"]
        kubectls = {k for k in annotations if k.startswith("kubectl.kubernetes.io/")}
        assert {k: annotations[k] for k in set(annotations) - kubectls} == manifest["metadata"][
            "annotations"
        ]
        assert "labels" not in after["metadata"]
        # What anyone but kubectl wrote: the status, and Kopf's finalizer (it runs the daemon).
        for entry in after["metadata"]["managedFields"]:
            if entry["manager"].startswith("kubectl") or entry.get("subresource") == "status":
                continue
            assert set(entry["fieldsV1"]) == {"f:metadata"}, entry
            assert set(entry["fieldsV1"]["f:metadata"]) == {"f:finalizers"}, entry
        assert after["status"]["nextScheduleTime"].endswith(":00:00Z")


def test_unknown_time_zone_is_reported_not_utc(
    api: client.ApiClient, schedules: str, namespace: str, kubectl: Kubectl
) -> None:
    manifest = schedule_manifest("atlantis", uuid.uuid4().hex, timeZone="Europe/Atlantis")
    apply(kubectl, namespace, manifest)
    kubectl("wait", "-n", namespace, "--for=condition=Stalled", "ppes/atlantis", "--timeout=30s")
    status = read_schedule(api, namespace, "atlantis")["status"]
    stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
    assert stalled["reason"] == "InvalidTimeZone"
    assert "Europe/Atlantis" in stalled["message"]
    assert "nextScheduleTime" not in status
    wait_event(api, namespace, "atlantis", "InvalidTimeZone")


# Rejected by the API server, each with a message naming the field.


@pytest.fixture(scope="module")
def rejecting_namespace(api: client.ApiClient, crds: None) -> Iterator[str]:
    """One namespace for the rejected objects: none of them is ever created."""
    core = client.CoreV1Api(api)
    name = f"schedule-validation-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


INVALID: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("cron-words", {"schedule": "every night"}, ("spec.schedule", "five cron fields")),
    ("cron-six-fields", {"schedule": "0 0 2 * * *"}, ("spec.schedule", "five cron fields")),
    ("cron-minute", {"schedule": "60 2 * * *"}, ("spec.schedule", "minute field")),
    ("cron-hour", {"schedule": "0 24 * * *"}, ("spec.schedule", "hour field")),
    ("cron-day", {"schedule": "0 2 0 * *"}, ("spec.schedule", "day-of-month field")),
    ("cron-month", {"schedule": "0 2 * 13 *"}, ("spec.schedule", "month field")),
    ("cron-weekday", {"schedule": "0 2 * * SUNDAY"}, ("spec.schedule", "day-of-week field")),
    ("cron-macro", {"schedule": "@every 1h"}, ("spec.schedule", "@daily")),
    ("cron-tz-prefix", {"schedule": "CRON_TZ=UTC 0 2 * * *"}, ("spec.schedule",)),
    ("zone-path", {"timeZone": "../../etc/passwd"}, ("spec.timeZone",)),
    ("zone-spaces", {"timeZone": "Europe / Berlin"}, ("spec.timeZone",)),
    ("zone-local", {"timeZone": "Local"}, ("spec.timeZone", "IANA")),
    ("policy", {"concurrencyPolicy": "Sometimes"}, ("spec.concurrencyPolicy",)),
    ("deadline-negative", {"startingDeadlineSeconds": -1}, ("spec.startingDeadlineSeconds",)),
    (
        "success-limit-negative",
        {"successfulExportsHistoryLimit": -1},
        ("spec.successfulExportsHistoryLimit", "greater than or equal to 0"),
    ),
    (
        "failed-limit-negative",
        {"failedExportsHistoryLimit": -2},
        ("spec.failedExportsHistoryLimit", "greater than or equal to 0"),
    ),
    ("suspend-string", {"suspend": "yes"}, ("spec.suspend",)),
    ("schedule-missing", {"schedule": None}, ("spec.schedule", "Required value")),
    (
        "template-app-id",
        {"exportTemplate": {"spec": {"applicationId": "ABC"}}},
        ("spec.exportTemplate.spec.applicationId",),
    ),
    (
        "template-segment-version",
        {"exportTemplate": {"spec": {"segmentVersion": 2}}},
        ("spec.exportTemplate.spec.segmentVersion", "requires segmentId"),
    ),
    (
        "template-destination",
        {"exportTemplate": {"spec": {"destination": None}}},
        ("spec.exportTemplate.spec.destination", "Required value"),
    ),
    (
        "template-unknown-field",
        {"exportTemplate": {"spec": {"destinaton": {"claimName": "x"}}}},
        ("spec.exportTemplate.spec.destinaton",),
    ),
    (
        "template-schedule-label",
        {"exportTemplate": {"metadata": {"labels": {names.LABEL_SCHEDULE: "other"}}}},
        ("spec.exportTemplate.metadata.labels", names.LABEL_SCHEDULE),
    ),
    # Each run's create would fail on these (a 422 at every scheduled time): refused up front.
    (
        "template-label-key",
        {"exportTemplate": {"metadata": {"labels": {"team name": "marketing"}}}},
        ("spec.exportTemplate.metadata.labels", "each key must be"),
    ),
    (
        "template-annotation-key",
        {"exportTemplate": {"metadata": {"annotations": {"/note": "x"}}}},
        ("spec.exportTemplate.metadata.annotations", "each key must be"),
    ),
    (
        "template-annotation-too-long",
        {"exportTemplate": {"metadata": {"annotations": {"note": "x" * 4097}}}},
        ("spec.exportTemplate.metadata.annotations", "Too long"),
    ),
]


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`base` with `patch` merged in, as a JSON merge patch: None removes a key."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.mark.parametrize(("case", "patch", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_schedules_are_rejected_naming_the_field(
    rejecting_namespace: str,
    kubectl: Kubectl,
    case: str,
    patch: dict[str, Any],
    expected: tuple[str, ...],
) -> None:
    manifest = schedule_manifest(case, "0123456789abcdef0123456789abcdef")
    manifest["spec"] = merged(manifest["spec"], patch)
    done = kubectl(
        "apply", "-n", rejecting_namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False
    )
    assert done.returncode != 0, f"{case} was accepted: {done.stdout}"
    for text in expected:
        assert text in done.stderr, done.stderr


def test_a_long_name_is_rejected(rejecting_namespace: str, kubectl: Kubectl) -> None:
    manifest = schedule_manifest("x" * 53, "0123456789abcdef0123456789abcdef")
    done = kubectl(
        "apply", "-n", rejecting_namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False
    )
    assert done.returncode != 0 and "metadata.name must be at most 52 characters" in done.stderr
