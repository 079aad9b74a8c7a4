"""`visgate cost <id>`: what a deployment costs now and has cost, for people or (--json)
scripts."""

from __future__ import annotations

import typer
from rich.markup import escape

from visgate.cli_client import JsonOpt, _emit, _session, console


def cost_command(deployment_id: str, as_json: JsonOpt = False) -> None:
    """Price per hour of the workers running now, and the spend since creation (USD)."""
    with _session() as client:
        cost = client.cost(deployment_id)
    if as_json:
        _emit(cost)
        return
    price = cost["price_per_hour"]
    per_hour = "unknown (unpriced pool)" if price is None else f"${price:.4f}/h"
    source = "billed by Runpod" if cost["spend_source"] == "billed" else "estimated"
    workers = f"{cost['workers']} worker" + ("" if cost["workers"] == 1 else "s")
    console.print(
        f"{escape(cost['deployment_id'])}: {per_hour} now ({workers}); "
        f"spent ${cost['spend']:.4f} ({source}) from {escape(cost['since'])}"
        f" to {escape(cost['until'])}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("cost")(cost_command)
