"""The server side of the admin path (`/_emulator/...`); `admin.EmulatorAdmin` is its client.

JSON in, JSON out, never counted, never faulted: tests set up apps, endpoints, history and faults
through it, and read back counters, the export jobs an app really holds and the STS AssumeRole
calls received.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pinpoint_export_sandbox.emulator.admin import ADMIN_PATH
from pinpoint_export_sandbox.emulator.faults import Faults
from pinpoint_export_sandbox.emulator.history import seed_history
from pinpoint_export_sandbox.emulator.storage import App

if TYPE_CHECKING:
    from pinpoint_export_sandbox.emulator.app import EmulatorService

log = logging.getLogger(__name__)
_APP_ID = re.compile(r"[0-9a-f]{32}")
Handler = Callable[[web.Request], Awaitable[Any]]


class AdminRoutes:
    """The admin path's handlers, over one emulated service."""

    def __init__(self, service: EmulatorService) -> None:
        self.service = service

    def add_to(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/health", self._health),
            ("POST", "/apps", self._create_app),
            ("POST", "/apps/{application_id}/seed", self._seed),
            ("POST", "/apps/{application_id}/history", self._seed_history),
            ("GET", "/apps/{application_id}/jobs", self._jobs),
            ("GET", "/faults", self._get_faults),
            ("PUT", "/faults", self._set_faults),
            ("GET", "/counters", self._counters),
            ("GET", "/sts/calls", self._sts_calls),
            ("POST", "/reset", self._reset),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, ADMIN_PATH + path, _json_handler(handler))

    def _app(self, request: web.Request) -> App:
        app = self.service.pinpoint.apps.get(request.match_info["application_id"])
        if app is None:
            raise web.HTTPNotFound(reason="no such application")
        return app

    async def _health(self, request: web.Request) -> Any:
        return {"status": "ok"}

    async def _create_app(self, request: web.Request) -> Any:
        document = await _body(request)
        app_id = str(document.get("application_id") or uuid.uuid4().hex)
        if not _APP_ID.fullmatch(app_id) or app_id in self.service.pinpoint.apps:
            raise web.HTTPBadRequest(reason=f"application_id {app_id!r} is invalid or taken")
        name = str(document.get("name", "emulator"))
        return self.service.pinpoint.add_app(name, {}, app_id).response()

    async def _seed(self, request: web.Request) -> Any:
        document = await _body(request)
        app = self._app(request)
        count = document.get("count")
        seed = document.get("seed", 0)
        prefix = document.get("id_prefix", "ep-")
        if not isinstance(count, int) or count < 0 or not isinstance(seed, int):
            raise web.HTTPBadRequest(reason="count (>= 0) and seed must be integers")
        if not isinstance(prefix, str) or not prefix or prefix[-1].isdigit():
            raise web.HTTPBadRequest(reason="id_prefix must be a string not ending in a digit")
        block = app.endpoints.seed(count, seed, prefix)
        log.info("seeded %d endpoints into %s (seed %d)", count, app.id, seed)
        return {
            "application_id": app.id,
            "seeded": count,
            "start": block.start,
            "id_prefix": prefix,
            "seed": seed,
        }

    async def _seed_history(self, request: web.Request) -> Any:
        document = await _body(request)
        app = self._app(request)
        count = document.get("count")
        before = document.get("before")
        if not isinstance(count, int) or isinstance(count, bool):
            raise web.HTTPBadRequest(reason="count must be an integer")
        if before is not None and not isinstance(before, str):
            raise web.HTTPBadRequest(reason="before must be an RFC 3339 time")
        try:
            moment = None if before is None else dt.datetime.fromisoformat(before)
            history = seed_history(app, count, moment, self.service.config.account_id)
        except ValueError as error:
            raise web.HTTPBadRequest(reason=str(error)) from None
        log.info("seeded %d finished export jobs into %s", count, app.id)
        return history.to_json()

    async def _jobs(self, request: web.Request) -> Any:
        """The app's export jobs whose S3UrlPrefix starts with `?prefix=`, oldest first."""
        prefix = request.query.get("prefix", "")
        return [
            {
                "id": job.id,
                "s3_url_prefix": job.definition["S3UrlPrefix"],
                "status": job.status,
                "creation_date": job.creation_date,
            }
            for job in self._app(request).jobs
            if job.definition["S3UrlPrefix"].startswith(prefix)
        ]

    async def _get_faults(self, request: web.Request) -> Any:
        return self.service.faults.faults.to_json()

    async def _set_faults(self, request: web.Request) -> Any:
        try:
            faults = Faults.from_json(await _body(request))
        except (TypeError, ValueError) as error:
            raise web.HTTPBadRequest(reason=str(error)) from None
        await self.service.faults.configure(faults)
        log.info("faults: %s", faults)
        return faults.to_json()

    async def _counters(self, request: web.Request) -> Any:
        return dict(self.service.counters)

    async def _sts_calls(self, request: web.Request) -> Any:
        return list(self.service.sts.calls)

    async def _reset(self, request: web.Request) -> Any:
        document = await _body(request)
        await self.service.reset(
            state=bool(document.get("state", True)),
            faults=bool(document.get("faults", True)),
            counters=bool(document.get("counters", True)),
        )
        return {"status": "reset"}


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        document = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(reason="body must be JSON") from None
    if not isinstance(document, dict):
        raise web.HTTPBadRequest(reason="body must be a JSON object")
    return document


def _json_handler(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def respond(request: web.Request) -> web.Response:
        try:
            return web.json_response(await handler(request))
        except web.HTTPException as error:
            return web.json_response({"error": error.reason}, status=error.status)

    return respond
