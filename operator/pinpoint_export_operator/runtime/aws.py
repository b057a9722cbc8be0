"""boto3 clients for each export's identity, and blocking AWS calls kept off the event loop.

Every call runs in a bounded thread pool behind a semaphore, so a thousand exports neither
starve the event loop nor open a thousand connections. `session_for` is how both the operator
and the copier become an identity, AssumeRole (session name, ExternalId, tags) included.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import botocore.loaders
import botocore.utils
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    DeferredRefreshableCredentials,
)

from pinpoint_export_operator.runtime.errors import CloudError, bounded, is_transient_status
from pinpoint_export_operator.runtime.metrics import POOL_WAIT
from pinpoint_export_operator.runtime.places import Places

T = TypeVar("T")
SESSION_NAME = "pinpoint-export-operator"  # of an AssumeRole that names no session
# botocore's "standard" retry mode already backs off with jitter on throttling and 5xx; two
# attempts keep a poll short, and the reconciler's own backoff covers longer trouble.
# `total_max_attempts` counts the first attempt; botocore's `max_attempts` would not (it is
# the number of retries: 2 meant three attempts).
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
# How long one attempt of a call lasts at most: a claim on a create must outlive that much.
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2},
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
)
# For calls that create: one attempt. An SDK retry after a lost answer would create twice;
# the reconciler retries instead, after looking for what the first attempt made.
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})

_TRANSIENT_CODES = {
    "TooManyRequestsException": "Throttled",
    "ThrottlingException": "Throttled",
    "Throttling": "Throttled",
    "RequestLimitExceeded": "Throttled",
    "InternalServerErrorException": "ServiceUnavailable",
    "ServiceUnavailable": "ServiceUnavailable",
    "ServiceUnavailableException": "ServiceUnavailable",
}
_TERMINAL_CODES = {
    "NotFoundException": "NotFound",
    "ForbiddenException": "AccessDenied",
    "AccessDenied": "AccessDenied",
    "AccessDeniedException": "AccessDenied",
    "UnrecognizedClientException": "AccessDenied",
    "InvalidClientTokenId": "AccessDenied",
    "ExpiredTokenException": "AccessDenied",
    "BadRequestException": "InvalidRequest",
    "PayloadTooLargeException": "InvalidRequest",
    "MethodNotAllowedException": "InvalidRequest",
    "ConflictException": "InvalidRequest",
}


def classify(error: Exception, operation: str) -> CloudError:
    """Which failures a retry can fix (throttling, 5xx, network) and which it cannot.

    Never raises: whatever the SDK or the network throws becomes a reason and a bounded
    message, so a failure always shows in status. `ambiguous` marks the failures after which
    the call may have taken effect (the answer was lost, not the request): a create that
    fails so must look for what it may have created before creating again. Messages carry
    the error's type and the service's own words, never the repr of a value."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message") or str(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        text = bounded(f"{operation}: {code}: {message}")
        if code in _TRANSIENT_CODES:
            ambiguous = _TRANSIENT_CODES[code] != "Throttled"
            return CloudError(_TRANSIENT_CODES[code], text, transient=True, ambiguous=ambiguous)
        if code in _TERMINAL_CODES:
            return CloudError(_TERMINAL_CODES[code], text, transient=False)
        if is_transient_status(status):
            return CloudError(
                "ServiceUnavailable",
                text,
                transient=True,
                ambiguous=status != 429,
                unfinished=status == 504,  # the gateway gave up waiting, not the service
            )
        return CloudError("UnexpectedResponse", text, transient=False)
    if isinstance(error, botocore.exceptions.ConnectionError):
        # Never connected (refused, DNS, TLS handshake, proxy): nothing was sent.
        return CloudError("EndpointUnreachable", bounded(f"{operation}: {error}"), transient=True)
    if isinstance(error, botocore.exceptions.HTTPClientError):
        # Sent, then the connection dropped or timed out: the call may have acted.
        text = bounded(f"{operation}: no answer ({type(error).__name__})")
        return CloudError(
            "EndpointUnreachable", text, transient=True, ambiguous=True, unfinished=True
        )
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        message = f"{operation}: no AWS credentials: set spec.credentials or an operator identity"
        return CloudError("NoCredentials", message, transient=False)
    if isinstance(error, botocore.exceptions.NoRegionError):
        message = f"{operation}: no AWS region: set spec.region or the operator's --region"
        return CloudError("NoRegion", message, transient=False)
    if isinstance(error, botocore.exceptions.ParamValidationError):
        return CloudError("InvalidSpec", bounded(f"{operation}: {error}"), transient=False)
    if isinstance(error, KeyError | TypeError | ValueError):
        text = f"{operation}: unexpected response ({type(error).__name__})"
        return CloudError("UnexpectedResponse", text, transient=False)
    # Anything else (a bug, a library's own error): retried, shown, and never silent.
    text = f"{operation}: unexpected {type(error).__module__}.{type(error).__name__}"
    return CloudError("UnexpectedError", text, transient=True, ambiguous=True)


def endpoint_refusal(field: str, url: str | None) -> str | None:
    """Why botocore would refuse `url` as an endpoint (a host it rejects, a port out of range),
    naming `field`; None if it would take it. The CRD's pattern refuses most such URLs; this
    check, made before Pinpoint runs, covers the rest (bracketed text that is no IPv6 address,
    a host over 255 characters) for the copy Job, which would meet them only afterwards."""
    if not url:
        return None
    try:
        _ = urlsplit(url).port  # raises on a port out of range, or brackets around no IP
    except ValueError as error:
        return f"{field} {url!r}: {error}"
    if botocore.utils.is_valid_endpoint_url(url) or botocore.utils.is_valid_ipv6_endpoint_url(url):
        return None
    return f"{field} {url!r} is not a valid endpoint URL: its host is not a DNS name or IP address"


@dataclass(frozen=True)
class StaticCredentials:
    """Keys read from the export's Secret; `repr` never shows them."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    source: str = ""  # namespace/name@resourceVersion, to tell versions apart in the cache


@dataclass(frozen=True)
class AssumeRole:
    """A role to assume through STS, and how its session shows in CloudTrail."""

    role_arn: str
    session_name: str = SESSION_NAME
    external_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # (key, value): session tags need sts:TagSession
    sts_endpoint_url: str | None = None  # None: botocore's (AWS_ENDPOINT_URL_STS, else AWS)

    def arguments(self) -> dict[str, Any]:
        """AssumeRole's parameters besides RoleArn."""
        arguments: dict[str, Any] = {"RoleSessionName": self.session_name}
        if self.external_id:
            arguments["ExternalId"] = self.external_id
        if self.tags:
            arguments["Tags"] = [{"Key": key, "Value": value} for key, value in self.tags]
        return arguments


@dataclass(frozen=True)
class Identity:
    """Where an export's calls go and as whom."""

    region: str | None
    endpoint_url: str | None
    credentials: StaticCredentials | None = None
    assume_role: AssumeRole | None = None


# Identities in use at once, roughly; beyond that the least recently used client goes (the
# one of a Secret since rotated, say), so the cache never grows with the operator's age.
MAX_CLIENTS = 64


class AwsCalls:
    """Runs blocking boto3 calls in a bounded pool; caches one session per identity and one
    client per service, identity and retry mode."""

    def __init__(self, concurrency: int) -> None:
        self._places = Places(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="aws")
        self._wait = POOL_WAIT.labels("aws")
        # A connection per worker thread, or urllib3 discards and reopens them under load.
        self._config = CLIENT_CONFIG.merge(Config(max_pool_connections=concurrency))
        # One loader for every session: the service model is parsed once (~9 MB for
        # Pinpoint) rather than once per identity.
        self._loader = botocore.loaders.create_loader()
        self._clients: dict[tuple[str, Identity, bool], Any] = {}  # least recently used first
        # One session per identity: its clients (with and without retries) share credentials,
        # so an assumed role is assumed once, not once per client.
        self._sessions: dict[Identity, boto3.session.Session] = {}
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a thread of the pool, once a slot is free."""
        async with self.slot():
            return await self.call(fn, *args, **kwargs)

    @asynccontextmanager
    async def slot(self, urgent: bool = False) -> AsyncIterator[None]:
        """One of the `concurrency` places for calls, held across awaits: for work that must
        directly precede a call (see `call`), so that it does not queue again after it.
        `urgent` (polls): before the other waiters."""
        queued = time.monotonic()
        async with self._places.hold(urgent):
            # Calls queue here, never in the pool, whose threads are as many.
            self._wait.observe(time.monotonic() - queued)
            yield

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a thread of the pool; only within `slot()`, which keeps
        a thread free for it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def client(self, service: str, identity: Identity, *, retries: bool = True) -> Any:
        """A client per (service, identity): creating one costs tens of milliseconds.
        `retries=False` for calls that create something (see NO_RETRY)."""
        with self._lock:
            return _recent(
                self._clients,
                (service, identity, retries),
                lambda _: self._new_client(service, identity, retries),
            )

    def _new_client(self, service: str, identity: Identity, retries: bool) -> Any:
        session = _recent(self._sessions, identity, lambda _: session_for(identity, self._loader))
        return session.client(
            service,  # type: ignore[call-overload]
            region_name=identity.region,
            endpoint_url=identity.endpoint_url,
            config=self._config if retries else self._config.merge(NO_RETRY),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


K = TypeVar("K")
V = TypeVar("V")


def _recent(cache: dict[K, V], key: K, make: Callable[[K], V]) -> V:
    """`cache[key]` (made if missing), now the most recently used; the least recently used
    entries beyond MAX_CLIENTS are dropped. The caller holds the lock."""
    value = cache.pop(key) if key in cache else make(key)
    cache[key] = value
    while len(cache) > MAX_CLIENTS:
        del cache[next(iter(cache))]
    return value


def session_for(
    identity: Identity, loader: botocore.loaders.Loader | None = None
) -> boto3.session.Session:
    """A boto3 session as `identity`: its keys or the default chain, then the role it assumes;
    with `loader`, service models come from (and stay in) that shared cache."""
    creds = identity.credentials
    if creds is not None:
        session = boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            region_name=identity.region,
        )
    else:
        session = boto3.session.Session(region_name=identity.region)
    if loader is not None:
        session._session.register_component("data_loader", loader)
    role = identity.assume_role
    if role is not None:
        # Cross-account: assume the role with the identity above, refreshed before expiry.
        create_client = session._session.create_client
        if role.sts_endpoint_url:
            create_client = partial(create_client, endpoint_url=role.sts_endpoint_url)
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=create_client,
            source_credentials=session._session.get_credentials(),
            role_arn=role.role_arn,
            extra_args=role.arguments(),
        )
        # botocore has no public setter for refreshable credentials; this is its own idiom.
        session._session._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
            refresh_using=fetcher.fetch_credentials, method="assume-role"
        )
    return session
