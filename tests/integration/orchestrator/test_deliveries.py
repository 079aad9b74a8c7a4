"""A webhook whose signing secret cannot be read follows its schedule like any failed try
(a store outage) or ends at once with the reason on the record (the secret is gone or
refused); a deleted secret is noticed within the cache's TTL."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.orchestrator.conftest import Plane
from tests.support.receivers import WebhookReceiver, webhook_receiver
from visgate.auth.api_keys import IssuedKey, issue_key
from visgate.domain.deployment import Deployment
from visgate.domain.errors import SecretPermissionError, SecretStoreUnavailableError
from visgate.domain.records import hash_api_key
from visgate.domain.status import Status
from visgate.orchestrator.deliveries import DeliveryWorker
from visgate.secrets.base import SecretStore


class FlakySecrets:
    """The real secret store behind a switch: `fault` is raised by every `get`."""

    def __init__(self, inner: SecretStore) -> None:
        self.inner = inner
        self.fault: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, ref: str) -> str:
        if self.fault is not None:
            raise self.fault
        return await self.inner.get(ref)


@pytest.fixture
async def worker(plane: Plane) -> AsyncIterator[DeliveryWorker]:
    made = DeliveryWorker(plane.services, owner="unit")
    yield made
    await made.aclose()


async def _ready(plane: Plane, issued: IssuedKey, receiver: WebhookReceiver) -> Deployment:
    """A ready deployment whose `deployment.ready` webhook is queued."""
    return await plane.ready_with_webhook(issued, receiver.url)


async def _pass(worker: DeliveryWorker) -> None:
    await worker.run_once()
    await worker.drain()


def _clock_ahead(plane: Plane, seconds: float) -> None:
    """The store's clock (what is due, when a lease ends) jumps ahead; the test never sleeps."""
    plane.store.deliveries.clock = lambda: time.time() + seconds


async def _logs(plane: Plane, dep: Deployment) -> str:
    return json.dumps([e.message for e in (await plane.store.deployments.get(dep.id)).logs])


async def _delete_signing_secret(plane: Plane, issued: IssuedKey) -> None:
    # keys.issue_key files the secret under the key's owner name `key_<hash prefix>`.
    await plane.services.secrets.delete_for(f"key_{hash_api_key(issued.api_key)[:16]}")


async def test_secret_store_outage_counts_as_a_try_and_follows_the_schedule(
    plane: Plane, issued: IssuedKey, receiver: WebhookReceiver, worker: DeliveryWorker
) -> None:
    flaky = FlakySecrets(plane.services.secrets)
    plane.services.secrets = flaky  # type: ignore[assignment]
    flaky.fault = SecretStoreUnavailableError("secret store timed out")
    dep = await _ready(plane, issued, receiver)

    await _pass(worker)
    assert receiver.deliveries == []
    assert "try 1 failed (signing secret unavailable (SecretStoreUnavailableError))" in (
        await _logs(plane, dep)
    )
    assert (await plane.store.deployments.get(dep.id)).status is Status.ready

    flaky.fault = None
    _clock_ahead(plane, 0.3)  # WEBHOOK_RETRY_SCHEDULE=0.2,0.2: the second try is due
    await _pass(worker)
    assert len(receiver.deliveries) == 1
    logs = await _logs(plane, dep)
    assert "delivered (try 2)" in logs
    assert re.search(r"delivered \(try 2\) in \d+ ms", logs)  # how long the receiver took


@pytest.mark.parametrize("refusal", ["deleted", "permission denied"])
async def test_unreadable_signing_secret_ends_the_delivery_with_its_reason(
    plane: Plane,
    issued: IssuedKey,
    receiver: WebhookReceiver,
    worker: DeliveryWorker,
    refusal: str,
) -> None:
    if refusal == "deleted":
        await _delete_signing_secret(plane, issued)
        reason = "no signing secret"
    else:
        flaky = FlakySecrets(plane.services.secrets)
        plane.services.secrets = flaky  # type: ignore[assignment]
        flaky.fault = SecretPermissionError("permission denied on the secret")
        reason = "signing secret unreadable (SecretPermissionError)"
    dep = await _ready(plane, issued, receiver)

    await _pass(worker)
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.webhook_failed
    assert reason in await _logs(plane, dep)
    assert receiver.deliveries == []


async def test_deleted_signing_secret_is_noticed_once_the_cache_expires(
    plane: Plane, issued: IssuedKey, receiver: WebhookReceiver, worker: DeliveryWorker
) -> None:
    now = [1000.0]
    worker._clock = lambda: now[0]
    first = await _ready(plane, issued, receiver)
    await _pass(worker)
    assert "delivered (try 1)" in await _logs(plane, first)

    await _delete_signing_secret(plane, issued)
    now[0] += worker.secret_ttl_s
    second = await _ready(plane, issued, receiver)
    await _pass(worker)
    assert (await plane.store.deployments.get(second.id)).status is Status.webhook_failed
    assert len(receiver.deliveries) == 1


async def test_a_delivery_held_by_a_dead_instance_is_sent_once_its_lease_runs_out(
    make_plane: Any,
) -> None:
    plane: Plane = await make_plane(VISGATE_DELIVERY_LEASE_SECONDS=2)
    issued = await issue_key(plane.services, "team")
    with webhook_receiver() as receiver:
        await _ready(plane, issued, receiver)
        # An instance claims the delivery, as its loop does, and dies before sending it.
        dead = DeliveryWorker(plane.services, owner="dead-instance")
        claimed = await plane.store.deliveries.claim_due(dead.owner, 1, dead.lease_seconds)
        assert len(claimed) == 1
        await dead.aclose()
        survivor = DeliveryWorker(plane.services, owner="survivor")
        try:
            await _pass(survivor)
            assert receiver.deliveries == []  # still leased by the dead one
            _clock_ahead(plane, 2.2)
            await _pass(survivor)
            assert [json.loads(d.body)["type"] for d in receiver.deliveries] == ["deployment.ready"]
        finally:
            await survivor.aclose()


async def test_one_pass_sends_no_more_than_the_delivery_concurrency(make_plane: Any) -> None:
    plane: Plane = await make_plane(VISGATE_DELIVERY_CONCURRENCY=2)
    issued = await issue_key(plane.services, "team")
    with webhook_receiver() as receiver:
        for _ in range(3):
            await _ready(plane, issued, receiver)
        worker = DeliveryWorker(plane.services, owner="unit")
        try:
            assert await worker.run_once() == 2
            await worker.drain()
            assert len(receiver.deliveries) == 2
            assert await worker.run_once() == 1
            await worker.drain()
            assert len(receiver.deliveries) == 3
        finally:
            await worker.aclose()
