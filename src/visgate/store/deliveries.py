"""`DeliveryRepository`: pending and finished webhook deliveries, claimed under a lease by
the delivery loop so that a restart resumes them."""

from __future__ import annotations

import time
from collections.abc import Callable

from visgate.domain.errors import ConflictError
from visgate.domain.records import WebhookDelivery
from visgate.store.base import DocumentBackend, hold_lease, lease_fields
from visgate.store.cursors import listed_doc

DELIVERIES = "webhook_deliveries"


class DeliveryRepository:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    async def add(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Queue `delivery`; one queued before under the same id (the same event) is kept."""
        try:
            stored = await self.backend.insert(DELIVERIES, listed_doc(delivery))
        except ConflictError:
            existing = await self.backend.get(DELIVERIES, delivery.id)
            if existing is None:
                raise
            stored = existing
        return WebhookDelivery.model_validate(stored)

    async def get_many(self, ids: list[str], *, tenant: str) -> list[WebhookDelivery]:
        """The deliveries with these ids that belong to `tenant`, in the order asked (ids
        are derived from a deployment and an event, so a deployment's deliveries are a few
        reads, with no query)."""
        found = []
        for delivery_id in ids:
            doc = await self.backend.get(DELIVERIES, delivery_id)
            if doc is not None and doc.get("tenant") == tenant:
                found.append(WebhookDelivery.model_validate(doc))
        return found

    async def add_leased(
        self, delivery: WebhookDelivery, owner: str, lease_seconds: float
    ) -> WebhookDelivery | None:
        """Queue `delivery` already leased to `owner`, as `claim_due` would lease it (a
        fresh token, the lease's end as its due time), in one write: the process that
        queues it sends it at once, and if that process dies the delivery comes due when
        the lease runs out. None when the event was queued before (nothing is written;
        its holder or the delivery loop sends it)."""
        until = self.clock() + lease_seconds
        leased = delivery.model_copy(update=lease_fields(delivery.id, owner, until))
        try:
            stored = await self.backend.insert(DELIVERIES, listed_doc(leased))
        except ConflictError:
            return None
        return WebhookDelivery.model_validate(stored)

    async def claim_due(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[WebhookDelivery]:
        docs = await self.backend.claim_due(
            DELIVERIES, owner=owner, now=self.clock(), limit=limit, lease_seconds=lease_seconds
        )
        return [WebhookDelivery.model_validate(d) for d in docs]

    async def extend_lease(self, delivery: WebhookDelivery, lease_seconds: float) -> bool:
        """Keep holding `delivery` for `lease_seconds` from now (a slow receiver must not let
        another instance send it again); False when its lease was lost."""
        return await hold_lease(
            self.backend,
            DELIVERIES,
            delivery.id,
            delivery.lease_token,
            until=self.clock() + lease_seconds,
        )

    async def save(self, delivery: WebhookDelivery, *, lease_token: str | None) -> WebhookDelivery:
        stored = await self.backend.replace(
            DELIVERIES,
            listed_doc(delivery),
            expected_version=delivery.version,
            lease_token=lease_token,
        )
        return WebhookDelivery.model_validate(stored)
