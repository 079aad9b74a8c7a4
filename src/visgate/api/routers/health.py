"""Liveness and readiness: unauthenticated, for the platform's probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

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
