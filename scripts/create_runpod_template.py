#!/usr/bin/env python3
"""Create or update the operator's shared Runpod worker template and print its id.

    RUNPOD_API_KEY=... RUNPOD_TEMPLATE_IMAGE=ghcr.io/org/worker:1.0 \\
        python scripts/create_runpod_template.py [--api graphql|rest] [--name visgate-worker] [--env K=V ...] [--dry-run]

Prints `RUNPOD_TEMPLATE_ID=<id>` (ready for an .env file). Running it again updates the
template of that name in place. `--dry-run` prints the requests it would send (key
redacted) and changes nothing. The same as `visgate template create` (visgate.cli.templates).
"""

from __future__ import annotations

import typer

from visgate.cli.templates import create

if __name__ == "__main__":
    typer.run(create)
