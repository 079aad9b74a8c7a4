"""`GET /v1/deployments/{id}/cost`: what a deployment costs now and what it has cost.

`price_per_hour` is the serving pool's unit price times the workers billed now (read from
the endpoint's health; the last sample when the read fails, none once the endpoint is gone).
`spend` is Runpod's billed figure where the backend can read one (REST v2 billing), else the
meter's estimate (domain/meter.py). Billing lags usage by up to a few hours, and a deployment
that brought its own Runpod key loses that key at teardown, so a deleted one reports the
estimate where the billed figure cannot be read any more.
"""

from __future__ import annotations

from typing import Any

from visgate.cost.pricing import billed_workers, unit_price_per_hour
from visgate.deployments.service import provider_key
from visgate.domain.deployment import Deployment
from visgate.domain.errors import VisgateError
from visgate.domain.status import Status
from visgate.kit import iso
from visgate.logging import get_logger
from visgate.services import Services

log = get_logger(__name__)


def _ended_at(dep: Deployment) -> float | None:
    """When it was deleted, where its spend stops; None while it still exists."""
    if dep.status is not Status.deleted:
        return None
    return next((e.at for e in reversed(dep.history) if e.status is Status.deleted), None)


async def _workers_now(services: Services, dep: Deployment, key: str | None) -> int:
    if dep.status is Status.deleting or not dep.counts_against_quota:
        return 0  # being torn down, or nothing left in the cloud
    fallback = dep.meter.workers if dep.meter else 0
    if not dep.endpoint_id or services.provider is None or key is None:
        return fallback
    try:
        health = await services.provider.endpoint_health(dep.endpoint_id, api_key=key)
    except VisgateError as exc:
        log.info("cost_health_unavailable", error_type=exc.type)
        return fallback
    return billed_workers(health.workers)


async def _billed(services: Services, dep: Deployment, key: str | None) -> float | None:
    if not dep.endpoint_id or services.provider is None or key is None:
        return None
    try:
        return await services.provider.endpoint_spend(
            dep.endpoint_id, api_key=key, since=dep.created_at
        )
    except VisgateError as exc:
        log.info("cost_billing_unavailable", error_type=exc.type)
        return None


async def _key(services: Services, dep: Deployment) -> str | None:
    """The key the deployment's calls use; None once its own key is gone (after teardown)."""
    try:
        return await provider_key(services, dep)
    except VisgateError:
        return None


async def cost_report(services: Services, dep: Deployment, now: float) -> dict[str, Any]:
    key = await _key(services, dep) if dep.endpoint_id else None
    workers = await _workers_now(services, dep, key)
    unit = unit_price_per_hour(dep, services.catalogue)
    until = _ended_at(dep) or now
    billed = await _billed(services, dep, key)
    if billed is not None:
        spend, source = billed, "billed"
    else:
        spend, source = (dep.meter.spend_at(until) if dep.meter else 0.0), "estimated"
    return {
        "deployment_id": dep.id,
        "currency": "USD",
        "price_per_hour": round(unit * workers, 6) if unit is not None else None,
        "workers": workers,
        "spend": round(spend, 6),
        "spend_source": source,
        "since": iso(dep.created_at),
        "until": iso(until),
    }
