"""The FastAPI application factory (`uvicorn visgate.api.app:create_app --factory`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge

from visgate import __version__
from visgate.api.deps import AUTH_FAILURES_PER_MINUTE
from visgate.api.errors import error_response, install_error_handlers
from visgate.api.middleware import BodyTooLarge, RequestContextMiddleware, metric_families
from visgate.api.ratelimit import MemoryRateLimiter, StoreRateLimiter
from visgate.api.routers import catalog, cost, deployments, events, health, internal, jobs, logs
from visgate.logging import configure_logging
from visgate.services import Services, build_services
from visgate.settings import Settings, StoreKind, check_serving, load_settings


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    run_reconciler: bool | None = None,
) -> FastAPI:
    """Wire the app. With no arguments it reads the environment (the Cloud Run entry point)."""
    if services is not None:
        settings = services.settings
    settings = settings or load_settings()
    check_serving(settings)
    configure_logging(settings.log_level)
    run_loop = settings.reconciler_enabled if run_reconciler is None else run_reconciler

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or build_services(settings)
        app.state.services = svc
        app.state.rate_limiter = (
            StoreRateLimiter(svc.store.rate_limits, settings.rate_limit_per_minute)
            if settings.store is StoreKind.firestore
            else MemoryRateLimiter(settings.rate_limit_per_minute)
        )
        runner: Any = None
        if run_loop:
            from visgate.orchestrator.runner import BackgroundRunner

            runner = BackgroundRunner(svc)
            await runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            if services is None:
                await svc.aclose()

    app = FastAPI(
        title="Visgate Deploy",
        version=__version__,
        summary="Deploy a Hugging Face model to a Runpod serverless GPU endpoint.",
        lifespan=lifespan,
    )
    registry = CollectorRegistry()
    requests, latency = metric_families(registry)
    app.state.metrics_registry = registry
    app.state.deployments_gauge = Gauge(
        "visgate_deployments", "Deployments by status.", ["status"], registry=registry
    )
    app.state.auth_cache = {}
    app.state.auth_misses = {}
    app.state.auth_failures = MemoryRateLimiter(AUTH_FAILURES_PER_MINUTE)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        requests=requests,
        latency=latency,
    )
    install_error_handlers(app)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(
            request,
            413,
            "PayloadTooLargeError",
            f"request body over {settings.max_body_bytes} bytes",
        )

    for module in (health, deployments, logs, cost, events, jobs, catalog, internal):
        app.include_router(module.router)
    return app
