"""What the reconciler does with a deployment's limits: the endpoint gets its worker cap and
data centres (both Runpod APIs), a ttl deletes it like a DELETE would, a deployment that
stops counting gives its quota slot back, and the meter prices the workers it sees."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.orchestrator.conftest import TENANT, Plane
from visgate.deployments.callback import apply_worker_callback
from visgate.deployments.schemas import WorkerCallback
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.meter import SAMPLE_SECONDS
from visgate.domain.status import Status
from visgate.store.deliveries import DELIVERIES
from visgate.store.quotas import Limits
from visgate.webhooks.events import delivery_id

READY = WorkerCallback(status="ready", models_loaded=["sdxl-turbo"], gpu="NVIDIA GeForce RTX 4090")
LIMITS = Limits(max_deployments=10, max_workers=10)


@pytest.fixture(params=["graphql", "rest"])
async def any_plane(request: pytest.FixtureRequest, make_plane: Any) -> Plane:
    return await make_plane(RUNPOD_API=request.param)


async def _to_ready(plane: Plane, **fields: Any) -> Deployment:
    """A new deployment walked through the real steps until its worker reports ready."""
    dep = await plane.place(Status.validating, **fields)
    await plane.store.quotas.reserve(TENANT, dep.id, dep.max_workers, LIMITS)
    for _ in range(3):  # validate, select pools, create the endpoint
        await plane.make_due(dep.id)
        await plane.run()
    assert (await plane.store.deployments.get(dep.id)).status is Status.loading_model
    await plane.store.deployments.mutate(
        dep.id, lambda d: apply_worker_callback(d, READY, time.time())
    )
    await plane.run()
    return await plane.store.deployments.get(dep.id)


async def test_the_endpoint_gets_the_worker_cap_and_the_region(any_plane: Plane) -> None:
    dep = await _to_ready(
        any_plane, max_workers=3, region="EU", data_center_ids=["EU-RO-1", "EUR-IS-1"]
    )
    row = any_plane.endpoint(dep)
    assert row is not None
    assert row["workersMax"] == 3
    assert row["locations"] == "EU-RO-1,EUR-IS-1"


async def test_without_a_region_the_endpoint_may_run_anywhere(any_plane: Plane) -> None:
    dep = await _to_ready(any_plane)
    row = any_plane.endpoint(dep)
    assert row is not None and row["workersMax"] == 1 and not row["locations"]


async def test_ttl_runs_from_ready_then_deletes_through_teardown(any_plane: Plane) -> None:
    plane = any_plane
    dep = await _to_ready(plane, ttl_seconds=600, user_webhook_url="http://127.0.0.1:9/hook")
    assert dep.status is Status.ready and dep.ready_at is not None
    assert dep.expires_at == pytest.approx(dep.ready_at + 600)
    assert dep.due_at is not None and dep.due_at <= dep.expires_at

    def expire(d: Deployment) -> None:
        d.expires_at = d.due_at = time.time() - 1

    await plane.store.deployments.mutate(dep.id, expire)
    await plane.run()  # expiry: deleting
    await plane.run()  # teardown: deleted
    gone = await plane.store.deployments.get(dep.id)
    assert gone.status is Status.deleted and gone.delete_reason == "expired"
    assert plane.endpoint(gone) is None
    assert any("expired: ttl_seconds=600" in e.message for e in gone.logs)
    delivery = await plane.store.backend.get(DELIVERIES, delivery_id(dep.id, "deployment.deleted"))
    assert delivery is not None
    assert json.loads(delivery["body"])["data"]["delete_reason"] == "expired"
    assert dep.id not in await plane.store.quotas.held(TENANT)


async def test_ttl_counts_from_creation_while_never_ready(plane: Plane) -> None:
    now = time.time()
    dep = await plane.place(
        Status.loading_model, ttl_seconds=60, expires_at=now - 1, deadline_at=now + 900
    )
    await plane.make_due(dep.id)
    await plane.run()
    await plane.run()
    gone = await plane.store.deployments.get(dep.id)
    assert (gone.status, gone.delete_reason) == (Status.deleted, "expired")


async def test_an_idle_record_with_a_ttl_stays_due_by_its_expiry(plane: Plane) -> None:
    """A failed deployment's cleanup leaves nothing to do, but its ttl still deletes it."""
    dep = await plane.place(
        Status.failed,
        error=ErrorInfo(type="X", message="y"),
        ttl_seconds=60,
        expires_at=time.time() + 60,
    )
    await plane.make_due(dep.id)
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.due_at == pytest.approx(fresh.expires_at)


async def test_a_failed_deployment_gives_its_slot_back_once_cleaned_up(plane: Plane) -> None:
    dep = await plane.place(Status.failed, error=ErrorInfo(type="X", message="y"))
    await plane.store.quotas.reserve(TENANT, dep.id, 1, LIMITS)
    await plane.make_due(dep.id)
    await plane.run()
    assert dep.id not in await plane.store.quotas.held(TENANT)


async def test_a_deleted_deployment_gives_its_slot_back(plane: Plane) -> None:
    dep = await plane.place(Status.deleting)
    await plane.store.quotas.reserve(TENANT, dep.id, 2, LIMITS)
    await plane.make_due(dep.id)
    await plane.run()
    assert (await plane.store.deployments.get(dep.id)).status is Status.deleted
    assert (await plane.store.quotas.usage(TENANT)).workers == 0


async def test_a_serving_deployment_is_metered_at_its_pools_price(any_plane: Plane) -> None:
    plane = any_plane
    dep = await _to_ready(plane)
    assert dep.meter is not None  # the loading step's health reads started it
    loading_workers, started = dep.meter.workers, dep.meter.spend

    await plane.make_due(dep.id)  # just ready: the loading step's sample stands, no read
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.meter == dep.meter
    assert fresh.due_at == pytest.approx(dep.meter.at + SAMPLE_SECONDS)

    def an_hour_ago(d: Deployment) -> None:
        assert d.meter is not None
        d.meter.at -= 3600

    await plane.store.deployments.mutate(dep.id, an_hour_ago)
    plane.runpod.state.set_workers(dep.endpoint_id or "", idle=1, running=1, throttled=2)
    await plane.make_due(dep.id)
    await plane.run()
    metered = await plane.store.deployments.get(dep.id)
    assert metered.meter is not None and metered.meter.workers == 2  # throttled are not billed
    price = metered.meter.unit_price_per_hour
    assert price is not None and price > 0  # the ADA_24 (RTX 4090) pool's price
    assert metered.meter.spend == pytest.approx(started + loading_workers * price, rel=0.01)
    assert metered.due_at == pytest.approx(time.time() + SAMPLE_SECONDS, abs=5)

    await plane.store.deployments.mutate(dep.id, an_hour_ago)
    plane.runpod.state.set_workers(dep.endpoint_id or "", idle=0, running=0, throttled=0)
    await plane.make_due(dep.id)
    await plane.run()
    later = await plane.store.deployments.get(dep.id)
    assert later.meter is not None and later.meter.workers == 0
    assert later.meter.spend == pytest.approx(metered.meter.spend + 2 * price, rel=0.01)
