"""User-webhook delivery: a leased loop over delivery records, like the reconciler's.

Each attempt is signed afresh (new timestamp, same webhook-id), logged on the delivery and
on the deployment, and the next one is scheduled from `WEBHOOK_RETRY_SCHEDULE`. When the
schedule runs out on a `deployment.ready` event the deployment becomes `webhook_failed`;
its endpoint stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from visgate.domain.deployment import Deployment
from visgate.domain.errors import (
    DeploymentNotFoundError,
    LeaseLostError,
    SecretNotFoundError,
    StaleWriteError,
    VisgateError,
)
from visgate.domain.records import DeliveryAttemptLog, WebhookDelivery
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.orchestrator.backoff import STORE_TROUBLE
from visgate.services import Services
from visgate.webhooks.sender import new_delivery_client

log = get_logger(__name__)

SECRET_TTL_S = 300.0


class DeliveryWorker:
    def __init__(self, services: Services, *, owner: str, concurrency: int = 32) -> None:
        self.services = services
        self.owner = owner
        self.concurrency = concurrency
        self.lease_seconds = services.settings.delivery_lease_seconds
        self._client = new_delivery_client()
        self.secret_ttl_s = SECRET_TTL_S
        self._clock = time.monotonic
        self._secrets: dict[str, tuple[str, float]] = {}  # key id -> (secret, read at)
        self._running: set[asyncio.Task[None]] = set()
        self.wake = services.extras.setdefault("deliveries_wake", asyncio.Event())

    async def run_once(self) -> int:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self.services.store.deliveries.claim_due(
            self.owner, free, self.lease_seconds
        )
        for delivery in claimed:
            task = asyncio.create_task(self.attempt(delivery))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claimed)

    async def drain(self) -> None:
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def run_forever(self, stop: asyncio.Event) -> None:
        idle_wait = 0.05
        while not stop.is_set():
            self.wake.clear()
            try:
                claimed = await self.run_once()
            except STORE_TROUBLE as exc:
                log.warning("delivery_claim_failed", error_type=exc.type, error=exc.message)
                claimed = 0
            if claimed:
                idle_wait = 0.05
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=idle_wait)
            idle_wait = min(self.services.settings.poll_interval_seconds, idle_wait * 2)
        await self.drain()

    async def _signing_secret(self, key_id: str | None) -> str | None:
        """The API key's webhook secret, cached for `secret_ttl_s` (a rotated or deleted
        secret is noticed within that time). None when the key or its secret is gone."""
        if key_id is None:
            return None
        cached = self._secrets.get(key_id)
        if cached is not None and self._clock() - cached[1] < self.secret_ttl_s:
            return cached[0]
        key = await self.services.store.api_keys.by_hash(key_id)
        if key is None or key.webhook_secret_ref is None:
            self._secrets.pop(key_id, None)
            return None
        try:
            secret = await self.services.secrets.get(key.webhook_secret_ref)
        except SecretNotFoundError:
            self._secrets.pop(key_id, None)
            return None
        self._secrets[key_id] = (secret, self._clock())
        return secret

    async def attempt(self, delivery: WebhookDelivery) -> None:
        """One try. Every outcome is written to the delivery, a failure to read the signing
        secret included, so it follows its schedule instead of coming back with its lease."""
        try:
            secret = await self._signing_secret(delivery.key_id)
        except Exception as exc:
            await self._secret_failed(delivery, exc)
            return
        if secret is None:
            log.warning("delivery_without_secret", delivery_id=delivery.id)
            outcome = "no signing secret for the API key that created it (key deleted?)"
            await self._give_up(delivery, outcome)
            return
        await self._send(delivery, secret)

    async def _secret_failed(self, delivery: WebhookDelivery, exc: Exception) -> None:
        """A refusal ends the delivery; an outage (or a bug) counts as a failed try."""
        error = exc.type if isinstance(exc, VisgateError) else type(exc).__name__
        if isinstance(exc, VisgateError) and not exc.transient:
            log.warning("delivery_secret_refused", delivery_id=delivery.id, error=error)
            outcome = f"webhook {delivery.event_type} not sent: signing secret unreadable ({error})"
            await self._give_up(delivery, outcome)
            return
        log.warning("delivery_secret_unavailable", delivery_id=delivery.id, error=error)
        entry = DeliveryAttemptLog(
            at=time.time(), ok=False, error=f"signing secret unavailable ({error})"
        )
        await self._record(delivery, entry, retry_after_s=None, disable=False)

    async def _give_up(self, delivery: WebhookDelivery, outcome: str) -> None:
        delivery.state, delivery.due_at = "failed", None
        await self._finish(delivery, outcome, exhausted=True)

    async def _send(self, delivery: WebhookDelivery, secret: str) -> None:
        from visgate.webhooks.sender import deliver_once

        result = await deliver_once(
            self._client,
            url=delivery.url,
            secret=secret,
            msg_id=delivery.id,
            body=delivery.body.encode(),
            allow_private=self.services.settings.webhook_allow_private_urls,
        )
        log_entry = DeliveryAttemptLog(
            at=time.time(),
            status_code=result.status_code,
            ok=result.ok,
            duration_ms=result.duration_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        await self._record(
            delivery, log_entry, retry_after_s=result.retry_after_s, disable=result.disable
        )

    async def _record(
        self,
        delivery: WebhookDelivery,
        entry: DeliveryAttemptLog,
        *,
        retry_after_s: float | None,
        disable: bool,
    ) -> None:
        """Log the attempt and schedule the next one (or end the delivery)."""
        from visgate.webhooks.schedule import next_delay

        now = entry.at
        delivery.attempts.append(entry)
        n = len(delivery.attempts)
        if entry.ok:
            delivery.state, delivery.due_at = "delivered", None
            took = f" in {entry.duration_ms:.0f} ms" if entry.duration_ms is not None else ""
            await self._finish(delivery, f"webhook {delivery.event_type} delivered (try {n}){took}")
            return
        schedule = self.services.settings.webhook_retry_schedule
        delay = None if disable else next_delay(schedule, n, retry_after_s)
        why = entry.error or f"HTTP {entry.status_code}"
        if delay is None:
            await self._give_up(
                delivery, f"webhook {delivery.event_type} failed after {n} tries: {why}"
            )
        else:
            delivery.due_at = now + delay
            await self._finish(
                delivery,
                f"webhook {delivery.event_type} try {n} failed ({why}); next in {delay:.0f} s",
            )

    async def _finish(
        self, delivery: WebhookDelivery, message: str, *, exhausted: bool = False
    ) -> None:
        token = delivery.lease_token
        delivery.lease_owner = delivery.lease_token = delivery.lease_expires_at = None
        try:
            await self.services.store.deliveries.save(delivery, lease_token=token)
        except (LeaseLostError, StaleWriteError):
            log.info("delivery_lease_lost", delivery_id=delivery.id)
            return
        level = "warning" if exhausted else "info"
        now = time.time()

        def note(dep: Deployment) -> None:
            dep.log(now, message, level=level)
            if (
                exhausted
                and delivery.event_type == "deployment.ready"
                and dep.status is Status.ready
            ):
                dep.move_to(
                    Status.webhook_failed, now, "webhook retries exhausted; endpoint stays up"
                )

        with contextlib.suppress(DeploymentNotFoundError):
            await self.services.store.deployments.mutate(delivery.deployment_id, note)

    async def aclose(self) -> None:
        await self._client.aclose()
