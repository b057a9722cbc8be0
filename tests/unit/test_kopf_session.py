"""Kopf's session against a real HTTP server: its requests waiting for an answer are bounded,
and a response being streamed (a watch) holds no place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import kopf
import pytest
from aiohttp import web

from pinpoint_export_operator.runtime import kopf_session


class Server:
    """Answers /slow once `release` is set, counting the requests it holds at once; /watch
    sends its headers and a first line, then streams until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = asyncio.Condition()
        self.holding = 0
        self.most = 0
        self.url = ""

    async def slow(self, request: web.Request) -> web.Response:
        async with self.arrived:
            self.holding += 1
            self.most = max(self.most, self.holding)
            self.arrived.notify_all()
        await self.release.wait()
        self.holding -= 1
        return web.Response(text="done")

    async def watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type": "ADDED"}\n')
        await self.release.wait()
        return response

    async def held(self, count: int) -> None:
        """Return once `count` requests to /slow are held (the caller bounds the wait)."""
        async with self.arrived:
            await self.arrived.wait_for(lambda: self.holding == count)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    served = Server()
    app = web.Application()
    app.router.add_get("/slow", served.slow)
    app.router.add_get("/watch", served.watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served.url = f"http://127.0.0.1:{port}"
    try:
        yield served
    finally:
        served.release.set()
        await runner.cleanup()


async def test_requests_waiting_for_an_answer_are_bounded(server: Server) -> None:
    client = kopf_session.session(kopf.ConnectionInfo(server=server.url), limit=2).aiohttp_session
    async with client:
        requests = [asyncio.create_task(client.get(f"{server.url}/slow")) for _ in range(6)]
        await asyncio.wait_for(server.held(2), 10)
        assert not any(r.done() for r in requests)
        server.release.set()
        for response in await asyncio.wait_for(asyncio.gather(*requests), 10):
            assert await response.text() == "done"
    assert server.most == 2


async def test_a_response_being_streamed_holds_no_place(server: Server) -> None:
    """A watch reads its body for minutes: the one place stays free for other requests."""
    client = kopf_session.session(kopf.ConnectionInfo(server=server.url), limit=1).aiohttp_session
    async with client:
        watch = await asyncio.wait_for(client.get(f"{server.url}/watch"), 10)
        assert await asyncio.wait_for(watch.content.readline(), 10) == b'{"type": "ADDED"}\n'
        other = asyncio.create_task(client.get(f"{server.url}/slow"))
        await asyncio.wait_for(server.held(1), 10)
        server.release.set()
        assert await (await asyncio.wait_for(other, 10)).text() == "done"
        watch.close()
