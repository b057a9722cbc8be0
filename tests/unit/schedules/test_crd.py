"""The PinpointExportSchedule CRD and its example, checked without a server.

The template's spec must stay the PinpointExport spec (tools/sync-schedule-crd.py copies it);
the cron rules, written in CEL for the API server, must agree with cronsim, which the operator
schedules with. The API server's own verdicts are in tests/e2e/test_schedule.py.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import zoneinfo
from typing import Any

import pytest

from pinpoint_export_operator.schedules.cron import MACROS, Cron, InvalidSpec

from .. import crd_schema
from ..crd_schema import ROOT, Schema, load_example, named_properties, validate, walk
from ..crd_schema import SCHEDULE_CRD_PATH as CRD_PATH
from ..crd_schema import root_schema as export_root_schema

SYNC_SCRIPT = ROOT / "tools" / "sync-schedule-crd.py"


def load_crd() -> dict[str, Any]:
    return crd_schema.load_crd(CRD_PATH)


def root_schema() -> Schema:
    return crd_schema.root_schema(CRD_PATH)


def spec_schema() -> Schema:
    schema: Schema = root_schema()["properties"]["spec"]
    return schema


def without_descriptions(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: without_descriptions(v) for k, v in schema.items() if k != "description"}
    return [without_descriptions(v) for v in schema] if isinstance(schema, list) else schema


def test_crd_names_and_version() -> None:
    crd = load_crd()
    assert crd["metadata"]["name"] == "pinpointexportschedules.pinpoint.exports.dev"
    assert crd["spec"]["group"] == "pinpoint.exports.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": "PinpointExportSchedule",
        "listKind": "PinpointExportScheduleList",
        "plural": "pinpointexportschedules",
        "singular": "pinpointexportschedule",
        "shortNames": ["ppes"],
        "categories": ["pinpoint"],
    }
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_template_spec_is_the_export_spec() -> None:
    """Identical but for what makes an export's spec immutable and its wording."""
    template = spec_schema()["properties"]["exportTemplate"]["properties"]["spec"]
    export = export_root_schema()["properties"]["spec"]
    immutable = {
        "rule": "self == oldSelf",
        "message": "spec is immutable: create a new PinpointExport for a new export",
        "reason": "FieldValueForbidden",
    }
    assert immutable in export["x-kubernetes-validations"]
    expected = {
        **export,
        "description": template["description"],
        "x-kubernetes-validations": [
            r for r in export["x-kubernetes-validations"] if r != immutable
        ],
    }
    assert template == expected


def test_generated_copy_is_current() -> None:
    spec = importlib.util.spec_from_file_location("sync_schedule_crd", SYNC_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == CRD_PATH.read_text(), "run tools/sync-schedule-crd.py"


def test_fields_defaults_and_bounds() -> None:
    spec = spec_schema()
    properties = spec["properties"]
    assert set(spec["required"]) == {"schedule", "exportTemplate"}
    assert properties["concurrencyPolicy"]["enum"] == ["Forbid", "Allow", "Replace"]
    assert properties["concurrencyPolicy"]["default"] == "Forbid"
    assert properties["suspend"] == {**properties["suspend"], "type": "boolean", "default": False}
    assert properties["startingDeadlineSeconds"]["minimum"] == 0
    assert "default" not in properties["startingDeadlineSeconds"]
    for limit, default in (("successfulExportsHistoryLimit", 3), ("failedExportsHistoryLimit", 1)):
        assert (properties[limit]["minimum"], properties[limit]["default"]) == (0, default)
    assert properties["exportTemplate"]["required"] == ["spec"]
    template_meta = properties["exportTemplate"]["properties"]["metadata"]["properties"]
    assert set(template_meta) == {"labels", "annotations"}
    for path, schema in walk(root_schema()):
        if "default" in schema:
            assert not validate(schema["default"], schema, path), path


def test_status() -> None:
    status = root_schema()["properties"]["status"]["properties"]
    assert set(status) == {
        "lastScheduleTime",
        "lastMissedTime",
        "lastSuccessfulTime",
        "lastFailedTime",
        "lastFailure",
        "nextScheduleTime",
        "active",
        "activeExports",
        "lastTriggerValue",
        "observedGeneration",
        "conditions",
        "kopf",
    }
    # Kopf keeps its own records here (handlers/lifecycle.py), never in metadata.
    assert status["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
    export_status = export_root_schema()["properties"]["status"]["properties"]
    assert without_descriptions(status["conditions"]) == without_descriptions(
        export_status["conditions"]
    )


def test_printer_columns() -> None:
    (version,) = load_crd()["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert [n for n, c in columns.items() if not c.get("priority")] == [
        "Schedule",
        "Suspend",
        "Active",
        "Last Schedule",
        "Next",
        "Status",
        "Age",
    ]
    properties = dict(named_properties(root_schema()))
    for name, column in columns.items():
        path = column["jsonPath"].lstrip(".")
        if path == "metadata.creationTimestamp":
            continue
        if path.startswith("status.conditions[?"):  # a condition's reason, by type
            assert column["type"] == "string" and path.endswith("].reason"), name
            continue
        assert path in properties, f"{name}: {path} is not in the schema"
        schema = properties[path]
        expected = "date" if schema.get("format") == "date-time" else schema["type"]
        # A future time as `date` prints <invalid>: Next is a string.
        assert column["type"] == ("string" if name == "Next" else expected), name


def test_cel_rules_have_messages_naming_their_field() -> None:
    for path, schema in walk(root_schema()):
        for rule in schema.get("x-kubernetes-validations", []):
            message = rule["message"]
            field = path.rsplit(".", 1)[-1] or "metadata.name"
            assert field in message or rule.get("fieldPath", "?")[1:] in message, message


# The cron rules, run here as the API server runs them.


def _schedule_rules() -> list[str]:
    rules = spec_schema()["properties"]["schedule"]["x-kubernetes-validations"]
    return [r["rule"] for r in rules]


@functools.cache
def field_patterns() -> list[re.Pattern[str]]:
    """The five per-field regular expressions of the schedule's CEL rules, in field order."""
    patterns = [re.findall(r'matches\("([^"]+)"\)', rule) for rule in _schedule_rules()]
    found = [re.compile(p[0]) for p in patterns if p]
    assert len(found) == 5
    return found


def accepted_by_crd(schedule: str) -> bool:
    """The schedule's CEL rules, in Python: macros, five fields, each item of each field."""
    if schedule.startswith("@"):
        return schedule in MACROS
    fields = [f for f in schedule.split(" ") if f]
    if len(fields) != 5:
        return False
    patterns = field_patterns()
    return all(
        all(pattern.search(item) for item in value.split(","))
        for pattern, value in zip(patterns, fields, strict=True)
    )


def test_the_cel_rules_cover_every_field_and_the_macros() -> None:
    macros = re.search(r"\[([^\]]+)\]", _schedule_rules()[0])
    assert macros is not None
    assert sorted(m.strip().strip('"') for m in macros.group(1).split(",")) == sorted(MACROS)


GOOD = [
    "0 2 * * *",
    "* * * * *",
    "*/15 * * * *",
    "0,30 8-18 * * 1-5",
    "5/10 0 1 1 *",
    "0 0 ? * SUN",
    "0 0 1 JAN-MAR ?",
    "0 0 * * mon,wed,FRI",
    "59 23 31 12 7",
    "0 0 29 2 *",
    "0  2 * * *",
    "00 02 01 01 0",
    *MACROS,
]
BAD = [
    "",
    "0 2 * *",
    "0 2 * * * *",
    "60 * * * *",
    "* 24 * * *",
    "* * 0 * *",
    "* * 32 * *",
    "* * * 0 *",
    "* * * 13 *",
    "* * * * 8",
    "*/0 * * * *",
    "? * * * *",
    "* * * ? *",
    "L * * * *",
    "0 0 L * *",
    "0 0 * * 5#3",
    "@every 1h",
    "@reboot",
    "@DAILY",
    "CRON_TZ=UTC 0 0 * * *",
    "TZ=Europe/Berlin 0 0 * * *",
    "0 2 * * MONDAY",
    "0 2 * * *\t",
]


@pytest.mark.parametrize("schedule", GOOD)
def test_cron_the_crd_accepts_cronsim_schedules(schedule: str) -> None:
    assert accepted_by_crd(schedule)
    Cron.parse(schedule, "Europe/Berlin")


@pytest.mark.parametrize("schedule", BAD)
def test_cron_the_crd_rejects(schedule: str) -> None:
    assert not accepted_by_crd(schedule)


@pytest.mark.parametrize("schedule", ["5-1 * * * *", "0 0 31 2 *", "0 0 30 2 ?"])
def test_cron_that_only_the_operator_can_refuse(schedule: str) -> None:
    """Well-formed fields, impossible schedule: reported as Stalled=True InvalidSchedule."""
    assert accepted_by_crd(schedule)
    with pytest.raises(InvalidSpec) as error:
        Cron.parse(schedule, None)
    assert error.value.reason == "InvalidSchedule"


def test_time_zone_pattern_accepts_every_iana_zone_and_no_path() -> None:
    schema = spec_schema()["properties"]["timeZone"]
    pattern = re.compile(schema["pattern"])
    zones = zoneinfo.available_timezones()
    assert len(zones) > 300
    for zone in zones:
        assert pattern.search(zone) and len(zone) <= schema["maxLength"], zone
    for bad in ["../etc/passwd", "/etc/localtime", "Europe/../x", "Europe/", "Europe Berlin", ""]:
        assert not pattern.search(bad), bad
    assert schema["x-kubernetes-validations"][0]["rule"] == 'self != "Local"'


def test_name_fits_its_exports_label() -> None:
    (rule,) = root_schema()["x-kubernetes-validations"]
    assert rule["rule"] == "size(self.metadata.name) <= 52"
    assert len(f"{'x' * 52}-{99_999_999}") <= 63


def test_example_conforms() -> None:
    example = load_example("pinpointexportschedule.yaml")
    assert (example["apiVersion"], example["kind"]) == (
        "pinpoint.exports.dev/v1alpha1",
        "PinpointExportSchedule",
    )
    assert "namespace" not in example["metadata"]
    assert validate(example, root_schema()) == []
    assert accepted_by_crd(example["spec"]["schedule"])
    Cron.parse(example["spec"]["schedule"], example["spec"]["timeZone"])
    template = example["spec"]["exportTemplate"]["spec"]
    assert template == {**load_example("pinpointexport.yaml")["spec"]}
    assert "pinpoint.exports.dev/trigger" in example["metadata"]["annotations"]
