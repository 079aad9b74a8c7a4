"""The process entry point: the API with the reconciler, the webhook deliveries and the
sweeper running beside it (`uvicorn visgate.main:create_app --factory`, and `visgate serve`).

The composition root: the only module that wires the API to the orchestrator.
"""

from __future__ import annotations

from fastapi import FastAPI

from visgate.api import app
from visgate.orchestrator.runner import BackgroundRunner


def create_app() -> FastAPI:
    """The app read from the environment, its background loops on per the settings."""
    return app.create_app(background=BackgroundRunner)
