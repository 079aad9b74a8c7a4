"""The deployment and jobs commands against a scripted fake of the public API on loopback:
what a person sees on stdout/stderr and the exit code, from a real `visgate` subprocess."""

from __future__ import annotations

import json
import re
import time

import pytest
from tenacity import wait_none
from typer.testing import CliRunner

from tests.integration.cli.scripted_api import DEP, T0, Handler, Request, fake_api, visgate
from visgate.cli import app, follow
from visgate.client import VisgateClient

__all__ = ["fake_api"]  # the fixture, used by name


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
    monkeypatch.setattr(follow, "STREAM_BACKOFF", wait_none())
    monkeypatch.setenv("VISGATE_URL", url)
    monkeypatch.setenv("VISGATE_API_KEY", "vg_test_key")
    result = CliRunner().invoke(app, ["deploy", "lumen/3d-pipeline", "--wait"])
    assert result.exit_code == 1
    assert connections == [None] + ["1"] * (follow.STREAM_RECONNECTS + 1)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ConnectionError: ") and f"visgate status {DEP}" in last


READY_LINE = (
    "worker ready: demo/text-encoder, demo/part-planner, demo/shape-prior, demo/point-decoder,"
    " demo/mesh-generator, demo/texture-painter loaded"
)
LINES = {  # what each status change writes, as the service's steps word it
    "validating": "deployment of lumen/3d-pipeline accepted",
    "selecting_gpu": "model found on the hub; needs about 23.5 GB of GPU memory (registry)",
    "creating_endpoint": "GPU pools, in order: AMPERE_24, ADA_24, AMPERE_48",
    "loading_model": "waiting for the worker to load the model",
    "ready": READY_LINE,
}


def _phase_rows(stderr: str) -> dict[str, str]:
    """Each phase's note, its wrapped lines joined: {status: note}."""
    rows: dict[str, list[str]] = {}
    current = ""
    for line in stderr.splitlines():
        row = re.match(r"^\s*\S\s+([a-z_]+)\s+(?:\d+\.\d s)?\s*(.*)$", line)
        if row and row.group(1) in LINES:
            current = row.group(1)
            rows[current] = [row.group(2)]
        elif current and line.strip() and "total" not in line:
            rows[current].append(line.strip())
    return {status: " ".join(" ".join(parts).split()) for status, parts in rows.items()}


def test_deploy_wait_shows_each_phases_own_line_whole(fake_api) -> None:
    """Attached late, the first events all arrive in one poll, when the record's newest log
    line is the pools': each row still shows the line its own change wrote, and the long
    ready line wraps instead of being cut."""
    url, api = fake_api

    def events(r: Request) -> None:
        r.sse_start()
        for seq, status, offset in PHASES:
            newest = LINES["creating_endpoint"] if seq <= 3 else LINES[status]
            current = "ready" if seq == 5 else status
            r.sse_event(seq, status, T0 + offset, current, LINES[status], last_log=newest)
        r.sse_end()

    _deploy_routes(api, events)
    done = visgate("deploy", "lumen/3d-pipeline", "--wait", url=url)
    assert done.returncode == 0, done.stderr
    assert _phase_rows(done.stderr) == LINES, done.stderr
    assert max(len(line) for line in done.stderr.splitlines()) <= 80
