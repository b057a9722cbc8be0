"""The emulator's HTTP server: Pinpoint's API and STS's AssumeRole, SigV4 scope check, faults.

One port serves both, as a client configured with AWS_ENDPOINT_URL_PINPOINT and
AWS_ENDPOINT_URL_STS reaches them: STS's form-encoded POSTs to `/` go to `sts`, the rest to
Pinpoint. Faults (Pinpoint's only) include answers lost after their call took effect: an error
in the answer's place, or the connection closed without one. The admin path's handlers are in
`admin_routes`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.emulator.admin_routes import AdminRoutes
from pinpoint_export_sandbox.emulator.export import PieceWriter, s3_client
from pinpoint_export_sandbox.emulator.faults import (
    GATEWAY_STATUSES,
    FaultInjector,
    Faults,
    LostAnswer,
)
from pinpoint_export_sandbox.emulator.jobs import JobRunner, Timing
from pinpoint_export_sandbox.emulator.model import (
    ApiError,
    Protocol,
    WireResponse,
    gateway_error,
    service_model,
    unmodeled_error,
)
from pinpoint_export_sandbox.emulator.query import FORM
from pinpoint_export_sandbox.emulator.signing import Unsigned, signer
from pinpoint_export_sandbox.emulator.state import Pinpoint
from pinpoint_export_sandbox.emulator.sts import IssuedKeys, SecurityTokenService

if TYPE_CHECKING:
    from pinpoint_export_sandbox.s3server import S3Credentials

log = logging.getLogger(__name__)
SIGNING_NAME: str = service_model().signing_name
MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class EmulatorConfig:
    timing: Timing = field(default_factory=Timing)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    export_workers: int = 4
    # The keys AssumeRole hands out; None: the S3 server's, when the emulator knows them
    # (`serve`), else fresh ones with a session token (see `sts`).
    sts_keys: IssuedKeys | None = None


# AWS's front door, in Pinpoint's (rest-json) words.
_REFUSALS = {
    "missing": (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    "incomplete": (
        403,
        "IncompleteSignatureException",
        "Authorization header requires 'Credential', 'Signature', 'SignedHeaders' and "
        "'X-Amz-Date'.",
    ),
    "scope": (
        403,
        "InvalidSignatureException",
        f"Credential should be scoped to correct service: '{SIGNING_NAME}'. ",
    ),
}


def check_signature(headers: Mapping[str, str], query: Mapping[str, str]) -> WireResponse | None:
    """Refuse what AWS's front door refuses: no SigV4, or SigV4 scoped to another service.

    The signature itself is not verified, so any credentials work.
    """
    signed = signer(headers, query, SIGNING_NAME)
    return unmodeled_error(*_REFUSALS[signed.kind]) if isinstance(signed, Unsigned) else None


def is_sts(method: str, path: str, content_type: str) -> bool:
    """STS's requests are form-encoded POSTs to `/`; no Pinpoint operation is."""
    return method == "POST" and path == "/" and content_type == FORM


class EmulatorService:
    """One emulated Pinpoint: state, faults, counters, export jobs, and the HTTP handlers."""

    def __init__(
        self, config: EmulatorConfig, writer: PieceWriter, sts: SecurityTokenService | None = None
    ) -> None:
        self.config = config
        self.protocol = Protocol()
        self.sts = sts or SecurityTokenService(config.sts_keys)
        self.faults = FaultInjector()
        self.counters: collections.Counter[str] = collections.Counter()
        self.runner = JobRunner(writer, self.faults, config.timing, config.export_workers)
        self.pinpoint = self._new_state()

    def _new_state(self) -> Pinpoint:
        return Pinpoint(
            self.config.region,
            self.config.account_id,
            on_export=self.runner.start,
            listing_page_limit=self.faults.listing_page_limit,
        )

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        AdminRoutes(self).add_to(app)
        app.router.add_route("*", "/{tail:.*}", self.handler)

        async def close(_: web.Application) -> None:
            await self.runner.close()

        app.on_cleanup.append(close)
        return app

    async def reset(self, *, state: bool, faults: bool, counters: bool) -> None:
        if state:
            await self.runner.cancel()
            self.pinpoint = self._new_state()
        if faults:
            await self.faults.configure(Faults())
        if counters:
            self.counters.clear()
            self.sts.reset()

    async def handler(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        if is_sts(request.method, request.path, request.content_type):
            signed = signer(request.headers, request.query, self.sts.signing_name)
            wire: WireResponse | None = self.sts.handle(signed, await request.read(), request_id)
        else:
            wire = await self._serve(request, request_id)
        elapsed_ms = (time.monotonic() - started) * 1000
        if wire is None:
            log.debug("%s %s -> dropped (%.1f ms)", request.method, request.rel_url, elapsed_ms)
            return _hang_up(request)
        log.debug("%s %s -> %d (%.1f ms)", request.method, request.rel_url, wire.status, elapsed_ms)
        headers = {**wire.headers, "x-amzn-RequestId": request_id}
        return web.Response(status=wire.status, headers=headers, body=wire.body)

    async def _serve(self, request: web.Request, request_id: str) -> WireResponse | None:
        """The answer to a Pinpoint call, or None to hang up: it took effect, its answer is lost."""
        refusal = check_signature(request.headers, request.query)
        if refusal is not None:
            return refusal
        try:
            operation, labels = self.protocol.route(request.method, request.rel_url.raw_path)
            name = operation.name
            self.counters[name] += 1
            # Received whole before any delay: what follows happens even if the client hangs
            # up meanwhile, as in a slow service.
            body = await request.read()
            await self.faults.before(name)
            query = {k: request.query.getall(k) for k in set(request.query)}
            params = self.protocol.parse(operation, labels, query, request.headers, body)
            output = self.pinpoint.handler(name)(params, request_id)
            answer = self.protocol.serialize(operation, output)
            lost = self.faults.take_lost_answer(name)
            return answer if lost is None else self._lose(name, lost, request_id)
        except ApiError as error:
            return self.protocol.error(error, request_id)
        except web.HTTPRequestEntityTooLarge:
            too_large = ApiError("PayloadTooLargeException", "Request body too large")
            return self.protocol.error(too_large, request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            internal = ApiError("InternalServerErrorException", "Internal server error")
            return self.protocol.error(internal, request_id)

    def _lose(self, operation: str, lost: LostAnswer, request_id: str) -> WireResponse | None:
        log.info(
            "%s %s took effect; its answer is lost (%s)",
            operation,
            request_id,
            lost.error_code or "connection dropped",
        )
        if lost.error_code is None:
            return None
        if lost.error_code in GATEWAY_STATUSES:
            return gateway_error(int(lost.error_code))
        message = "Injected by the Pinpoint emulator after the call took effect"
        return self.protocol.error(ApiError(lost.error_code, message), request_id)


def _hang_up(request: web.Request) -> web.Response:
    """Close the connection without answering, as a failing network or load balancer does.

    aiohttp cannot write the response returned on a closed connection, so it lets the connection
    go quietly as if the client had left.
    """
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


async def serve(
    config: EmulatorConfig,
    s3: S3Credentials | None,
    sock: socket.socket,
    stop: asyncio.Event,
    listening: Callable[[], None] = lambda: None,
) -> None:
    """Serve on a bound socket until `stop` is set; `listening` is called once it serves."""
    writer = PieceWriter(s3_client(s3, config.export_workers))
    keys = config.sts_keys or (IssuedKeys(s3.access_key, s3.secret_key) if s3 else None)
    service = EmulatorService(config, writer, SecurityTokenService(keys))
    runner = web.AppRunner(service.web_app(), access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        host, port = sock.getsockname()[:2]
        log.info("Pinpoint emulator listening on http://%s:%d", host, port)
        listening()
        await stop.wait()
    finally:
        await runner.cleanup()


def bind(host: str, port: int) -> socket.socket:
    return socket.create_server((host, port))


class Emulator:
    """The emulator in a background thread with its own event loop, for tests and benchmarks.

    with Emulator(s3) as emulator:
        boto3.client("pinpoint", endpoint_url=emulator.url, ...)
    """

    def __init__(
        self,
        s3: S3Credentials | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: EmulatorConfig | None = None,
    ) -> None:
        self.s3 = s3
        self.config = config or EmulatorConfig()
        self._sock = bind(host, port)
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def admin(self) -> EmulatorAdmin:
        return EmulatorAdmin(self.url)

    def env(self) -> dict[str, str]:
        """botocore's own variables, so unmodified boto3 `pinpoint` and `sts` clients reach it."""
        return {"AWS_ENDPOINT_URL_PINPOINT": self.url, "AWS_ENDPOINT_URL_STS": self.url}

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self._main, name="pinpoint-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError("Pinpoint emulator failed to start") from self._error
        return self

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.config, self.s3, self._sock, self._stop, self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
            self._ready.set()
            log.exception("Pinpoint emulator stopped")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
        self._sock.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
