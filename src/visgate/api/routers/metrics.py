"""`GET /metrics`: Prometheus text, for the operator's scraper only.

Who may scrape: with `VISGATE_METRICS_TOKEN` set, whoever sends it as a bearer token (a
Prometheus `authorization` block, from anywhere); unset, only a scraper on this machine
(the connecting peer is loopback and no proxy forwarded the request), which is how a
Cloud Run sidecar collector and a local run reach it. Everyone else gets 401 or 403, so
the public never reads the install's totals.

Deployment counts by status cost a scan on SQLite and one count query per status on
Firestore, so they are read at most once per `COUNTS_TTL_S` per process, whatever the
scrape rate, and a second scrape during a refresh waits for it instead of starting another.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from visgate.api.deps import ServicesDep
from visgate.api.schemas import ErrorEnvelope
from visgate.domain.errors import ForbiddenError, UnauthorizedError, VisgateError
from visgate.services import Services

router = APIRouter(tags=["operations"])

COUNTS_TTL_S = 30.0


class StoreGauges:
    """The gauges read from the store, refreshed at most once per `ttl_s`."""

    def __init__(
        self,
        deployments: Gauge,
        blocked: Gauge,
        *,
        ttl_s: float = COUNTS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deployments = deployments
        self.blocked = blocked
        self.ttl_s = ttl_s
        self.clock = clock
        self._fresh_until = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self, services: Services) -> None:
        """Read the counts if the last reading is older than `ttl_s`. A store error keeps
        the last figures and tries again on the next scrape."""
        if self.clock() < self._fresh_until:
            return
        async with self._lock:
            if self.clock() < self._fresh_until:
                return  # another scrape refreshed while this one waited
            try:
                counts = await services.store.deployments.count_by_status()
                blocked = await services.store.blocked_teardowns.count()
            except VisgateError:
                return
            self.deployments.clear()
            for status, n in counts.items():
                self.deployments.labels(status).set(n)
            self.blocked.set(blocked)
            self._fresh_until = self.clock() + self.ttl_s


def _is_local_scrape(request: Request) -> bool:
    peer = request.scope.get("state", {}).get("peer")
    if peer is None or "x-forwarded-for" in request.headers:
        return False
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def check_scraper(request: Request, token: str | None) -> None:
    """Raise unless the request may read the metrics (see the module's docstring)."""
    if token is None:
        if not _is_local_scrape(request):
            raise ForbiddenError(
                "metrics are served only to a scraper on this machine; set "
                "VISGATE_METRICS_TOKEN to scrape from elsewhere"
            )
        return
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        raise UnauthorizedError(
            "metrics need 'Authorization: Bearer <VISGATE_METRICS_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get(
    "/metrics",
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
        401: {"model": ErrorEnvelope, "description": "Missing or wrong metrics token"},
        403: {"model": ErrorEnvelope, "description": "Not a local scrape, and no token set"},
    },
)
async def metrics(request: Request, services: ServicesDep) -> Response:
    token = services.settings.metrics_token
    check_scraper(request, token.get_secret_value() if token is not None else None)
    await request.app.state.store_gauges.refresh(services)
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
