"""`session_for` assumes roles as STS records them: the project's emulator serves STS here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pinpoint_export_operator.runtime.aws import (
    SESSION_NAME,
    AssumeRole,
    AwsCalls,
    Identity,
    StaticCredentials,
    session_for,
)
from pinpoint_export_sandbox.emulator import Emulator

ROLE = "arn:aws:iam::210987654321:role/tenant-exporter"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def base(emulator: Emulator, role: AssumeRole) -> Identity:
    return Identity("us-east-1", emulator.url, StaticCredentials("AKIAOPERATORBASE", "s"), role)


def test_the_pinpoint_calls_go_through_assume_role_with_name_id_and_tags(
    emulator: Emulator,
) -> None:
    emulator.admin.reset()
    app = emulator.admin.create_app()
    role = AssumeRole(
        ROLE,
        session_name="team-a.nightly",
        external_id="tenant:42",
        tags=(("pinpoint-export-namespace", "team-a"), ("pinpoint-export-name", "nightly")),
        sts_endpoint_url=emulator.url,
    )
    client = AwsCalls(1).client("pinpoint", base(emulator, role))
    client.get_export_jobs(ApplicationId=app)
    client.get_export_jobs(ApplicationId=app)  # the assumed credentials are reused
    (call,) = emulator.admin.sts_calls()
    assert call["RoleArn"] == ROLE
    assert call["RoleSessionName"] == "team-a.nightly"
    assert call["ExternalId"] == "tenant:42"
    assert call["Tags"] == [
        {"Key": "pinpoint-export-namespace", "Value": "team-a"},
        {"Key": "pinpoint-export-name", "Value": "nightly"},
    ]
    assert call["CallerAccessKeyId"] == "AKIAOPERATORBASE"  # assumed from the base identity
    credentials = client._request_signer._credentials.get_frozen_credentials()
    assert credentials.access_key.startswith("ASIA") and credentials.token


def test_a_plain_assume_role_sends_the_default_session_name_only(emulator: Emulator) -> None:
    emulator.admin.reset()
    session = session_for(base(emulator, AssumeRole(ROLE, sts_endpoint_url=emulator.url)))
    session.client("pinpoint", endpoint_url=emulator.url).get_apps()
    (call,) = emulator.admin.sts_calls()
    assert (call["RoleSessionName"], call["ExternalId"], call["Tags"]) == (SESSION_NAME, None, [])


def test_identities_differing_only_in_the_assumed_session_get_their_own_client() -> None:
    calls = AwsCalls(2)
    one = Identity("us-east-1", "http://127.0.0.1:9", None, AssumeRole(ROLE, "ns.a"))
    other = Identity("us-east-1", "http://127.0.0.1:9", None, AssumeRole(ROLE, "ns.b"))
    assert calls.client("pinpoint", one) is calls.client("pinpoint", one)
    assert calls.client("pinpoint", one) is not calls.client("pinpoint", other)


def test_the_clients_of_one_identity_assume_its_role_once(emulator: Emulator) -> None:
    """The create client (no SDK retries) shares the polling client's session."""
    emulator.admin.reset()
    app = emulator.admin.create_app()
    identity = base(emulator, AssumeRole(ROLE, sts_endpoint_url=emulator.url))
    calls = AwsCalls(2)
    calls.client("pinpoint", identity).get_export_jobs(ApplicationId=app)
    calls.client("pinpoint", identity, retries=False).get_export_jobs(ApplicationId=app)
    assert len(emulator.admin.sts_calls()) == 1
