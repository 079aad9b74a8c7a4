"""Operator commands of `visgate`: serve, worker, keys and sweep. They read the service's
own settings (the store, the provider) rather than calling its API."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from visgate.auth.api_keys import issue_key, revoke_key, tenant_limits
from visgate.cli.common import CLI_EXITS, console, fail
from visgate.domain.errors import VisgateError
from visgate.kit import iso
from visgate.logging import configure_logging
from visgate.orchestrator.runner import BackgroundRunner
from visgate.orchestrator.sweeper import sweep_accounts
from visgate.services import build_services
from visgate.settings import SettingsError, check_serving, load_settings

T = TypeVar("T")

keys_app = typer.Typer(help="Issue, list and revoke API keys (operator).", no_args_is_help=True)


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; turn any error into one `Type: message` line and an exit code, never
    a traceback (e.g. a VISGATE_DB_PATH whose folder cannot be made: FileNotFoundError)."""
    try:
        return asyncio.run(fn())  # type: ignore[arg-type]
    except CLI_EXITS:
        raise  # `fail()` inside the coroutine: already printed
    except SettingsError as exc:
        fail("SettingsError", str(exc), 2)
    except VisgateError as exc:
        fail(exc.type, exc.message)
    except Exception as exc:  # the last resort
        fail(type(exc).__name__, str(exc) or repr(exc))


async def with_services(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run `fn` on the services an operator command needs: the store and the settings, not
    the provider or hub clients it never calls."""
    settings = load_settings()
    configure_logging(settings.log_level)  # to stderr: stdout carries the command's output
    services = build_services(settings, provider=False, hub=False)
    try:
        return await fn(services)
    finally:
        await services.aclose()


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", envvar="PORT")] = 8080,
) -> None:
    """Run the control plane with its in-process reconciler."""
    import uvicorn  # the HTTP server and FastAPI load only for `serve`, not every command

    try:
        check_serving(load_settings())
    except SettingsError as exc:
        fail("SettingsError", str(exc), 2)
    uvicorn.run(
        "visgate.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # The app reads X-Forwarded-For itself, trusting only VISGATE_TRUSTED_PROXY_HOPS
        # entries; uvicorn's own reading would trust whatever a loopback peer sends.
        proxy_headers=False,
        # Cloud Run allows 10 s between SIGTERM and SIGKILL: open streams get 8.
        timeout_graceful_shutdown=8,
    )


def worker() -> None:
    """Run the reconciler only (no HTTP): for extra capacity beside `serve`."""

    async def main() -> None:
        settings = load_settings()
        check_serving(settings)
        configure_logging(settings.log_level)
        services = build_services(settings)
        runner = BackgroundRunner(services)
        await runner.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.stop()
        await services.aclose()

    run_async(main)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name for the key.")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant whose records the key sees (default: the name).")
    ] = None,
    max_deployments: Annotated[
        int | None,
        typer.Option(min=1, help="Active deployments allowed (default: TENANT_MAX_DEPLOYMENTS)."),
    ] = None,
    max_workers: Annotated[
        int | None,
        typer.Option(min=1, help="Summed max_workers allowed (default: TENANT_MAX_WORKERS)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Issue an API key and its webhook signing secret. Both are shown once."""
    issued = run_async(
        lambda: with_services(
            lambda s: issue_key(
                s, name, tenant, max_deployments=max_deployments, max_workers=max_workers
            )
        )
    )
    if as_json:
        print(
            json.dumps(
                {"api_key": issued.api_key, "webhook_secret": issued.webhook_secret, "name": name}
            )
        )
        return
    console.print(
        f"API key for [bold]{name}[/] (tenant {issued.tenant}); shown once, store it now:"
    )
    console.print(f"  api_key        {issued.api_key}", highlight=False)
    console.print(f"  webhook_secret {issued.webhook_secret}", highlight=False)


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (names, tenants and quotas; never the keys)."""

    async def read(services: Any) -> list[dict[str, Any]]:
        keys = await services.store.api_keys.list()
        return [
            {
                "name": k.name,
                "tenant": k.tenant,
                "created_at": iso(k.created_at),
                "revoked_at": iso(k.revoked_at),
                "max_deployments": tenant_limits(services, k).max_deployments,
                "max_workers": tenant_limits(services, k).max_workers,
            }
            for k in sorted(keys, key=lambda k: k.created_at)
        ]

    rows = run_async(lambda: with_services(read))
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("name", "tenant", "created", "revoked", "max deployments", "max workers")
    for row in rows:
        table.add_row(
            row["name"],
            row["tenant"],
            row["created_at"],
            row["revoked_at"] or "",
            str(row["max_deployments"]),
            str(row["max_workers"]),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: its requests answer 401 within seconds."""
    key = run_async(lambda: with_services(lambda s: revoke_key(s, name)))
    if key is None:
        fail("NotFoundError", f"no API key named {name!r}")
    console.print(f"revoked {name}")


def sweep_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
) -> None:
    """Delete provider endpoints named visgate-* whose deployment is gone or failed, and
    duplicates beside a live deployment's endpoint, on the operator's account and on every
    account a deployment brought (endpoints with no record: the operator's account only)."""

    async def main() -> list[Any]:
        settings = load_settings()
        services = build_services(settings, hub=False)
        try:
            if services.provider is None:
                fail("RunpodAPIError", "no provider configured")
            return await sweep_accounts(services, dry_run=dry_run, delete_unknown=True)
        finally:
            await services.aclose()

    orphans = run_async(main)
    verb = "would delete" if dry_run else "deleted"
    for orphan in orphans:
        console.print(f"{verb} {orphan.name} ({orphan.endpoint_id}): {orphan.reason}")
    console.print(f"{len(orphans)} orphan endpoint(s)")


def blocked_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List deployments whose teardown the provider keeps refusing: what may still bill,
    on which account, and why."""

    async def read(services: Any) -> list[dict[str, Any]]:
        return [
            {
                "deployment_id": b.id,
                "tenant": b.tenant,
                "status": b.deployment_status,
                "since": iso(b.since),
                "account": b.account,
                "left": b.left,
                "error": {"type": b.error_type, "message": b.error_message},
            }
            for b in await services.store.blocked_teardowns.all()
        ]

    rows = run_async(lambda: with_services(read))
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("deployment", "tenant", "since", "account", "left", "why")
    for row in rows:
        why = f"{row['error']['type']}: {row['error']['message']}"
        table.add_row(
            row["deployment_id"],
            row["tenant"],
            row["since"],
            row["account"],
            ", ".join(row["left"]),
            why,
        )
    console.print(table)
    console.print(f"{len(rows)} blocked teardown(s)")
