"""The FastAPI application factory. The process entry point (`visgate.main`) passes in the
background loops, so the API itself never imports the orchestrator."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge

from visgate import __version__, console
from visgate.api.client_address import ClientAddressMiddleware
from visgate.api.deps import AUTH_FAILURES_PER_MINUTE
from visgate.api.errors import error_response, install_error_handlers
from visgate.api.middleware import BodyTooLarge, RequestContextMiddleware, metric_families
from visgate.api.ratelimit import MemoryRateLimiter, StoreRateLimiter
from visgate.api.routers import (
    catalog,
    cost,
    deliveries,
    deployments,
    events,
    health,
    internal,
    jobs,
    logs,
    metrics,
)
from visgate.api.routers.metrics import StoreGauges
from visgate.api.streams import EventStreams
from visgate.logging import configure_logging, get_logger
from visgate.services import Services, build_services
from visgate.settings import Settings, StoreKind, check_serving, load_settings

log = get_logger(__name__)


class Background(Protocol):
    """Work the process runs beside the API for as long as the app lives."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _freeze_startup_objects() -> None:
    """Keep what start-up made (modules, schemas, the wired services: 100,000+ objects)
    out of every later garbage collection: a full collection walks all of them, 40-50 ms
    with the event loop stopped, and shows as the p99 of every request in flight."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    background: Callable[[Services], Background] | None = None,
    run_reconciler: bool | None = None,
) -> FastAPI:
    """Wire the app; with no settings or services it reads the environment. `background`
    builds what runs beside the API (the reconciler and the webhook deliveries) when the
    settings or `run_reconciler` turn it on."""
    if services is not None:
        settings = services.settings
    settings = settings or load_settings()
    check_serving(settings)
    configure_logging(settings.log_level)
    run_loop = settings.reconciler_enabled if run_reconciler is None else run_reconciler
    if run_loop and background is None:
        # Nothing would move deployments past `validating`: say so rather than look healthy.
        log.warning("background_not_started", hint="serve visgate.main:create_app")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or build_services(settings)
        app.state.services = svc
        app.state.rate_limiter = (
            StoreRateLimiter(svc.store.rate_limits, settings.rate_limit_per_minute)
            if settings.store is StoreKind.firestore
            else MemoryRateLimiter(settings.rate_limit_per_minute)
        )
        runner = background(svc) if run_loop and background is not None else None
        if runner is not None:
            await runner.start()
        _freeze_startup_objects()
        try:
            yield
        finally:
            await app.state.event_streams.aclose()
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
    app.state.store_gauges = StoreGauges(
        Gauge("visgate_deployments", "Deployments by status.", ["status"], registry=registry),
        Gauge(
            "visgate_teardowns_blocked",
            "Deployments whose teardown the provider keeps refusing (something may still bill).",
            registry=registry,
        ),
    )
    # The auth cache's clock; a test moves it instead of sleeping through the window.
    app.state.auth_clock = time.monotonic
    app.state.auth_cache = {}
    app.state.auth_misses = {}
    app.state.auth_failures = MemoryRateLimiter(AUTH_FAILURES_PER_MINUTE)
    # Open `/events` streams and their shared store watchers; per instance, in memory.
    app.state.event_streams = EventStreams(
        settings.event_streams_per_key, settings.event_streams_max
    )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        requests=requests,
        latency=latency,
    )
    # Added last, so it runs first: every later layer sees the client the proxies report.
    app.add_middleware(ClientAddressMiddleware, hops=settings.trusted_proxy_hops)
    install_error_handlers(app)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(
            request,
            413,
            "PayloadTooLargeError",
            f"request body over {settings.max_body_bytes} bytes",
        )

    for module in (
        health,
        metrics,
        deployments,
        logs,
        cost,
        deliveries,
        events,
        jobs,
        catalog,
        internal,
    ):
        app.include_router(module.router)
    console.install(app)
    return app
