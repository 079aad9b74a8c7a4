"""The floor: a raw ASGI callable that answers `{}` as JSON, no framework at all. Beside
bare_app.py it splits a request's cost into the server's (uvicorn) and FastAPI's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}
BODY: Message = {"type": "http.response.body", "body": b"{}"}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":  # uvicorn asks; answering keeps its log quiet
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send(START)
        await send(BODY)
