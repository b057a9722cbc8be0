"""The Secrets' keys: read once per TTL and shared, failures not kept, rotation seen."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pinpoint_export_operator.exports.credentials import SecretKeys
from pinpoint_export_operator.exports.kube import CredentialsError
from pinpoint_export_operator.runtime.aws import StaticCredentials
from pinpoint_export_operator.runtime.errors import CloudError


class Secrets:
    """A stand-in for Kube.read_credentials: counts reads; `version` is the Secret's."""

    def __init__(self) -> None:
        self.reads = 0
        self.version = 1
        self.missing = False
        self.release = threading.Event()
        self.release.set()

    def read(self, namespace: str, name: str) -> StaticCredentials:
        self.release.wait(5)
        self.reads += 1
        if self.missing:
            raise CredentialsError(CloudError("CredentialsSecretNotFound", "gone", transient=True))
        return StaticCredentials("AKIA", "secret", source=f"{namespace}/{name}@{self.version}")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_one_read_per_ttl_shared_by_concurrent_callers() -> None:
    secrets, clock = Secrets(), Clock()
    keys = SecretKeys(secrets.read, ttl=30, clock=clock)
    secrets.release.clear()
    waiting = [asyncio.ensure_future(keys.get("ns", "keys")) for _ in range(50)]
    await asyncio.sleep(0.05)
    secrets.release.set()
    got = await asyncio.gather(*waiting)
    assert secrets.reads == 1
    assert {k.source for k in got} == {"ns/keys@1"}
    clock.now += 29
    await keys.get("ns", "keys")
    assert secrets.reads == 1
    clock.now += 1
    secrets.version = 2
    assert (await keys.get("ns", "keys")).source == "ns/keys@2"
    assert secrets.reads == 2
    await keys.get("ns", "other")
    assert secrets.reads == 3  # each Secret its own


async def test_a_failed_read_is_not_kept() -> None:
    secrets = Secrets()
    keys = SecretKeys(secrets.read, ttl=30, clock=Clock())
    secrets.missing = True
    with pytest.raises(CredentialsError):
        await keys.get("ns", "keys")
    secrets.missing = False
    assert (await keys.get("ns", "keys")).source == "ns/keys@1"
    assert secrets.reads == 2


async def test_rotated_reads_afresh_and_compares_with_the_keys_used() -> None:
    secrets = Secrets()
    keys = SecretKeys(secrets.read, ttl=30, clock=Clock())
    used = await keys.get("ns", "keys")
    assert not await keys.rotated("ns", "keys", used)
    secrets.version = 2
    assert await keys.rotated("ns", "keys", used)
    assert (await keys.get("ns", "keys")).source == "ns/keys@2"  # the fresh read is kept
    assert secrets.reads == 3
