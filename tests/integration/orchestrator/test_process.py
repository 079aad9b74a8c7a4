"""A step's task never dies unseen: a write that keeps losing to other writers is given up
(the record comes due again when its lease ends), and a loop stopped mid-step hands its
records back at once instead of leaving them leased."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.integration.orchestrator.conftest import Plane
from tests.support.waiting import eventually
from visgate.domain.deployment import Deployment
from visgate.domain.errors import StoreAccessError
from visgate.domain.meter import SAMPLE_SECONDS
from visgate.domain.status import Status
from visgate.store.deployments import DeploymentRepository
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend


class ContendedDeployments(DeploymentRepository):
    """Real deployment records where another writer (say, a stream of worker callbacks) changes the
    record just before each of the reconciler's writes, so each one is stale."""

    contend = True

    async def save(self, dep: Deployment, *, lease_token: str | None = None) -> Deployment:
        if lease_token is not None and self.contend:
            await self.mutate(dep.id, lambda d: d.log(time.time(), "another writer"))
        return await super().save(dep, lease_token=lease_token)


def _only_metering_left(dep: Deployment) -> bool:
    """A serving record's step ran: it is due again only for the next meter sample."""
    return dep.due_at is not None and dep.due_at > time.time() + SAMPLE_SECONDS / 2


async def test_write_that_keeps_going_stale_is_dropped_and_the_record_comes_back(
    make_plane: Any, tmp_path: Any
) -> None:
    store = Store(SqliteBackend(tmp_path / "contended.db"))
    store.deployments = deployments = ContendedDeployments(store.backend)
    plane: Plane = await make_plane(store=store)
    dep = await plane.place(Status.ready, endpoint_id="e1")
    claimed = await deployments.claim_due("unit", 10, 1.1)
    assert [d.id for d in claimed] == [dep.id]

    await plane.reconciler.process(claimed[0])  # returns instead of raising

    deployments.contend = False
    deployments.clock = lambda: time.time() + 1.2  # the lease ends; the record is due again
    assert await plane.run() == 1
    settled = await deployments.get(dep.id)
    assert settled.lease_token is None and _only_metering_left(settled)


async def test_stopping_mid_step_hands_the_record_back(plane: Plane) -> None:
    dep = await plane.place(Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0)
    plane.runpod.state.latency_s = 1.0  # the create step is in a slow call
    stop = asyncio.Event()
    loop = asyncio.create_task(plane.reconciler.run_forever(stop))
    calls_before = len(plane.runpod.state.calls)
    await eventually(
        lambda: len(plane.runpod.state.calls) > calls_before, what="the create step's first call"
    )

    stop.set()
    plane.services.poke()
    await asyncio.wait_for(loop, 3)

    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.creating_endpoint
    assert fresh.lease_token is None
    assert fresh.due_at is not None and fresh.due_at <= time.time()


class RefusingDeployments(DeploymentRepository):
    """Real deployment records that first refuses access (Firestore before its IAM grant propagates)."""

    refusals = 3

    async def claim_due(self, *args: Any, **kwargs: Any) -> list[Deployment]:
        if self.refusals:
            self.refusals -= 1
            raise StoreAccessError("Firestore denied the call: grant roles/datastore.user")
        return await super().claim_due(*args, **kwargs)


async def test_loop_outlives_a_store_that_refuses_access_then_goes_on(
    make_plane: Any, tmp_path: Any
) -> None:
    store = Store(SqliteBackend(tmp_path / "refusing.db"))
    store.deployments = deployments = RefusingDeployments(store.backend)
    plane: Plane = await make_plane(store=store, VISGATE_POLL_INTERVAL=0.05)
    dep = await plane.place(Status.ready, endpoint_id="e1")
    stop = asyncio.Event()
    loop = asyncio.create_task(plane.reconciler.run_forever(stop))
    try:

        async def ready_step_ran() -> bool:
            assert not loop.done(), "the loop died of a store refusal"
            return _only_metering_left(await deployments.get(dep.id))

        await eventually(ready_step_ran, within=5, what="the ready step")
        assert deployments.refusals == 0
        assert _only_metering_left(await deployments.get(dep.id))
    finally:
        stop.set()
        await asyncio.wait_for(loop, 5)
