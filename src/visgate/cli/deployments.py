"""Deployment commands of `visgate`: deploy (with live progress), list, status, delete,
logs and cost, each one call or two of the SDK (`visgate.client`).

They read `VISGATE_URL` and `VISGATE_API_KEY`. Output is for people by default and one
JSON document with `--json`; errors print `Type: message` and exit non-zero.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from visgate.cli.common import JsonOpt, console, emit, err_console, fail, say, session
from visgate.cli.follow import follow


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
    with session() as client:
        accepted = client.create(body)
        if not wait:
            emit(accepted) if as_json else say(
                f"accepted {escape(accepted['deployment_id'])} ({escape(accepted['status'])}); "
                f"about {accepted['estimated_ready_seconds']} s to ready"
            )
            return
        final = follow(
            client, accepted["deployment_id"], model_id, console=err_console, quiet=as_json
        )
    if as_json:
        emit(final)
    elif final["status"] == "ready":
        url = final.get("endpoint_url") or ""
        say(f"[green]ready[/]: endpoint {escape(str(final['endpoint_id']))}  {escape(url)}")
        say(f'next: visgate jobs run {escape(final["deployment_id"])} --text "a small red fox"')
    if final["status"] != "ready":
        error = final.get("error") or {}
        fail(
            str(error.get("type", final["status"])),
            str(error.get("message", "deployment did not become ready")),
        )


def list_command(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Your deployments, newest first."""
    with session() as client:
        page = client.list(status=status, limit=limit)
    if as_json:
        emit(page)
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
    with session() as client:
        dep = client.get(deployment_id)
    if as_json:
        emit(dep)
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
        say(f"{field:<14} {escape(str(dep.get(field) or ''))}")
    if dep.get("error"):
        say(
            f"{'error':<14} [red]{escape(dep['error']['type'])}[/]: "
            f"{escape(dep['error']['message'])}"
        )


def delete_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """Tear a deployment down (endpoint, template, secrets)."""
    with session() as client:
        client.delete(deployment_id)
        dep = client.get(deployment_id)
    if as_json:
        emit({"deployment_id": deployment_id, "status": dep["status"]})
    else:
        say(f"{escape(deployment_id)}: {escape(dep['status'])}")


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
    with session() as client:
        dep = client.get(deployment_id)
    if as_json:
        emit(dep["logs"])
        return
    for line in dep["logs"]:
        color = {"warning": "yellow", "error": "red"}.get(line["level"], "white")
        say(
            f"{escape(line['at'])}  [{color}]{escape(line['status'] or ''):<17}[/] "
            f"{escape(line['message'])}"
        )


def _worker_logs(deployment_id: str, as_json: bool, lines: int) -> None:
    with session() as client:
        answer = client.logs(deployment_id, source="worker", lines=lines)
    if as_json:
        emit(answer["lines"])
        return
    for entry in answer["lines"]:
        say(
            f"{escape(entry['ts'] or '')}  [cyan]{escape(entry['worker_id'])}[/]  "
            f"{escape(entry['line'])}"
        )


def cost_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """Price per hour of the workers running now, and the spend since creation (USD)."""
    with session() as client:
        cost = client.cost(deployment_id)
    if as_json:
        emit(cost)
        return
    price = cost["price_per_hour"]
    per_hour = "unknown (unpriced pool)" if price is None else f"${price:.4f}/h"
    source = "billed by Runpod" if cost["spend_source"] == "billed" else "estimated"
    workers = f"{cost['workers']} worker" + ("" if cost["workers"] == 1 else "s")
    say(
        f"{escape(cost['deployment_id'])}: {per_hour} now ({workers}); "
        f"spent ${cost['spend']:.4f} ({source}) from {escape(cost['since'])}"
        f" to {escape(cost['until'])}"
    )
