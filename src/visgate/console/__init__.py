"""The web console: server-rendered pages under `/console`, their styles and scripts (shipped
in this package, nothing fetched from elsewhere). Imports the API's dependencies and the
deployments service, never the orchestrator."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve the console on `app`: its pages, its static files, and `/` leading there."""
    from visgate.console import catalog, deployments, sign_in

    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    for module in (sign_in, deployments, catalog):
        app.include_router(module.router)
