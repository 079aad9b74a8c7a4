"""A worker's `ready` reaches the user's webhook at once when a webhook sender runs in the
process: the callback hands the delivery straight to it, written leased to that sender, so
the send waits for no claim of the delivery loop. The record stays the outbox: a hand-over
that is never sent (the process died) is claimed by a loop once its lease runs out, and a
full or absent sender leaves the delivery to the loop as before."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.integration.orchestrator.conftest import Plane
from tests.support.receivers import WebhookReceiver, webhook_receiver
from tests.support.waiting import eventually
from visgate.auth.api_keys import IssuedKey, issue_key
from visgate.deployments.schemas import WorkerCallback
from visgate.deployments.service import receive_callback
from visgate.domain.deployment import Deployment
from visgate.domain.records import WebhookDelivery, hash_api_key
from visgate.domain.status import Status
from visgate.orchestrator.deliveries import DeliveryWorker
from visgate.webhooks.events import delivery_id

READY = WorkerCallback(status="ready", models_loaded=["sdxl-turbo"], gpu="RTX 4090")


class Watched(DeliveryWorker):
    """A delivery worker that says when its loop first asks for work (it is running)."""

    def __init__(self, services: Any, *, owner: str) -> None:
        super().__init__(services, owner=owner)
        self.asked = asyncio.Event()

    async def claim(self, limit: int) -> list[WebhookDelivery]:
        self.asked.set()
        return await super().claim(limit)


class NeverClaims(Watched):
    """A delivery loop whose claim never comes back (a store queue far behind): only a
    hand-over can send anything."""

    async def claim(self, limit: int) -> list[WebhookDelivery]:
        self.asked.set()
        await asyncio.Event().wait()
        return []


class DiesAfterTheWrite(Watched):
    """A worker whose process dies right after a hand-over's record is written, before
    its send starts."""

    def __init__(self, services: Any, *, owner: str) -> None:
        super().__init__(services, owner=owner)
        self.lost: list[WebhookDelivery] = []

    def start(self, item: WebhookDelivery) -> None:
        self.lost.append(item)


@asynccontextmanager
async def running(worker: Watched) -> AsyncIterator[Watched]:
    """The worker's loop, as `BackgroundRunner` runs it. At the end it is told to stop and
    also cancelled: a loop stuck in its claim never sees the stop, and a cancel that lands
    as its idle wait ends can be swallowed (`asyncio.wait_for` on 3.11)."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    await asyncio.wait_for(worker.asked.wait(), 10)
    try:
        yield worker
    finally:
        stop.set()
        worker.wake.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.aclose()


async def _loading(plane: Plane, issued: IssuedKey, receiver: WebhookReceiver) -> Deployment:
    """A deployment waiting for its worker's callback, with a webhook."""
    return await plane.place(
        Status.loading_model,
        key_id=hash_api_key(issued.api_key),
        user_webhook_url=receiver.url,
        endpoint_id="e1",
        due_at=None,
    )


async def _stored(plane: Plane, dep: Deployment) -> WebhookDelivery:
    doc = await plane.store.backend.get(
        "webhook_deliveries", delivery_id(dep.id, "deployment.ready")
    )
    assert doc is not None, "no delivery record"
    return WebhookDelivery.model_validate(doc)


def _ready_hooks(receiver: WebhookReceiver, dep: Deployment) -> list[Any]:
    return receiver.by_event().get(f"{dep.id}:deployment.ready", [])


async def test_a_ready_callback_is_sent_at_once_while_the_loop_cannot_claim(
    plane: Plane, issued: IssuedKey, receiver: WebhookReceiver
) -> None:
    dep = await _loading(plane, issued, receiver)
    async with running(NeverClaims(plane.services, owner="here")):
        outcome = await receive_callback(plane.services, dep.id, READY)
        assert outcome.accepted
        await eventually(lambda: _ready_hooks(receiver, dep), within=10, what="the webhook")
        delivered = await eventually(
            lambda: _state(plane, dep, "delivered"), within=10, what="the delivery written"
        )
    assert len(receiver.deliveries) == 1
    assert json.loads(receiver.deliveries[0].body)["data"]["status"] == "ready"
    assert delivered.lease_owner is None and delivered.due_at is None
    logs = [e.message for e in (await plane.store.deployments.get(dep.id)).logs]
    assert any(m.startswith("webhook deployment.ready delivered (try 1)") for m in logs)


async def _state(plane: Plane, dep: Deployment, state: str) -> WebhookDelivery | None:
    stored = await _stored(plane, dep)
    return stored if stored.state == state else None


async def test_a_hand_over_never_sent_is_claimed_once_its_lease_runs_out(
    make_plane: Any,
) -> None:
    plane: Plane = await make_plane(VISGATE_DELIVERY_LEASE_SECONDS=2)
    issued = await issue_key(plane.services, "team")
    with webhook_receiver() as receiver:
        dep = await _loading(plane, issued, receiver)
        dead = DiesAfterTheWrite(plane.services, owner="dead-instance")
        async with running(dead):
            await receive_callback(plane.services, dep.id, READY)
        held = await _stored(plane, dep)
        assert [d.id for d in dead.lost] == [held.id]
        assert held.lease_owner == "dead-instance" and held.state == "pending"
        assert held.lease_expires_at is not None and held.due_at == held.lease_expires_at

        survivor = DeliveryWorker(plane.services, owner="survivor")
        try:
            assert await survivor.run_once() == 0  # still leased by the dead one
            plane.store.deliveries.clock = lambda: time.time() + 2.2
            assert await survivor.run_once() == 1
            await survivor.drain()
        finally:
            await survivor.aclose()
        assert [json.loads(d.body)["type"] for d in receiver.deliveries] == ["deployment.ready"]
        assert (await _stored(plane, dep)).state == "delivered"


async def test_the_reconciler_queueing_the_same_event_again_sends_nothing_twice(
    plane: Plane, issued: IssuedKey, receiver: WebhookReceiver
) -> None:
    dep = await _loading(plane, issued, receiver)
    async with running(Watched(plane.services, owner="here")) as worker:
        await receive_callback(plane.services, dep.id, READY)
        await plane.settle(dep.id)  # its pass queues the record's pending event again
        assert (await plane.store.deployments.get(dep.id)).pending_events == []
        await eventually(lambda: _state(plane, dep, "delivered"), within=10, what="delivered")
        await worker.drain()
    assert len(_ready_hooks(receiver, dep)) == 1


async def test_a_full_sender_leaves_the_delivery_to_its_loop(
    make_plane: Any, receiver: WebhookReceiver
) -> None:
    plane: Plane = await make_plane(VISGATE_DELIVERY_CONCURRENCY=1)
    issued = await issue_key(plane.services, "team")
    dep = await _loading(plane, issued, receiver)
    worker = Watched(plane.services, owner="here")
    async with running(worker):
        with worker.holding_slot():  # its one send slot is taken
            await receive_callback(plane.services, dep.id, READY)
            queued = await _stored(plane, dep)
            assert queued.lease_owner is None and queued.due_at is not None
            assert receiver.deliveries == []
        worker.wake.set()  # the slot is free again: the loop claims what is due
        await eventually(lambda: _state(plane, dep, "delivered"), within=10, what="delivered")
    assert len(_ready_hooks(receiver, dep)) == 1


async def test_without_a_running_sender_the_delivery_is_queued_for_a_loop(
    plane: Plane, issued: IssuedKey, receiver: WebhookReceiver
) -> None:
    dep = await _loading(plane, issued, receiver)
    stopped = DeliveryWorker(plane.services, owner="stopped")
    stop = asyncio.Event()
    stop.set()
    await stopped.run_forever(stop)  # ran and stopped: it takes no hand-over now
    try:
        await receive_callback(plane.services, dep.id, READY)
        queued = await _stored(plane, dep)
        assert queued.lease_owner is None and queued.state == "pending"
        assert plane.services.wakes.deliveries.is_set()
        assert receiver.deliveries == []
    finally:
        await stopped.aclose()
