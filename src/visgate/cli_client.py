"""Client commands of `visgate`: deploy (with live progress), list, status, delete, logs, jobs.

They read `VISGATE_URL` and `VISGATE_API_KEY`. Output is for people by default and one
JSON document with `--json`; errors print `Type: message` and exit non-zero.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table

from visgate.client import ApiError, VisgateClient

console = Console()
err_console = Console(stderr=True)

SETTLED = {"ready", "failed", "webhook_failed", "deleted"}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _client() -> VisgateClient:
    url = os.environ.get("VISGATE_URL", "http://127.0.0.1:8080")
    return VisgateClient(url, os.environ.get("VISGATE_API_KEY"))


def _guard(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        err_console.print(f"[bold red]{exc.type}[/]: {exc.message}", highlight=False)
        raise typer.Exit(1) from None


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=None))


class PhaseDisplay:
    """A live table: one row per status reached, with the time spent in it."""

    def __init__(self, model_id: str, deployment_id: str) -> None:
        self.title = f"{model_id}  [dim]{deployment_id}[/]"
        self.rows: list[list[Any]] = []  # [status, started, ended|None, note]

    def enter(self, status: str, at: float, note: str = "") -> None:
        if self.rows and self.rows[-1][0] == status:
            return
        if self.rows and self.rows[-1][2] is None:
            self.rows[-1][2] = at
        self.rows.append([status, at, at if status in SETTLED else None, note])

    def render(self) -> Table:
        table = Table(title=self.title, title_justify="left", show_header=False, box=None)
        now = time.monotonic()
        for status, started, ended, note in self.rows:
            if ended is None:
                mark: Any = Spinner("dots")
            elif status in ("failed", "webhook_failed"):
                mark = "[red]✗[/]"
            else:
                mark = "[green]✓[/]"
            took = "" if status in SETTLED else f"{(ended or now) - started:6.1f}s"
            table.add_row(mark, status, took, note)
        return table


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
    as_json: JsonOpt = False,
) -> None:
    """Deploy a model; with --wait, show each phase live until it is ready."""
    body: dict[str, Any] = {"hf_model_id": model_id}
    if gpu_tier:
        body["gpu_tier"] = gpu_tier
    if webhook_url:
        body["user_webhook_url"] = webhook_url
    for option, field in ((runpod_key_env, "user_runpod_key"), (hf_token_env, "hf_token")):
        if option:
            body[field] = os.environ.get(option) or ""
    with _client() as client:
        accepted = _guard(lambda: client.create(body))
        if not wait:
            _emit(accepted) if as_json else console.print(
                f"accepted {accepted['deployment_id']} ({accepted['status']}); "
                f"about {accepted['estimated_ready_seconds']} s to ready"
            )
            return
        final = _follow(client, accepted["deployment_id"], model_id, quiet=as_json)
    if as_json:
        _emit(final)
    elif final["status"] == "ready":
        console.print(
            f"[green]ready[/]: endpoint {final['endpoint_id']}  {final.get('endpoint_url') or ''}"
        )
        console.print(f'next: visgate jobs run {final["deployment_id"]} --text "a small red fox"')
    if final["status"] != "ready":
        error = final.get("error") or {}
        err_console.print(
            f"[bold red]{error.get('type', final['status'])}[/]: {error.get('message', 'deployment did not become ready')}",
            highlight=False,
        )
        raise typer.Exit(1)


def _follow(
    client: VisgateClient, deployment_id: str, model_id: str, *, quiet: bool
) -> dict[str, Any]:
    display = PhaseDisplay(model_id, deployment_id)
    last: dict[str, Any] = {}
    with Live(display.render(), console=err_console, refresh_per_second=8, transient=quiet) as live:
        last_id = None
        while not last or last["status"] not in SETTLED:
            for event in _guard(
                lambda since: list(_events_live(client, deployment_id, since, display, live)),
                last_id,
            ):
                last, last_id = event, event["id"]
            if not last or last["status"] not in SETTLED:
                time.sleep(0.5)  # the stream broke off early: resume from the last event
        live.update(display.render())
    return _guard(lambda: client.get(deployment_id))


def _events_live(
    client: VisgateClient,
    deployment_id: str,
    last_id: str | None,
    display: PhaseDisplay,
    live: Live,
) -> Any:
    for event in client.events(deployment_id, last_event_id=last_id):
        note = (event.get("last_log") or {}).get("message", "")
        display.enter(event["event_status"], time.monotonic(), note[:80])
        live.update(display.render())
        yield event


def list_command(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Your deployments, newest first."""
    with _client() as client:
        page = _guard(lambda: client.list(status=status, limit=limit))
    if as_json:
        _emit(page)
        return
    table = Table("id", "model", "status", "gpu", "created")
    for dep in page["items"]:
        table.add_row(
            dep["deployment_id"],
            dep["model_id"],
            dep["status"],
            dep["gpu"] or "",
            dep["created_at"],
        )
    console.print(table)


def status_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """One deployment's status, endpoint and error."""
    with _client() as client:
        dep = _guard(lambda: client.get(deployment_id))
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
        console.print(f"{field:<14} {dep.get(field) or ''}", highlight=False)
    if dep.get("error"):
        console.print(
            f"{'error':<14} [red]{dep['error']['type']}[/]: {dep['error']['message']}",
            highlight=False,
        )


def delete_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """Tear a deployment down (endpoint, template, secrets)."""
    with _client() as client:
        _guard(lambda: client.delete(deployment_id))
        dep = _guard(lambda: client.get(deployment_id))
    if as_json:
        _emit({"deployment_id": deployment_id, "status": dep["status"]})
    else:
        console.print(f"{deployment_id}: {dep['status']}")


def logs_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """The deployment's log: every step, retry and webhook attempt."""
    with _client() as client:
        dep = _guard(lambda: client.get(deployment_id))
    if as_json:
        _emit(dep["logs"])
        return
    for line in dep["logs"]:
        color = {"warning": "yellow", "error": "red"}.get(line["level"], "white")
        console.print(
            f"{line['at']}  [{color}]{line['status'] or '':<17}[/] {line['message']}",
            highlight=False,
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
    with _client() as client:
        result = _guard(lambda: client.run_job(deployment_id, job_input))
        deadline = time.monotonic() + timeout
        while result.get("status") in ("IN_QUEUE", "IN_PROGRESS") and time.monotonic() < deadline:
            time.sleep(1.0)
            result = _guard(client.job_status, deployment_id, str(result["id"]))
    if as_json:
        _emit(result)
    if result.get("status") != "COMPLETED":
        err_console.print(
            f"[bold red]JobFailedError[/]: job {result.get('id')} is {result.get('status')}: {result.get('error') or ''}"
        )
        raise typer.Exit(1)
    if not as_json:
        _print_parts(result.get("output") or {})


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
            str(part.get("name")), str(n_points), str(part.get("face_count", part.get("faces", "")))
        )
    console.print(table)
    for key in ("pipeline", "path", "concept", "template"):
        if key in output:
            console.print(f"{key}: {output[key]}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("list")(list_command)
    app.command("status")(status_command)
    app.command("delete")(delete_command)
    app.command("logs")(logs_command)
    app.add_typer(jobs_app, name="jobs")
