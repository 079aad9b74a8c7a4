"""`serve_in_thread`: the one way a test runs an ASGI app on a real loopback socket
(`serve_handler_in_thread` the same for a standard-library request handler).

The socket is bound (port 0) before the server thread starts, so no other process can take
the port between choosing it and listening on it; the block is entered only once the server
accepts connections, and a server that cannot start raises with its own error instead."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class _ThreadServer(uvicorn.Server):
    """A uvicorn server that signals `settled` once start-up has succeeded or failed, so the
    caller waits on an event instead of polling `started`."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()
        self.failure: BaseException | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.settled.set()

    def run_recording_failure(self, sockets: list[socket.socket]) -> None:
        """`run`, keeping what stopped it (uvicorn reports some failures as `SystemExit`)."""
        try:
            self.run(sockets=sockets)
        except BaseException as exc:
            self.failure = exc
        finally:
            self.settled.set()


class _ErrorsOfThread(logging.Handler):
    """Keeps the ERROR lines uvicorn logs from one thread: its only account of some failures
    (an app that does not import), and other servers may be logging at the same time."""

    def __init__(self, thread_name: str) -> None:
        super().__init__(logging.ERROR)
        self.thread_name = thread_name
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName == self.thread_name:
            self.lines.append(record.getMessage())


@contextlib.contextmanager
def serve_in_thread(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 from a daemon thread; yield its base URL once it listens.

    `config` goes to `uvicorn.Config` (e.g. `ssl_certfile`/`ssl_keyfile`, then the URL is
    https). Raises `RuntimeError` carrying the server's error when it does not start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # log_config=None: uvicorn leaves the process's logging alone (its own configuration
    # would reset handlers other servers and pytest rely on); its lines reach pytest's capture.
    options: dict[str, Any] = {
        "log_level": "warning",
        "log_config": None,
        "lifespan": "off",
        "access_log": False,
    }
    server = _ThreadServer(uvicorn.Config(app, **(options | config)))
    name = f"test-server-127.0.0.1:{port}"
    errors = _ErrorsOfThread(name)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(errors)
    thread = threading.Thread(
        target=server.run_recording_failure, args=([sock],), name=name, daemon=True
    )
    try:
        thread.start()
        settled = server.settled.wait(START_TIMEOUT_S)
        if not server.started:
            server.should_exit = True
            thread.join(STOP_TIMEOUT_S)
    finally:
        uvicorn_log.removeHandler(errors)
    try:
        if not server.started:
            why = "; ".join(errors.lines) or (repr(server.failure) if server.failure else "")
            if not settled:
                why = f"not listening after {START_TIMEOUT_S:g} s"
            raise RuntimeError(
                f"the test server did not start: {why or 'no reason given'}"
            ) from server.failure
        scheme = "https" if config.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        sock.close()


@contextlib.contextmanager
def serve_handler_in_thread(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve a standard-library request handler on 127.0.0.1 from a daemon thread; yield its
    base URL. For fakes that need the raw connection (a chunked stream cut mid-body), which
    an ASGI app cannot produce. The server binds in its constructor, before the thread
    starts, and accepts as soon as `serve_forever` runs; connections made earlier wait in
    the listen backlog."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-handler-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_TIMEOUT_S)
