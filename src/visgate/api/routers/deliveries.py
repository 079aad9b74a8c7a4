"""`GET /v1/deployments/{id}/deliveries`: the deployment's webhook deliveries, one per event,
with every attempt's answer code and the next retry: what a receiver's owner needs to see
why a webhook did not arrive."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id
from visgate.api.schemas import ERROR_RESPONSES
from visgate.domain.deployment import Deployment
from visgate.domain.records import WebhookDelivery
from visgate.kit import iso
from visgate.services import Services
from visgate.webhooks.events import EventType, delivery_id

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], responses=ERROR_RESPONSES)


def public_delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery as its owner sees it: never the signed body (the GET has the same data)."""
    return {
        "webhook_id": delivery.id,
        "event": delivery.event_type,
        "url": delivery.url,
        "state": delivery.state,
        "created_at": iso(delivery.created_at),
        "next_attempt_at": iso(delivery.due_at) if delivery.state == "pending" else None,
        "attempts": [
            {
                "at": iso(attempt.at),
                "status_code": attempt.status_code,
                "ok": attempt.ok,
                "duration_ms": attempt.duration_ms,
                "error": attempt.error,
            }
            for attempt in delivery.attempts
        ],
    }


async def deliveries_of(services: Services, dep: Deployment) -> list[dict[str, Any]]:
    """The deployment's deliveries as its owner sees them, oldest event first: the route's
    items and the console page's table."""
    ids = [delivery_id(dep.id, event) for event in EventType]
    found = await services.store.deliveries.get_many(ids, tenant=dep.tenant)
    return [public_delivery(d) for d in sorted(found, key=lambda d: d.created_at)]


@router.get("/{deployment_id}/deliveries")
async def deployment_deliveries(
    deployment_id: str, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    """Webhook deliveries of the deployment, oldest event first; empty without a webhook."""
    require_deployment_id(deployment_id)
    dep = await services.store.deployments.get(deployment_id, tenant=key.tenant)
    return {"deployment_id": dep.id, "items": await deliveries_of(services, dep)}
