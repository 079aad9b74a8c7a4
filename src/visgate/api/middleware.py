"""Pure-ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path): request id,
body-size cap, and request metrics labelled by route template.
"""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# The `method` label takes only these: any other token a client sends is "other", so a
# client inventing methods cannot grow the metric's series without bound.
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


def _new_request_id() -> str:
    """Unique, not secret: the process's seeded PRNG, not a system call per request."""
    return f"req_{random.getrandbits(64):016x}"


def _envelope(status: int, type_: str, message: str, request_id: str) -> bytes:
    return json.dumps(
        {"error": {"type": type_, "message": message, "request_id": request_id}}
    ).encode()


class RequestContextMiddleware:
    """Gives every request an id (client's `X-Request-ID` if sane), binds it to log lines,
    echoes it back, caps the body size and records metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        requests: Counter,
        latency: Histogram,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.requests = requests
        self.latency = latency
        # Bounded: methods outside _METHODS share "other", templates are the app's routes.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        if declared > self.max_body_bytes:
            await self._too_large(send_wrapper, request_id)
        else:
            await self.app(scope, self._capped(receive), send_wrapper)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        count, latency = self._series(scope.get("method", "GET"), template, status_holder["code"])
        count.inc()
        latency.observe(time.perf_counter() - started)

    def _series(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        """The two metric children for a request, looked up once per label set (a
        `labels()` call takes a lock and builds the key on every request)."""
        key = (method_label(method), template, status)
        found = self._children.get(key)
        if found is None:
            found = (
                self.requests.labels(key[0], template, str(status)),
                self.latency.labels(key[0], template),
            )
            self._children[key] = found
        return found

    def _capped(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        return wrapped

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = _envelope(
            413,
            "PayloadTooLargeError",
            f"request body over {self.max_body_bytes} bytes",
            request_id,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """A chunked body grew past the cap after the request started. An HTTPException so that
    FastAPI's body parser re-raises it (it turns any other exception into a 400)."""

    def __init__(self) -> None:
        super().__init__(413, "request body over the size limit")


def metric_families(registry: Any) -> tuple[Counter, Histogram]:
    requests = Counter(
        "visgate_http_requests_total",
        "HTTP requests by method, route template and status code.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "visgate_http_request_duration_seconds",
        "HTTP request latency by method and route template.",
        ["method", "route"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        registry=registry,
    )
    return requests, latency
