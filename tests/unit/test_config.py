"""The operator's tenancy and copy pod settings: flags or environment, checked at start-up."""

from __future__ import annotations

import argparse

import pytest

from pinpoint_export_operator.config import (
    AssumeRoleSettings,
    OperatorConfig,
    RoleRule,
    add_arguments,
    config_from_args,
    parse_role_rules,
)

TENANCY_ENV = (
    "PPE_ALLOWED_ROLES",
    "PPE_SESSION_TAGS",
    "AWS_ENDPOINT_URL_STS",
    "PPE_COPY_IMAGE_PULL_SECRETS",
    "PPE_COPY_POD_LABELS",
    "PPE_COPY_POD_ANNOTATIONS",
    "PPE_COPY_PRIORITY_CLASS_NAME",
    "PPE_COPY_AFFINITY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TENANCY_ENV:
        monkeypatch.delenv(name, raising=False)


def configure(*argv: str) -> OperatorConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_by_default_nothing_is_restricted_or_shaped() -> None:
    defaults = configure().defaults
    assert defaults.allowed_roles == ()
    assert defaults.assume_role == AssumeRoleSettings(session_tags=False, sts_endpoint_url=None)
    copier = defaults.copier
    assert copier.image_pull_secrets == () and copier.priority_class_name is None
    assert copier.pod_labels == {} and copier.pod_annotations == {} and copier.affinity == {}


def test_role_rules_are_separated_by_spaces_or_newlines() -> None:
    text = """team-a=arn:aws:iam::111111111111:role/team-a-*
              team-*=arn:aws:iam::111111111111:role/a,b=c   other=*"""
    assert parse_role_rules(text) == (
        RoleRule("team-a", "arn:aws:iam::111111111111:role/team-a-*"),
        RoleRule("team-*", "arn:aws:iam::111111111111:role/a,b=c"),  # commas are IAM's
        RoleRule("other", "*"),
    )


@pytest.mark.parametrize(
    "text",
    [
        "team-a",
        "=arn:aws:iam::1:role/x",
        "team-a=",
        "Team_A=arn:aws:iam::1:role/x",
        "team-a=role/x",
        "team-a=arn:aws:iam::1:role/x,team-b=arn:aws:iam::1:role/y",  # commas: two rules in one
    ],
)
def test_malformed_role_rules_stop_the_operator(text: str) -> None:
    with pytest.raises(SystemExit):
        configure(f"--allowed-roles={text}")


def test_every_setting_comes_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PPE_ALLOWED_ROLES", "team-a=arn:aws:iam::1:role/*")
    monkeypatch.setenv("PPE_SESSION_TAGS", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566")
    monkeypatch.setenv("PPE_COPY_IMAGE_PULL_SECRETS", "regcred, mirror")
    monkeypatch.setenv("PPE_COPY_POD_LABELS", '{"team": "data"}')
    monkeypatch.setenv("PPE_COPY_POD_ANNOTATIONS", '{"sidecar.istio.io/inject": "false"}')
    monkeypatch.setenv("PPE_COPY_PRIORITY_CLASS_NAME", "batch-low")
    monkeypatch.setenv("PPE_COPY_AFFINITY", '{"podAntiAffinity": {}}')
    defaults = configure().defaults
    assert defaults.allowed_roles == (RoleRule("team-a", "arn:aws:iam::1:role/*"),)
    assert defaults.assume_role == AssumeRoleSettings(True, "http://127.0.0.1:4566")
    copier = defaults.copier
    assert copier.assume_role == defaults.assume_role
    assert copier.image_pull_secrets == ("regcred", "mirror")
    assert copier.pod_labels == {"team": "data"}
    assert copier.pod_annotations == {"sidecar.istio.io/inject": "false"}
    assert copier.priority_class_name == "batch-low"
    assert copier.affinity == {"podAntiAffinity": {}}


@pytest.mark.parametrize(
    "argument",
    [
        "--session-tags=yes",
        "--copy-image-pull-secrets=Not_A_Name",
        "--copy-priority-class-name=a,b",
        "--copy-pod-labels=team=data",  # not JSON
        '--copy-pod-labels=["team"]',
        '--copy-pod-labels={"team": 1}',
        '--copy-pod-labels={"bad key!": "x"}',
        '--copy-pod-labels={"team": "not a label value"}',
        '--copy-pod-labels={"app.kubernetes.io/managed-by": "me"}',  # the operator's own
        '--copy-pod-labels={"pinpoint.exports.dev/export": "x"}',
        '--copy-pod-labels={"batch.kubernetes.io/job-name": "x"}',  # the Job controller's
        '--copy-pod-annotations={"a/b/c": "x"}',
        '--copy-affinity={"nodeSelector": {}}',
    ],
)
def test_unusable_copy_pod_settings_stop_the_operator(argument: str) -> None:
    with pytest.raises(SystemExit):
        configure(argument)
