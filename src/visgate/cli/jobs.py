"""`visgate jobs run`: one inference job on a ready deployment, waited for and shown as a
table of the parts it made (or, with `--json`, the job as the service returned it)."""

from __future__ import annotations

import base64
import json
import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from visgate.cli.common import JsonOpt, console, emit, fail, say, session
from visgate.client import RUNSYNC_READ_TIMEOUT_S, VisgateClient

jobs_app = typer.Typer(help="Run inference jobs on a ready deployment.", no_args_is_help=True)


@jobs_app.command("run")
def jobs_run(
    deployment_id: str,
    text: Annotated[str, typer.Option(help="What to generate, e.g. 'a small red fox'.")],
    quality: Annotated[str, typer.Option(help="fast, standard or high.")] = "fast",
    num_parts: Annotated[int | None, typer.Option(help="Parts to ask for (1-16).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the result.")] = 600,
    as_json: JsonOpt = False,
) -> None:
    """Run one text-to-3D job and print its parts."""
    job_input: dict[str, Any] = {"text": text, "quality": quality}
    if num_parts is not None:
        job_input["num_parts"] = num_parts
    with session() as client:
        result = _run_until_done(client, deployment_id, job_input, timeout)
    if as_json:
        emit(result)
    if result.get("status") in ("IN_QUEUE", "IN_PROGRESS"):
        fail(
            "TimeoutError",
            f"job {result.get('id')} is still {result['status']} after {timeout:g} s",
        )
    if result.get("status") != "COMPLETED":
        fail(*job_error(result))
    if not as_json:
        _print_parts(result.get("output") or {})


def _run_until_done(
    client: VisgateClient, deployment_id: str, job_input: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """`/jobs/sync` (the service holds it up to ~90 s), then poll; `timeout` bounds it all."""
    deadline = time.monotonic() + timeout
    result = client.run_job(
        deployment_id, job_input, read_timeout=max(1.0, min(RUNSYNC_READ_TIMEOUT_S, timeout))
    )
    while result.get("status") in ("IN_QUEUE", "IN_PROGRESS") and time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        result = client.job_status(deployment_id, str(result["id"]))
    return result


def job_error(result: dict[str, Any]) -> tuple[str, str]:
    """(type, message) of a job that did not complete. The worker's `error` is a JSON string
    `{"type", "message", "fields"?}`; the runpod SDK's own is `{"error_type", "error_message"}`;
    anything else is shown as it came."""
    job = f"job {result.get('id')}"
    error = result.get("error")
    if not error:
        return "JobFailedError", f"{job} is {result.get('status')}"
    detail: Any = error
    if isinstance(error, str):
        try:
            detail = json.loads(error)
        except ValueError:
            return "JobFailedError", f"{job} failed: {error}"
    if isinstance(detail, dict):
        if detail.get("type") and detail.get("message") is not None:
            return str(detail["type"]), str(detail["message"])
        if detail.get("error_type") and detail.get("error_message") is not None:
            kind = str(detail["error_type"]).removeprefix("<class '").removesuffix("'>")
            return kind.rsplit(".", 1)[-1], str(detail["error_message"])
    return (
        "JobFailedError",
        f"{job} failed: {error if isinstance(error, str) else json.dumps(error)}",
    )


def _print_parts(output: dict[str, Any]) -> None:
    parts = output.get("parts") or []
    table = Table(
        "part",
        "points",
        "faces",
        title=f"{len(parts)} parts" + (" (cached)" if output.get("cached") else ""),
    )
    for part in parts:
        points = part.get("points") or part.get("points_b64") or ""
        n_points = len(base64.b64decode(points)) // 12 if isinstance(points, str) and points else 0
        table.add_row(
            escape(str(part.get("name"))),
            str(n_points),
            escape(str(part.get("face_count", part.get("faces", "")))),
        )
    console.print(table)
    for key in ("pipeline", "path", "concept", "template"):
        if key in output:
            say(f"{key}: {escape(str(output[key]))}")
