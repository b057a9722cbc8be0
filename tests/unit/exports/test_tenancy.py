"""Tenancy: which roles a namespace may name, and how an export's AssumeRole shows in AWS."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from pinpoint_export_operator.config import AssumeRoleSettings, ExportDefaults, RoleRule
from pinpoint_export_operator.exports import tenancy
from pinpoint_export_operator.exports.reconciler import ExportReconciler, _Run
from pinpoint_export_operator.exports.steps import EnsureCopyJob, PollExportJob
from pinpoint_export_operator.runtime.aws import AwsCalls
from pinpoint_export_operator.runtime.errors import MAX_MESSAGE
from pinpoint_export_operator.runtime.wakeups import Wakeups

from .test_state import make_export

EXPORT_ROLE = "arn:aws:iam::111111111111:role/team-a-export"
READER = "arn:aws:iam::222222222222:role/team-a-reader"
TEAM_A = (RoleRule("team-a", "arn:aws:iam::111111111111:role/team-a-*"),)
SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)  # AssumeRole's RoleSessionName


def spec(role: str = EXPORT_ROLE, assume: str | None = None, **more: Any) -> dict[str, Any]:
    credentials = {"credentials": {"assumeRoleArn": assume}} if assume else {}
    return {"roleArn": role, **credentials, **more}


@pytest.mark.parametrize(
    ("pattern", "value", "matched"),
    [
        ("arn:aws:iam::1:role/team-a-*", "arn:aws:iam::1:role/team-a-export", True),
        ("arn:aws:iam::1:role/team-a-*", "arn:aws:iam::1:role/team-a-", True),
        ("arn:aws:iam::1:role/team-a-*", "arn:aws:iam::1:role/team-b-export", False),
        ("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/path/x", False),  # `*` spans `:` only
        ("arn:aws:iam::*:role/*", "arn:aws:iam::1:role/path/x", True),  # … and `/` too
        ("arn:aws:iam::1:role/a.b", "arn:aws:iam::1:role/aXb", False),  # `.` is literal
        ("arn:aws:iam::1:role/a?", "arn:aws:iam::1:role/ab", False),  # so is `?`
        ("team-*", "team-a", True),
        ("team-a", "team-ab", False),
        ("*", "", True),
    ],
)
def test_star_is_the_only_wildcard(pattern: str, value: str, matched: bool) -> None:
    assert tenancy.matches(pattern, value) is matched


def test_without_rules_every_role_is_allowed() -> None:
    assert tenancy.role_refusal("anyone", spec(assume=READER), ()) is None


def test_a_namespace_without_a_rule_may_name_no_role() -> None:
    refusal = tenancy.role_refusal("team-b", spec(), TEAM_A)
    assert refusal is not None
    assert refusal.startswith(f"spec.roleArn '{EXPORT_ROLE}' is not allowed in namespace 'team-b'")
    assert "--allowed-roles has no rule for it" in refusal


def test_the_assumed_role_is_checked_first_and_named_with_the_rule() -> None:
    refusal = tenancy.role_refusal("team-a", spec(assume=READER), TEAM_A)
    assert refusal is not None
    assert refusal.startswith(f"spec.credentials.assumeRoleArn '{READER}'")
    assert "allows only arn:aws:iam::111111111111:role/team-a-*" in refusal


def test_both_roles_inside_the_namespace_rules_are_allowed() -> None:
    rules = (*TEAM_A, RoleRule("team-a", READER), RoleRule("other", "*"))
    assert tenancy.role_refusal("team-a", spec(assume=READER), rules) is None
    # One list of patterns for both fields: READER may be passed to Pinpoint as well.
    assert tenancy.role_refusal("team-a", spec(role=READER), rules) is None
    assert tenancy.role_refusal("other", spec(assume=READER), rules) is None


def test_namespace_patterns_and_several_rules_per_namespace() -> None:
    rules = (RoleRule("team-*", "arn:aws:iam::111111111111:role/shared"), *TEAM_A)
    assert (
        tenancy.role_refusal("team-z", spec(role="arn:aws:iam::111111111111:role/shared"), rules)
        is None
    )
    assert tenancy.role_refusal("team-a", spec(), rules) is None
    assert tenancy.role_refusal("team-z", spec(), rules) is not None


def test_the_message_is_bounded() -> None:
    long_role = "arn:aws:iam::111111111111:role/" + "p/" * 490 + "x"
    refusal = tenancy.role_refusal("team-b", spec(role=long_role), TEAM_A * 20)
    assert refusal is not None and len(refusal) <= MAX_MESSAGE


def test_session_name_carries_namespace_and_name() -> None:
    assert tenancy.session_name("team-a", "nightly-29145000") == "team-a.nightly-29145000"


def test_a_long_session_name_is_cut_with_a_hash_within_awss_limits() -> None:
    namespace, name = "n" * 63, "export.with.dots-" + "x" * 46
    cut = tenancy.session_name(namespace, name)
    assert len(cut) == 64 and SESSION_NAME.fullmatch(cut)
    assert cut.startswith("n" * 55)
    assert cut == tenancy.session_name(namespace, name)  # deterministic
    assert cut != tenancy.session_name(namespace, name[:-1] + "y")  # differs where cut off
    exact = tenancy.session_name("a" * 30, "b" * 33)  # 64 characters: kept whole
    assert exact == f"{'a' * 30}.{'b' * 33}"


def test_assume_role_carries_session_name_external_id_and_optional_tags() -> None:
    export = make_export(credentials={"assumeRoleArn": READER, "externalId": "tenant:42"})
    plain = tenancy.assume_role(export, AssumeRoleSettings())
    assert plain is not None
    assert (plain.role_arn, plain.session_name, plain.external_id, plain.tags) == (
        READER,
        "marketing.nightly",
        "tenant:42",
        (),
    )
    tagged = tenancy.assume_role(
        export, AssumeRoleSettings(session_tags=True, sts_endpoint_url="http://sts.local")
    )
    assert tagged is not None
    assert dict(tagged.tags) == {
        "pinpoint-export-namespace": "marketing",
        "pinpoint-export-name": "nightly",
    }
    assert tagged.sts_endpoint_url == "http://sts.local"
    assert tagged.arguments() == {
        "RoleSessionName": "marketing.nightly",
        "ExternalId": "tenant:42",
        "Tags": [
            {"Key": "pinpoint-export-namespace", "Value": "marketing"},
            {"Key": "pinpoint-export-name", "Value": "nightly"},
        ],
    }
    assert tenancy.assume_role(make_export(), AssumeRoleSettings(session_tags=True)) is None


class NoKube:
    """The preflight must refuse before it asks Kubernetes (or AWS) anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Kubernetes called: {name}")


def reconciler(rules: tuple[RoleRule, ...]) -> ExportReconciler:
    defaults = ExportDefaults(allowed_roles=rules)
    return ExportReconciler(NoKube(), AwsCalls(1), defaults, Wakeups())  # type: ignore[arg-type]


def test_the_preflight_refuses_a_role_outside_the_mapping_as_terminal() -> None:
    export = make_export(credentials={"assumeRoleArn": READER})
    refused = asyncio.run(reconciler(TEAM_A)._preflight(export))
    assert refused is not None
    assert (refused.reason, refused.transient) == ("RoleNotAllowed", False)
    assert "spec.credentials.assumeRoleArn" in refused.message


@pytest.mark.parametrize("field", ["endpointUrl", "s3EndpointUrl"])
def test_the_preflight_refuses_an_endpoint_botocore_would_refuse_as_terminal(field: str) -> None:
    """s3EndpointUrl is used only by the copy Job: refused later, it would cost a Pinpoint run."""
    export = make_export(**{field: "http://[:::]:9000"})
    refused = asyncio.run(reconciler(())._preflight(export))
    assert refused is not None
    assert (refused.reason, refused.transient) == ("InvalidSpec", False)
    assert refused.message.startswith(f"spec.{field} 'http://[:::]:9000'")


@pytest.mark.parametrize("action", [PollExportJob("job-1"), EnsureCopyJob(5)])
def test_later_steps_refuse_too_when_the_mapping_narrowed(action: Any) -> None:
    """An export begun under a wider mapping polls and copies no more once it is narrowed."""
    run = _Run(make_export(), {}, {}, resource_version="1")
    refused = asyncio.run(reconciler(TEAM_A)._perform(run, action))
    assert getattr(refused, "reason", None) == "RoleNotAllowed"
