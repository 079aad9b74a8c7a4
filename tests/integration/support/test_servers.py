"""`serve_in_thread`, the loopback server every in-thread test fake runs on: a test that
enters its block can reach the server at once, and one that cannot start says why."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.servers import serve_in_thread


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", _hello)])


def test_the_server_answers_as_soon_as_the_block_is_entered() -> None:
    with serve_in_thread(APP) as url:
        assert httpx.get(url, timeout=5).text == "hello"


def test_a_server_that_cannot_start_raises_its_error_instead_of_yielding() -> None:
    with (
        pytest.raises(RuntimeError, match="no_such_module"),
        serve_in_thread("tests.no_such_module:app"),
    ):
        pytest.fail("the block ran although no server was listening")


def test_the_port_stays_the_servers_while_the_block_runs_and_is_freed_after() -> None:
    with serve_in_thread(APP) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)


def test_servers_started_at_once_each_get_their_own_port() -> None:
    def serve_and_ask(_: int) -> str:
        with serve_in_thread(APP) as url:
            assert httpx.get(url, timeout=5).text == "hello"
            return url

    with ThreadPoolExecutor(8) as pool:
        urls = list(pool.map(serve_and_ask, range(8)))
    assert all(urls)
