"""A scripted fake of the public API on loopback, and `visgate` run as a person runs it (a
real subprocess), for the CLI's tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.support.servers import serve_handler_in_thread

DEP = "dep_0123456789abcdef"
T0 = 1_790_000_000.0  # the fake service's clock: far from this machine's "now"

Handler = Callable[["Request"], None]


class Request(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict[tuple[str, str], Handler] = {}
    seen: list[tuple[str, str, dict[str, str]]] = []

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        self.seen.append((method, path, dict(self.headers)))
        length = int(self.headers.get("content-length") or 0)
        self.body = json.loads(self.rfile.read(length)) if length else None
        handler = self.routes.get((method, path))
        if handler is None:
            self.json(404, {"error": {"type": "NotFound", "message": f"{method} {path}"}})
        else:
            handler(self)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def json(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def sse_start(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def sse_event(
        self,
        seq: int,
        status: str,
        at: float,
        current: str,
        message: str = "",
        last_log: str | None = None,
    ) -> None:
        """One status event as the service sends it: `message` is the line the change
        wrote, `last_log` the record's newest line when the event was sent."""
        data = {
            "deployment_id": DEP,
            "status": current,
            "model_id": "lumen/3d-pipeline",
            "event_status": status,
            "event_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
            "event_message": message,
            "last_log": {"message": last_log if last_log is not None else f"now {status}"},
        }
        chunk = f"id: {seq}\nevent: status\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.flush()

    def sse_end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """End the connection mid-body: no last chunk, like a proxy cutting the stream."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def fake_api() -> Iterator[tuple[str, type[Request]]]:
    handler = type("ScriptedRequest", (Request,), {"routes": {}, "seen": []})
    with serve_handler_in_thread(handler) as url:
        yield url, handler


def visgate(
    *args: str, url: str = "http://127.0.0.1:9", env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "VISGATE_URL": url, "VISGATE_API_KEY": "vg_test_key", "COLUMNS": "80"}
    for name, value in (env or {}).items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return subprocess.run(
        [sys.executable, "-m", "visgate", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
