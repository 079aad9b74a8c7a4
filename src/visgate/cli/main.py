"""The `visgate` command: every subcommand, wired in one place.

Operator commands (serve, worker, keys, sweep) live in `operator.py`, the Runpod ones
(template, gpus) in `templates.py`; the commands that call the service through the SDK
(deploy, list, status, delete, logs, cost) in `deployments.py`, jobs in `jobs.py`.
"""

from __future__ import annotations

import typer

from visgate.cli import deployments, operator, templates
from visgate.cli.jobs import jobs_app

app = typer.Typer(
    name="visgate",
    help="Visgate Deploy: Hugging Face models to Runpod serverless GPU endpoints.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Operator: the service itself and its keys.
app.command("serve")(operator.serve)
app.command("worker")(operator.worker)
app.add_typer(operator.keys_app, name="keys")
app.command("sweep")(operator.sweep_command)
app.command("blocked")(operator.blocked_command)
app.add_typer(templates.template_app, name="template")
app.command("gpus")(templates.gpus)
app.command("runpod-gpus", hidden=True)(templates.gpus)  # the name before `gpus`; kept for scripts

# Client: one deployment's life through the public API.
app.command("deploy")(deployments.deploy)
app.command("list")(deployments.list_command)
app.command("status")(deployments.status_command)
app.command("delete")(deployments.delete_command)
app.command("logs")(deployments.logs_command)
app.command("cost")(deployments.cost_command)
app.add_typer(jobs_app, name="jobs")
