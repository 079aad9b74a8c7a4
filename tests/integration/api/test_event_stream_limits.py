"""Open `/events` streams are bounded: per API key and per instance (429 with Retry-After
past either cap), their slots come back however a stream ends, and the streams on one
deployment share one store read per poll instead of one each.

The app is served by uvicorn on a loopback socket, on the test's own event loop (its SQLite
store lives there): httpx's ASGI transport hands a response over only once it is complete,
so it cannot hold streams open side by side."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.integration.api.conftest import Api
from tests.integration.api.test_events_stream import _walk_to_failed, parse_sse
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

# Every test opens dozens of requests a minute on one key; the request rate limit is not
# what these tests are about.
ENV = {"RATE_LIMIT_PER_MINUTE": 100_000}


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on `app` served by uvicorn on 127.0.0.1, on this event loop. The app's
    lifespan is the fixture's: uvicorn's is off."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started or task.done(), within=10, what="server start")
    if not server.started:
        raise RuntimeError(f"the test server did not start: {task}")
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def open_streams(
    client: httpx.AsyncClient, stack: contextlib.AsyncExitStack, url: str, headers: Any, n: int
) -> list[httpx.Response]:
    """`n` streams opened at once; each stays open until `stack` closes."""

    async def one() -> httpx.Response:
        return await stack.enter_async_context(client.stream("GET", url, headers=headers))

    return list(await asyncio.gather(*(one() for _ in range(n))))


class Events:
    """A served stream's events as they come. Keeps its one line iterator: an abandoned
    iterator, once collected, closes the connection, and the server sees the client leave."""

    def __init__(self, resp: httpx.Response) -> None:
        self.lines = resp.aiter_lines()

    async def next(self) -> dict[str, Any] | None:
        """The next event, or None once the stream has ended."""
        block = ""
        async for line in self.lines:
            if not line and "data: " in block:
                return parse_sse(block)[0]
            block += line + "\n"
        return None

    async def rest(self) -> list[dict[str, Any]]:
        events = []
        while (event := await self.next()) is not None:
            events.append(event)
        return events


async def assert_refused(resp: httpx.Response, says: str) -> None:
    await resp.aread()
    assert resp.status_code == 429, resp.text
    assert int(resp.headers["Retry-After"]) >= 1
    error = resp.json()["error"]
    assert error["type"] == "RateLimitedError"
    assert says in error["message"]
    assert error["request_id"]


async def test_one_key_holds_at_most_its_cap_and_other_tenants_stay_fast(make_api: Any) -> None:
    """60 streams on one key at the default cap: 10 are served, 50 answer 429 before any
    stream starts, and another tenant's reads answer at once meanwhile."""
    api: Api = await make_api(**ENV)
    cap = api.services.settings.event_streams_per_key
    assert cap == 10  # the default
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    bobs = (await api.post_deployment("bob")).json()["deployment_id"]
    url = f"/v1/deployments/{dep_id}/events"
    async with serving(api.app) as client, contextlib.AsyncExitStack() as stack:
        answers = await open_streams(client, stack, url, api.auth(), 60)
        served = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code != 200]
        assert len(served) == cap
        for resp in refused:
            await assert_refused(resp, "for this key")
        readers = [Events(r) for r in served]
        events = await asyncio.gather(*(reader.next() for reader in readers))
        assert {e["data"]["status"] for e in events if e} == {"validating"}
        for _ in range(20):
            started = time.perf_counter()
            resp = await client.get(f"/v1/deployments/{bobs}", headers=api.auth("bob"))
            assert resp.status_code == 200
            assert time.perf_counter() - started < 0.5
        # Bob's own streams are not held up by Alice's.
        bob_stream = await open_streams(
            client, stack, f"/v1/deployments/{bobs}/events", api.auth("bob"), 1
        )
        assert bob_stream[0].status_code == 200


async def test_the_instance_cap_counts_every_key(make_api: Any) -> None:
    api: Api = await make_api(**ENV, VISGATE_EVENT_STREAMS_PER_KEY=3, VISGATE_EVENT_STREAMS_MAX=4)
    alices = (await api.post_deployment()).json()["deployment_id"]
    bobs = (await api.post_deployment("bob")).json()["deployment_id"]
    alice_url, bob_url = f"/v1/deployments/{alices}/events", f"/v1/deployments/{bobs}/events"
    async with serving(api.app) as client, contextlib.AsyncExitStack() as stack:
        assert all(
            r.status_code == 200
            for r in await open_streams(client, stack, alice_url, api.auth(), 3)
        )
        (bob_first,) = await open_streams(client, stack, bob_url, api.auth("bob"), 1)
        assert bob_first.status_code == 200
        # Four open in all: Bob is under his own cap, but the instance is full.
        (bob_second,) = await open_streams(client, stack, bob_url, api.auth("bob"), 1)
        await assert_refused(bob_second, "instance busy")
        # Ordinary requests still answer.
        assert (await client.get(f"/v1/deployments/{bobs}", headers=api.auth("bob"))).is_success


async def _opens_again(client: httpx.AsyncClient, url: str, headers: Any) -> bool:
    """Whether a stream opens within a few seconds (a slot frees once the server has seen
    its stream end)."""

    async def opens() -> bool:
        async with client.stream("GET", url, headers=headers) as resp:
            await resp.aclose()
            return resp.status_code == 200

    return await eventually(opens, within=3, what="a stream opening again")


async def test_slots_come_back_when_streams_end(make_api: Any) -> None:
    api: Api = await make_api(**ENV, VISGATE_EVENT_STREAMS_PER_KEY=2)
    streams = api.app.state.event_streams
    waiting = (await api.post_deployment()).json()["deployment_id"]
    settling = (await api.post_deployment()).json()["deployment_id"]
    waiting_url = f"/v1/deployments/{waiting}/events"
    async with serving(api.app) as client:
        # The client goes away: its slot frees.
        async with contextlib.AsyncExitStack() as stack:
            held = await open_streams(client, stack, waiting_url, api.auth(), 2)
            assert [r.status_code for r in held] == [200, 200]
            (over,) = await open_streams(client, stack, waiting_url, api.auth(), 1)
            await assert_refused(over, "for this key")
        assert await _opens_again(client, waiting_url, api.auth())

        # The deployment settles: the stream ends, and so does its hold on a slot.
        async with contextlib.AsyncExitStack() as stack:
            (keeps,) = await open_streams(client, stack, waiting_url, api.auth(), 1)
            (ends,) = await open_streams(
                client, stack, f"/v1/deployments/{settling}/events", api.auth(), 1
            )
            assert (keeps.status_code, ends.status_code) == (200, 200)
            kept, ending = Events(keeps), Events(ends)
            assert await kept.next() and await ending.next()
            await _walk_to_failed(api, settling)
            assert (await ending.rest())[-1]["data"]["status"] == "failed"
            assert await _opens_again(client, waiting_url, api.auth())

        # Clients that leave before reading a byte, and 404s, hold nothing afterwards.
        for _ in range(3):
            async with client.stream("GET", waiting_url, headers=api.auth()) as left:
                assert left.status_code == 200
            missing = await client.get("/v1/deployments/dep_0000/events", headers=api.auth())
            assert missing.status_code == 404
            await _all_closed(streams)


async def _all_closed(streams: Any) -> None:
    """Waits (briefly) for the server to see every stream end; then nothing is held."""
    await eventually(lambda: streams.open_streams == 0, within=3, what="every slot freed")
    assert streams.watchers == 0


async def test_streams_on_one_deployment_share_one_store_read_per_poll(make_api: Any) -> None:
    """Eight streams on one deployment read the store about once a poll (SQLite: 0.25 s),
    not eight times."""
    api: Api = await make_api(**ENV)
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    deployments = api.services.store.deployments
    real_get = deployments.get
    reads = 0

    async def counting_get(deployment_id: str, **kwargs: Any) -> Any:
        nonlocal reads
        reads += deployment_id == dep_id
        return await real_get(deployment_id, **kwargs)

    deployments.get = counting_get  # type: ignore[method-assign]
    try:
        async with serving(api.app) as client, contextlib.AsyncExitStack() as stack:
            url = f"/v1/deployments/{dep_id}/events"
            served = await open_streams(client, stack, url, api.auth(), 8)
            assert [r.status_code for r in served] == [200] * 8
            readers = [Events(r) for r in served]
            await asyncio.gather(*(reader.next() for reader in readers))
            reads = 0
            await asyncio.sleep(1.5)
            # 1.5 s at one read a 0.25 s poll is 6; one a stream would be 48.
            assert 3 <= reads <= 9
            assert api.app.state.event_streams.open_streams == 8
    finally:
        deployments.get = real_get  # type: ignore[method-assign]
