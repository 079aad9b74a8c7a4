"""Liveness, readiness and Prometheus metrics: unauthenticated, for the platform."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from visgate.api.deps import ServicesDep
from visgate.domain.errors import VisgateError

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Process is up. No I/O, so a slow store never restarts a healthy container."""
    return {"status": "ok"}


@router.get("/readiness")
async def readiness(services: ServicesDep) -> JSONResponse:
    """Ready to serve: the record store answers."""
    try:
        await services.store.ping()
    except VisgateError as exc:
        return JSONResponse(
            {"status": "unavailable", "store": services.settings.store.value, "error": exc.message},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "store": services.settings.store.value})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, services: ServicesDep) -> Response:
    gauge = request.app.state.deployments_gauge
    try:
        counts = await services.store.deployments.count_by_status()
    except VisgateError:
        counts = None
    if counts is not None:
        gauge.clear()
        for status, n in counts.items():
            gauge.labels(status).set(n)
    with contextlib.suppress(VisgateError):
        request.app.state.blocked_gauge.set(await services.store.blocked_teardowns.count())
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
