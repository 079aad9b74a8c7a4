"""User-webhook delivery: a leased loop (leased_loop.py) over delivery records.

Each attempt is signed afresh (new timestamp, same webhook-id), logged on the delivery and
on the deployment, and the next one is scheduled from `WEBHOOK_RETRY_SCHEDULE`. When the
schedule runs out on a `deployment.ready` event the deployment becomes `webhook_failed`;
its endpoint stays up. A stop waits for the sends in flight (each is bounded by its
timeout): cancelling one would send it again from another instance.

While the loop runs it also takes new deliveries straight from the path that queues them
(`Services.send_delivery_now`): the record is written already leased to this worker and
its send starts at once, the same task a claim would start, so a `ready` webhook waits
for neither the loop's wake-up nor a claim queued behind other store work. The record is
still the outbox: if this process dies, its lease runs out and any loop sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

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
from visgate.orchestrator.leased_loop import LeasedLoop
from visgate.services import Services
from visgate.webhooks.schedule import next_delay
from visgate.webhooks.sender import deliver_once, new_delivery_client

log = get_logger(__name__)

SECRET_TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one try came to: a logged try (sent, or the signing secret was unavailable),
    or a reason to end the delivery without one."""

    entry: DeliveryAttemptLog | None = None
    retry_after_s: float | None = None
    disable: bool = False  # the receiver said never again (410 Gone)
    give_up: str | None = None


class DeliveryWorker(LeasedLoop[WebhookDelivery, Attempt]):
    name = "deliveries"
    finish_on_stop = True

    def __init__(self, services: Services, *, owner: str) -> None:
        settings = services.settings
        super().__init__(
            owner=owner,
            concurrency=settings.delivery_concurrency,
            lease_seconds=settings.delivery_lease_seconds,
            poll_interval=settings.poll_interval_seconds,
            wake=services.wakes.deliveries,
        )
        self.services = services
        self._client = new_delivery_client()
        self.secret_ttl_s = SECRET_TTL_S
        self._clock = time.monotonic
        self._secrets: dict[str, tuple[str, float]] = {}  # key id -> (secret, read at)
        self._taking = False  # takes hand-overs: only while `run_forever` runs

    async def run_forever(self, stop: asyncio.Event) -> None:
        """The loop, with this worker registered as the process's direct sender."""
        self._taking = True
        self.services.delivery_handoff = self.send_now
        await super().run_forever(stop)

    async def shutdown(self) -> None:
        """Take no more hand-overs, then let the sends in flight finish."""
        self._taking = False
        if self.services.delivery_handoff == self.send_now:
            self.services.delivery_handoff = None
        await super().shutdown()

    async def send_now(self, delivery: WebhookDelivery) -> bool:
        """Write a new delivery leased to this worker and start sending it; False (nothing
        written) when the worker is full or stopped, so the caller queues it for a claim.
        An event queued before is left to whoever holds it, or to this loop's next claim."""
        if not self._taking or self.free <= 0:
            return False
        with self.holding_slot():
            leased = await self.services.store.deliveries.add_leased(
                delivery, self.owner, self.lease_seconds
            )
        if leased is None:
            self.wake.set()
        elif self._taking:
            self.start(leased)
        else:  # stopped while it was written: hand it back, due now, to any instance
            leased.due_at = self.services.store.deliveries.clock()
            await self.release(leased)
        return True

    async def claim(self, limit: int) -> list[WebhookDelivery]:
        return await self.services.store.deliveries.claim_due(self.owner, limit, self.lease_seconds)

    async def extend(self, item: WebhookDelivery) -> bool:
        return await self.services.store.deliveries.extend_lease(item, self.lease_seconds)

    async def release(self, item: WebhookDelivery) -> None:
        """Clear our lease; the delivery keeps its due time. Best effort."""
        token = item.lease_token
        item.lease_owner = item.lease_token = item.lease_expires_at = None
        try:
            await self.services.store.deliveries.save(item, lease_token=token)
        except Exception as exc:  # the lease simply runs out instead
            log.info("delivery_release_failed", delivery_id=item.id, error=type(exc).__name__)

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

    async def work(self, item: WebhookDelivery) -> Attempt:
        """One try. A failure to read the signing secret is an outcome too, so the delivery
        follows its schedule instead of coming back with its lease."""
        try:
            secret = await self._signing_secret(item.key_id)
        except Exception as exc:
            return _secret_failed(item, exc)
        if secret is None:
            log.warning("delivery_without_secret", delivery_id=item.id)
            return Attempt(
                give_up="no signing secret for the API key that created it (key deleted?)"
            )
        result = await deliver_once(
            self._client,
            url=item.url,
            secret=secret,
            msg_id=item.id,
            body=item.body.encode(),
            allow_private=self.services.settings.webhook_allow_private_urls,
            tenant=item.tenant,
        )
        entry = DeliveryAttemptLog(
            at=time.time(),
            status_code=result.status_code,
            ok=result.ok,
            duration_ms=result.duration_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        return Attempt(entry, retry_after_s=result.retry_after_s, disable=result.disable)

    async def settle(self, item: WebhookDelivery, outcome: Attempt) -> None:
        """Log the attempt and schedule the next one (or end the delivery)."""
        if outcome.entry is None:
            await self._give_up(item, outcome.give_up or "given up")
            return
        entry = outcome.entry
        item.attempts.append(entry)
        n = len(item.attempts)
        if entry.ok:
            item.state, item.due_at = "delivered", None
            took = f" in {entry.duration_ms:.0f} ms" if entry.duration_ms is not None else ""
            await self._finish(item, f"webhook {item.event_type} delivered (try {n}){took}")
            return
        schedule = self.services.settings.webhook_retry_schedule
        delay = None if outcome.disable else next_delay(schedule, n, outcome.retry_after_s)
        why = entry.error or f"HTTP {entry.status_code}"
        if delay is None:
            await self._give_up(item, f"webhook {item.event_type} failed after {n} tries: {why}")
        else:
            item.due_at = entry.at + delay
            await self._finish(
                item, f"webhook {item.event_type} try {n} failed ({why}); next in {delay:.0f} s"
            )

    async def _give_up(self, delivery: WebhookDelivery, outcome: str) -> None:
        delivery.state, delivery.due_at = "failed", None
        await self._finish(delivery, outcome, exhausted=True)

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


def _secret_failed(delivery: WebhookDelivery, exc: Exception) -> Attempt:
    """A refusal ends the delivery; an outage (or a bug) counts as a failed try."""
    error = exc.type if isinstance(exc, VisgateError) else type(exc).__name__
    if isinstance(exc, VisgateError) and not exc.transient:
        log.warning("delivery_secret_refused", delivery_id=delivery.id, error=error)
        return Attempt(
            give_up=f"webhook {delivery.event_type} not sent: signing secret unreadable ({error})"
        )
    log.warning("delivery_secret_unavailable", delivery_id=delivery.id, error=error)
    return Attempt(
        DeliveryAttemptLog(at=time.time(), ok=False, error=f"signing secret unavailable ({error})")
    )
