"""Operator commands that talk to Runpod directly: `visgate template create` (the shared
worker template, also `scripts/create_runpod_template.py`) and `visgate gpus`."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from rich.table import Table

from visgate.cli.common import console, fail
from visgate.domain.errors import VisgateError
from visgate.providers.base import GpuType
from visgate.providers.runpod.bootstrap import (
    PlannedOperation,
    ensure_shared_template,
    list_gpu_types,
)
from visgate.providers.runpod.graphql_api import RunpodGraphQL
from visgate.providers.runpod.rest_api import RunpodRest
from visgate.providers.runpod.rest_bootstrap import (
    ensure_shared_template_rest,
    list_gpu_types_rest,
)
from visgate.settings import RunpodApi

template_app = typer.Typer(
    help="The operator's shared Runpod worker template.", no_args_is_help=True
)

DEFAULT_GRAPHQL_URL = "https://api.runpod.io/graphql"
DEFAULT_REST_URL = "https://api.runpod.io/v2"
GraphqlUrl = Annotated[str, typer.Option(envvar="RUNPOD_GRAPHQL_URL", help="Runpod GraphQL URL.")]
RestUrl = Annotated[str, typer.Option(envvar="RUNPOD_REST_URL", help="Runpod REST API v2 base.")]
Api = Annotated[
    RunpodApi, typer.Option("--api", envvar="RUNPOD_API", help="graphql or rest (REST API v2).")
]


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--env")
        env[key] = value
    return env


def _api_key(required: bool = True) -> str:
    api_key = os.environ.get("RUNPOD_API_KEY", "")
    if not api_key and required:
        typer.echo("RUNPOD_API_KEY is not set", err=True)
        raise typer.Exit(2)
    return api_key


@template_app.command("create")
def create(
    image: Annotated[str, typer.Option(envvar="RUNPOD_TEMPLATE_IMAGE", help="The worker image.")],
    name: Annotated[str, typer.Option(help="Template name (unique per account).")] = (
        "visgate-worker"
    ),
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE for the worker; repeatable.")
    ] = None,
    container_disk_gb: Annotated[int, typer.Option(help="Container disk in GB.")] = 40,
    graphql_url: GraphqlUrl = DEFAULT_GRAPHQL_URL,
    rest_url: RestUrl = DEFAULT_REST_URL,
    api: Api = RunpodApi.graphql,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the requests it would send; change nothing.")
    ] = False,
) -> None:
    """Create or update the shared Runpod worker template; print RUNPOD_TEMPLATE_ID."""
    api_key = _api_key(required=not dry_run)
    worker_env = _parse_env(env or [])

    async def run() -> tuple[str | None, list[PlannedOperation]]:
        options = {
            "name": name,
            "image": image,
            "env": worker_env,
            "container_disk_gb": container_disk_gb,
            "api_key": api_key,
            "dry_run": dry_run,
        }
        if api is RunpodApi.rest:
            rest = RunpodRest(rest_url)
            try:
                return await ensure_shared_template_rest(rest, **options)
            finally:
                await rest.aclose()
        client = RunpodGraphQL(graphql_url)
        try:
            return await ensure_shared_template(client, **options)
        finally:
            await client.aclose()

    try:
        template_id, planned = asyncio.run(run())
    except VisgateError as exc:
        fail(exc.type, exc.message)
    if dry_run:
        typer.echo(f"# {rest_url}" if api is RunpodApi.rest else f"# POST {graphql_url}")
        for operation in planned:
            typer.echo(operation.render())
        verb = f"update template {template_id}" if template_id else "create a new template"
        typer.echo(f"# dry run: would {verb} named {name!r}; nothing was changed")
        return
    typer.echo(f"RUNPOD_TEMPLATE_ID={template_id}")


def gpus(
    graphql_url: GraphqlUrl = DEFAULT_GRAPHQL_URL,
    rest_url: RestUrl = DEFAULT_REST_URL,
    api: Api = RunpodApi.graphql,
) -> None:
    """The GPU types your Runpod account sees, smallest memory first (on REST v2 with their
    serverless pool, stock and price)."""
    api_key = _api_key()

    async def run() -> list[GpuType]:
        if api is RunpodApi.rest:
            rest = RunpodRest(rest_url)
            try:
                return await list_gpu_types_rest(rest, api_key=api_key)
            finally:
                await rest.aclose()
        client = RunpodGraphQL(graphql_url)
        try:
            return await list_gpu_types(client, api_key=api_key)
        finally:
            await client.aclose()

    try:
        types = asyncio.run(run())
    except VisgateError as exc:
        fail(exc.type, exc.message)
    table = Table("id", "name", "memory GB", "pool", "stock", "USD/h")
    for gpu in types:
        price = f"{gpu.price_per_hour:g}" if gpu.price_per_hour is not None else ""
        table.add_row(
            gpu.id,
            gpu.display_name,
            f"{gpu.memory_gb:g}",
            gpu.pool or "",
            gpu.availability or "",
            price,
        )
    console.print(table)
