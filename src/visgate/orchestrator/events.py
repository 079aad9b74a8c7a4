"""Turn a record's pending webhook events into delivery records.

Delivery ids are derived from the deployment and event, so queueing the same event twice
(after a crash, or from both the callback route and the reconciler) makes one delivery.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from visgate.domain.deployment import Deployment, iso
from visgate.domain.records import WebhookDelivery

if TYPE_CHECKING:
    from visgate.services import Services


def delivery_id(deployment_id: str, event_type: str) -> str:
    return f"msg_{deployment_id}_{event_type.removeprefix('deployment.')}"


def event_body(event_type: str, dep: Deployment, now: float) -> str:
    """Standard Webhooks payload convention: `{type, timestamp, data}`."""
    data = dep.public()
    data.pop("logs", None)
    return json.dumps(
        {"type": event_type, "timestamp": iso(now), "data": data}, separators=(",", ":")
    )


async def queue_pending_events(services: Services, dep: Deployment) -> None:
    if not dep.user_webhook_url:
        return
    now = time.time()
    for event_type in dep.pending_events:
        await services.store.add_delivery(
            WebhookDelivery(
                id=delivery_id(dep.id, event_type),
                deployment_id=dep.id,
                tenant=dep.tenant,
                key_id=dep.key_id,
                event_type=event_type,
                url=dep.user_webhook_url,
                body=event_body(event_type, dep, now),
                created_at=now,
                due_at=now,
            )
        )
    services.poke_deliveries()
