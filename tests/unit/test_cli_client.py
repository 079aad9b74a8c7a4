"""The client commands against a scripted fake of the public API on loopback: what a person
sees on stdout/stderr and the exit code, from a real `visgate` subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tenacity import wait_none
from typer.testing import CliRunner

from visgate import cli_follow
from visgate.cli import app
from visgate.client import VisgateClient

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

    def sse_event(self, seq: int, status: str, at: float, current: str) -> None:
        data = {
            "deployment_id": DEP,
            "status": current,
            "model_id": "lumen/3d-pipeline",
            "event_status": status,
            "event_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
            "last_log": {"message": f"now {status}"},
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
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


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


# --- no traceback, ever ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["status", DEP],
        ["logs", DEP],
        ["delete", DEP],
        ["deploy", "lumen/3d-pipeline", "--wait"],
        ["jobs", "run", DEP, "--text", "a fox"],
    ],
)
def test_missing_api_key_is_one_line_not_a_traceback(args: list[str]) -> None:
    done = visgate(*args, env={"VISGATE_API_KEY": None})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "UnauthorizedError: set VISGATE_API_KEY (see `visgate keys create`)"
    )


def test_operator_command_error_outside_our_tree_is_one_line(tmp_path) -> None:
    done = visgate("keys", "list", env={"VISGATE_DB_PATH": "/proc/nope/visgate.db"})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert re.search(r"^FileNotFoundError: .*/proc/nope", done.stderr, re.MULTILINE), done.stderr


def test_service_not_running_is_a_connection_error_line() -> None:
    done = visgate("list", url="http://127.0.0.1:9")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("ConnectionError: cannot reach http://127.0.0.1:9")


# --- error text is text, not markup --------------------------------------------------------

MARKUP_MESSAGE = (
    "upstream said token=[redacted] and list[int] is wrong; closing tag [/] or [/bold] "
    "appear verbatim, and this message is long enough that an 80-column console would fold it"
)


def test_error_message_with_brackets_prints_intact_on_one_line(fake_api) -> None:
    url, api = fake_api
    api.routes[("GET", f"/v1/deployments/{DEP}")] = lambda r: r.json(
        404, {"error": {"type": "DeploymentNotFoundError", "message": MARKUP_MESSAGE}}
    )
    done = visgate("status", DEP, url=url)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"DeploymentNotFoundError: {MARKUP_MESSAGE}"]


def test_deployment_error_and_log_lines_keep_their_brackets(fake_api) -> None:
    url, api = fake_api
    dep = {
        "deployment_id": DEP,
        "model_id": "lumen/3d-pipeline",
        "status": "failed",
        "error": {"type": "WorkerFailedError", "message": "bad [redacted] value [/]"},
        "logs": [
            {
                "at": "2026-01-01T00:00:00Z",
                "level": "error",
                "status": "failed",
                "message": "x [/] y",
            }
        ],
    }
    api.routes[("GET", f"/v1/deployments/{DEP}")] = lambda r: r.json(200, dep)
    status = visgate("status", DEP, url=url)
    assert status.returncode == 0, status.stderr
    assert "WorkerFailedError: bad [redacted] value [/]" in status.stdout
    logs = visgate("logs", DEP, url=url)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.rstrip().endswith("x [/] y")


# --- jobs run ----------------------------------------------------------------------------


def test_failed_job_prints_the_workers_error_as_type_and_message(fake_api) -> None:
    url, api = fake_api
    error = {
        "type": "ValidationError",
        "message": "invalid input: text: text must describe an object, not only digits",
        "fields": [{"field": "text", "message": "text must describe an object, not only digits"}],
    }
    api.routes[("POST", f"/v1/deployments/{DEP}/jobs/sync")] = lambda r: r.json(
        200, {"id": "job-1", "status": "FAILED", "error": json.dumps(error)}
    )
    done = visgate("jobs", "run", DEP, "--text", "1234", url=url)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ValidationError: invalid input: text: text must describe an object, not only digits"
    ]


def test_failed_job_with_the_sdks_own_error_or_plain_text(fake_api) -> None:
    url, api = fake_api
    sdk = {"error_type": "<class 'RuntimeError'>", "error_message": "CUDA out of memory"}
    answers = iter(
        [
            {"id": "job-2", "status": "FAILED", "error": json.dumps(sdk)},
            {"id": "job-3", "status": "FAILED", "error": "worker [gone]"},
            {"id": "job-4", "status": "CANCELLED"},
        ]
    )
    api.routes[("POST", f"/v1/deployments/{DEP}/jobs/sync")] = lambda r: r.json(200, next(answers))
    lines = [visgate("jobs", "run", DEP, "--text", "a fox", url=url).stderr for _ in range(3)]
    assert lines == [
        "RuntimeError: CUDA out of memory\n",
        "JobFailedError: job job-3 failed: worker [gone]\n",
        "JobFailedError: job job-4 is CANCELLED\n",
    ]


def test_sync_job_call_outlasts_the_clients_default_timeout(fake_api) -> None:
    """The service holds /jobs/sync while the job runs (~90 s on Runpod): the client's read
    timeout for that call must be longer than its timeout for other calls."""
    url, api = fake_api

    def slow_job(r: Request) -> None:
        time.sleep(1.5)
        r.json(200, {"id": "job-5", "status": "COMPLETED", "output": {"parts": []}})

    api.routes[("POST", f"/v1/deployments/{DEP}/jobs/sync")] = slow_job
    with VisgateClient(url, "vg_test_key", timeout=0.5) as client:
        result = client.run_job(DEP, {"text": "a fox"})
    assert result["status"] == "COMPLETED"


def test_jobs_run_timeout_bounds_the_whole_wait(fake_api) -> None:
    url, api = fake_api
    api.routes[("POST", f"/v1/deployments/{DEP}/jobs/sync")] = lambda r: r.json(
        200, {"id": "job-6", "status": "IN_PROGRESS"}
    )
    api.routes[("GET", f"/v1/deployments/{DEP}/jobs/job-6")] = lambda r: r.json(
        200, {"id": "job-6", "status": "IN_PROGRESS"}
    )
    started = time.monotonic()
    done = visgate("jobs", "run", DEP, "--text", "a fox", "--timeout", "1.5", url=url)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["TimeoutError: job job-6 is still IN_PROGRESS after 1.5 s"]
    assert time.monotonic() - started < 10


# --- deploy --wait -----------------------------------------------------------------------

PHASES = [  # (seq, status, seconds after T0 on the service's clock)
    (1, "validating", 0.0),
    (2, "selecting_gpu", 1.5),
    (3, "creating_endpoint", 4.0),
    (4, "loading_model", 6.3),
    (5, "ready", 10.0),
]


def _deploy_routes(api: type[Request], events: Handler) -> None:
    api.routes[("POST", "/v1/deployments")] = lambda r: r.json(
        202,
        {
            "deployment_id": DEP,
            "status": "validating",
            "model_id": "lumen/3d-pipeline",
            "estimated_ready_seconds": 10,
            "webhook_url": None,
            "created_at": "2026-01-01T00:00:00Z",
        },
    )
    api.routes[("GET", f"/v1/deployments/{DEP}/events")] = events
    api.routes[("GET", f"/v1/deployments/{DEP}")] = lambda r: r.json(
        200,
        {
            "deployment_id": DEP,
            "status": "ready",
            "model_id": "lumen/3d-pipeline",
            "endpoint_id": "ep-local-1",
            "endpoint_url": "http://127.0.0.1:1/ep",
            "error": None,
            "logs": [],
        },
    )


def test_deploy_wait_resumes_a_dropped_stream_and_times_phases_by_event_at(fake_api) -> None:
    url, api = fake_api
    connections: list[str | None] = []

    def events(r: Request) -> None:
        connections.append(r.headers.get("Last-Event-ID"))
        after = int(r.headers.get("Last-Event-ID") or 0)
        r.sse_start()
        for seq, status, offset in PHASES:
            if seq > after:
                r.sse_event(seq, status, T0 + offset, "ready" if seq == 5 else status)
            if len(connections) == 1 and seq == 2:
                return r.drop()  # the first connection breaks after two events
        r.sse_end()
        return None

    _deploy_routes(api, events)
    done = visgate("deploy", "lumen/3d-pipeline", "--wait", url=url)
    assert done.returncode == 0, done.stderr
    assert connections == [None, "2"]  # resumed where it broke off
    assert "ready: endpoint ep-local-1" in done.stdout
    rows = {m.group(1): m.group(2) for m in re.finditer(r"(\w+)\s+(\d+\.\d) s", done.stderr)}
    # the service's clock, not the arrival times (which were all within a second)
    assert rows == {
        "validating": "1.5",
        "selecting_gpu": "2.5",
        "creating_endpoint": "2.3",
        "loading_model": "3.7",
        "total": "10.0",
    }


def test_deploy_wait_gives_up_after_reconnects_that_bring_nothing(
    fake_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, api = fake_api
    connections: list[str | None] = []

    def events(r: Request) -> None:
        connections.append(r.headers.get("Last-Event-ID"))
        r.sse_start()
        if len(connections) == 1:
            r.sse_event(1, "validating", T0, "validating")
        r.drop()

    _deploy_routes(api, events)
    monkeypatch.setattr(cli_follow, "STREAM_BACKOFF", wait_none())
    monkeypatch.setenv("VISGATE_URL", url)
    monkeypatch.setenv("VISGATE_API_KEY", "vg_test_key")
    result = CliRunner().invoke(app, ["deploy", "lumen/3d-pipeline", "--wait"])
    assert result.exit_code == 1
    assert connections == [None] + ["1"] * (cli_follow.STREAM_RECONNECTS + 1)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ConnectionError: ") and f"visgate status {DEP}" in last
