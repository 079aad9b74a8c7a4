"""The events we send and their payload, in the Standard Webhooks shape `{type, timestamp, data}`.

The body is built once, when the event is queued, and stored with its id: every retry sends
the same bytes under the same `webhook-id`, so receivers can deduplicate. The id is derived
from the deployment and the event, so queueing the same event twice (after a crash, or from
both the callback route and the reconciler) makes one delivery.
"""

from __future__ import annotations

import json
from enum import StrEnum

from visgate.domain.deployment import Deployment
from visgate.domain.records import WebhookDelivery
from visgate.kit import iso


class EventType(StrEnum):
    ready = "deployment.ready"
    failed = "deployment.failed"
    deleted = "deployment.deleted"
    # The provider keeps refusing the teardown: what may be left, on which account, why.
    teardown_blocked = "deployment.teardown_blocked"


# Fields of the deployment's public shape left out of the payload: the log grows with every
# step and retry, and receivers should stay well under the spec's ~20 KB advice.
_OMITTED_FIELDS = ("logs",)


def delivery_id(deployment_id: str, event_type: EventType | str) -> str:
    """The `webhook-id` of one event of one deployment: URL-safe, no `.` (it is signed)."""
    return f"msg_{deployment_id}_{EventType(event_type).value.removeprefix('deployment.')}"


def event_body(event_type: EventType | str, dep: Deployment, now: float) -> str:
    """The payload's exact text; `now` (unix seconds) is when the event happened."""
    data = {k: v for k, v in dep.public().items() if k not in _OMITTED_FIELDS}
    payload = {"type": EventType(event_type).value, "timestamp": iso(now), "data": data}
    return json.dumps(payload, separators=(",", ":"))


def build_delivery(
    event_type: EventType | str, dep: Deployment, url: str, now: float
) -> WebhookDelivery:
    """The delivery record for one event to `url`: its id, signer and the bytes every retry sends."""
    return WebhookDelivery(
        id=delivery_id(dep.id, event_type),
        deployment_id=dep.id,
        tenant=dep.tenant,
        key_id=dep.key_id,
        event_type=EventType(event_type).value,
        url=url,
        body=event_body(event_type, dep, now),
        created_at=now,
        due_at=now,
    )
