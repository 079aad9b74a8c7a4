"""Client commands of `visgate`: deploy (with live progress), list, status, delete, logs, jobs.

They read `VISGATE_URL` and `VISGATE_API_KEY`. Output is for people by default and one
JSON document with `--json`; errors print `Type: message` and exit non-zero.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from visgate.cli_follow import follow
from visgate.client import RUNSYNC_READ_TIMEOUT_S, ApiError, VisgateClient

console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# A command ending on purpose (already reported): let these through the last-resort handlers.
# typer's own Exit/Abort are not click's subclasses in every typer version.
CLI_EXITS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    click.exceptions.Exit,
    click.exceptions.Abort,
    click.ClickException,
)


def print_error(type_: str, message: str) -> None:
    """`Type: message` on stderr, on one line however long (a terminal may still fold it),
    with the message's text kept verbatim: `[redacted]` or `list[int]` are not markup."""
    err_console.print(
        f"[bold red]{escape(type_)}[/]: {escape(message)}", highlight=False, soft_wrap=True
    )


def _client() -> VisgateClient:
    url = os.environ.get("VISGATE_URL", "http://127.0.0.1:8080")
    return VisgateClient(url, os.environ.get("VISGATE_API_KEY"))


@contextlib.contextmanager
def _session() -> Iterator[VisgateClient]:
    """A client for one command. Everything that goes wrong inside, building the client
    included (no VISGATE_API_KEY), ends as one `Type: message` line and exit 1."""
    try:
        with _client() as client:
            yield client
    except CLI_EXITS:
        raise
    except ApiError as exc:
        print_error(exc.type, exc.message)
        raise typer.Exit(1) from None
    except Exception as exc:  # a last resort: a line, not a traceback
        print_error(type(exc).__name__, str(exc) or repr(exc))
        raise typer.Exit(1) from None


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=None))


def deploy(
    model_id: Annotated[
        str, typer.Argument(help="Hub repo id or registry bundle, e.g. lumen/3d-pipeline.")
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow progress until ready or failed.")
    ] = False,
    gpu_tier: Annotated[str | None, typer.Option(help="GPU tier (see GET /v1/gpus).")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="Your webhook URL.")] = None,
    runpod_key_env: Annotated[
        str | None, typer.Option(help="Name of an env variable holding your Runpod key.")
    ] = None,
    hf_token_env: Annotated[
        str | None, typer.Option(help="Name of an env variable holding a Hugging Face token.")
    ] = None,
    max_workers: Annotated[int | None, typer.Option(help="Worker cap (default 1).")] = None,
    region: Annotated[
        str | None, typer.Option(help="Data centre (EU-RO-1) or prefix (EU, US).")
    ] = None,
    ttl: Annotated[
        int | None, typer.Option(help="Delete it this many seconds after it is ready.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy a model; with --wait, show each phase live until it is ready."""
    body: dict[str, Any] = {"hf_model_id": model_id}
    limits = {"max_workers": max_workers, "region": region, "ttl_seconds": ttl}
    body |= {field: value for field, value in limits.items() if value is not None}
    if gpu_tier:
        body["gpu_tier"] = gpu_tier
    if webhook_url:
        body["user_webhook_url"] = webhook_url
    for option, field in ((runpod_key_env, "user_runpod_key"), (hf_token_env, "hf_token")):
        if option:
            body[field] = os.environ.get(option) or ""
    with _session() as client:
        accepted = client.create(body)
        if not wait:
            _emit(accepted) if as_json else console.print(
                f"accepted {escape(accepted['deployment_id'])} ({escape(accepted['status'])}); "
                f"about {accepted['estimated_ready_seconds']} s to ready",
                highlight=False,
            )
            return
        final = follow(
            client, accepted["deployment_id"], model_id, console=err_console, quiet=as_json
        )
    if as_json:
        _emit(final)
    elif final["status"] == "ready":
        url = final.get("endpoint_url") or ""
        console.print(
            f"[green]ready[/]: endpoint {escape(str(final['endpoint_id']))}  {escape(url)}",
            highlight=False,
        )
        console.print(
            f'next: visgate jobs run {escape(final["deployment_id"])} --text "a small red fox"',
            highlight=False,
        )
    if final["status"] != "ready":
        error = final.get("error") or {}
        print_error(
            str(error.get("type", final["status"])),
            str(error.get("message", "deployment did not become ready")),
        )
        raise typer.Exit(1)


def list_command(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Your deployments, newest first."""
    with _session() as client:
        page = client.list(status=status, limit=limit)
    if as_json:
        _emit(page)
        return
    # an id is copied from here into the next command: never folded over two lines
    table = Table(Column("id", no_wrap=True), "model", "status", "gpu", "created")
    for dep in page["items"]:
        table.add_row(
            *(
                escape(str(dep[field] or ""))
                for field in ("deployment_id", "model_id", "status", "gpu", "created_at")
            )
        )
    console.print(table)


def status_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """One deployment's status, endpoint and error."""
    with _session() as client:
        dep = client.get(deployment_id)
    if as_json:
        _emit(dep)
        return
    for field in (
        "deployment_id",
        "model_id",
        "status",
        "gpu",
        "endpoint_id",
        "endpoint_url",
        "created_at",
        "ready_at",
    ):
        console.print(f"{field:<14} {escape(str(dep.get(field) or ''))}", highlight=False)
    if dep.get("error"):
        console.print(
            f"{'error':<14} [red]{escape(dep['error']['type'])}[/]: "
            f"{escape(dep['error']['message'])}",
            highlight=False,
            soft_wrap=True,
        )


def delete_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """Tear a deployment down (endpoint, template, secrets)."""
    with _session() as client:
        client.delete(deployment_id)
        dep = client.get(deployment_id)
    if as_json:
        _emit({"deployment_id": deployment_id, "status": dep["status"]})
    else:
        console.print(f"{escape(deployment_id)}: {escape(dep['status'])}", highlight=False)


def logs_command(
    deployment_id: str,
    as_json: JsonOpt = False,
    worker: Annotated[
        bool, typer.Option("--worker", help="The workers' own output (RUNPOD_API=rest).")
    ] = False,
    lines: Annotated[int, typer.Option(help="How many of the last lines (at most 1000).")] = 100,
) -> None:
    """The deployment's log: every step, retry and webhook attempt (or, with --worker, what
    its workers printed, secrets masked)."""
    if worker:
        _worker_logs(deployment_id, as_json, lines)
        return
    with _session() as client:
        dep = client.get(deployment_id)
    if as_json:
        _emit(dep["logs"])
        return
    for line in dep["logs"]:
        color = {"warning": "yellow", "error": "red"}.get(line["level"], "white")
        console.print(
            f"{escape(line['at'])}  [{color}]{escape(line['status'] or ''):<17}[/] "
            f"{escape(line['message'])}",
            highlight=False,
            soft_wrap=True,
        )


def _worker_logs(deployment_id: str, as_json: bool, lines: int) -> None:
    with _session() as client:
        answer = client.logs(deployment_id, source="worker", lines=lines)
    if as_json:
        _emit(answer["lines"])
        return
    for entry in answer["lines"]:
        console.print(
            f"{escape(entry['ts'] or '')}  [cyan]{escape(entry['worker_id'])}[/]  "
            f"{escape(entry['line'])}",
            highlight=False,
            soft_wrap=True,
        )


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
    with _session() as client:
        result = _run_until_done(client, deployment_id, job_input, timeout)
    if as_json:
        _emit(result)
    if result.get("status") in ("IN_QUEUE", "IN_PROGRESS"):
        print_error(
            "TimeoutError",
            f"job {result.get('id')} is still {result['status']} after {timeout:g} s",
        )
        raise typer.Exit(1)
    if result.get("status") != "COMPLETED":
        print_error(*job_error(result))
        raise typer.Exit(1)
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
            console.print(f"{key}: {escape(str(output[key]))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("list")(list_command)
    app.command("status")(status_command)
    app.command("delete")(delete_command)
    app.command("logs")(logs_command)
    app.add_typer(jobs_app, name="jobs")
