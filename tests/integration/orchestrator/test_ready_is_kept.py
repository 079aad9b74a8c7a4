"""Once a deployment is `ready`, the user was told it serves: no reconciler step fails it or
removes its endpoint, whatever the ready-wait clock, Runpod errors or lost writes say. Only
DELETE moves it on (and the delivery loop marks a webhook that never got through)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.orchestrator.conftest import CallbacksDuringCreate, Plane
from visgate.deployments.callback import apply_worker_callback
from visgate.deployments.schemas import WorkerCallback
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import IllegalTransitionError
from visgate.domain.status import Status
from visgate.orchestrator.backoff import MAX_TRANSIENT_ATTEMPTS
from visgate.store.deliveries import DELIVERIES
from visgate.webhooks.events import delivery_id

READY = WorkerCallback(status="ready", models_loaded=["sdxl-turbo"], gpu="NVIDIA L4")


async def report(plane: Plane, dep_id: str, body: WorkerCallback) -> Deployment:
    """The worker's callback, as the internal route applies it."""
    return await plane.store.deployments.mutate(
        dep_id, lambda d: apply_worker_callback(d, body, time.time())
    )


async def _past_its_lease(plane: Plane, dep_id: str, lease_seconds: float) -> Deployment:
    """Another process claims the record once the dead owner's lease has run out."""
    [claimed] = await plane.store.deployments.claim_due(
        "process-b", 1, lease_seconds, now=time.time() + lease_seconds + 1
    )
    assert claimed.id == dep_id
    return claimed


async def test_ready_callback_then_a_lost_create_write_keeps_the_endpoint(
    make_plane: Any,
) -> None:
    """The exact interleaving: the create step makes the endpoint, the worker's `ready` is
    written, the process dies before the step's own write, and the record is taken over by
    another process only after the ready timeout has passed."""
    plane: Plane = await make_plane(READY_TIMEOUT_SECONDS=10, VISGATE_LEASE_SECONDS=5)
    plane.services.provider = CallbacksDuringCreate(  # type: ignore[assignment]
        plane.services.provider, plane, WorkerCallback(status="loading_model"), READY
    )
    dep = await plane.place(
        Status.creating_endpoint, since=time.time() - 20, gpu_pools=["ADA_24"], vram_gb=8.0
    )

    # Process A claims and runs the create step; its result is never written (SIGKILL).
    [claimed] = await plane.store.deployments.claim_due("process-a", 1, 5)
    await plane.reconciler.run_step(claimed)
    raced = await plane.store.deployments.get(dep.id)
    assert raced.status is Status.ready and raced.endpoint_id is None
    made = plane.endpoint(raced)
    assert made is not None

    # Process B takes the record after A's lease ran out, long past the ready deadline.
    await plane.reconciler.process(await _past_its_lease(plane, dep.id, 5))
    for _ in range(3):
        await plane.make_due(dep.id)
        await plane.run()

    final = await plane.store.deployments.get(dep.id)
    assert final.status is Status.ready, final.error
    assert Status.failed not in [event.status for event in final.history]
    assert final.endpoint_id == made["id"]  # found by name and recorded
    assert plane.endpoint(final) is not None  # still serving
    assert plane.runpod.state.created_names("endpoint").count(f"visgate-{dep.id}") == 1
    assert "deployment.failed" not in final.pending_events


async def _ready_without_endpoint_id(plane: Plane, **fields: Any) -> Deployment:
    """A ready record whose create write was lost: the endpoint exists, its id is unknown."""
    dep = await plane.place(
        Status.ready, since=time.time() - 3600, gpu_pools=["ADA_24"], vram_gb=8.0, **fields
    )
    await plane.endpoint_for(dep)
    return dep


async def test_runpod_errors_past_the_retry_cap_never_fail_a_ready_deployment(
    plane: Plane,
) -> None:
    dep = await _ready_without_endpoint_id(plane, attempts=MAX_TRANSIENT_ATTEMPTS - 1)
    plane.runpod.state.fail_next(100, status=503)
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.ready
    assert fresh.due_at is not None and fresh.due_at > time.time()  # looked up again later
    assert plane.endpoint(fresh) is not None

    plane.runpod.state.clear_faults()
    await plane.make_due(dep.id)
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.ready and fresh.endpoint_id
    assert fresh.attempts == 0


async def test_a_permanent_error_on_a_ready_deployment_is_retried_not_fatal(
    plane: Plane,
) -> None:
    dep = await _ready_without_endpoint_id(plane)
    plane.runpod.state.fail_next(1, status=401)  # e.g. a key revoked on Runpod for a while
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.ready, fresh.error
    assert plane.endpoint(fresh) is not None
    assert any("retrying" in entry.message for entry in fresh.logs)


async def test_a_worker_failure_after_ready_leaves_the_deployment_serving(
    plane: Plane,
) -> None:
    dep = await _ready_without_endpoint_id(plane)
    failure = WorkerCallback(status="failed", error="CUDA out of memory on a new worker")
    fresh = await report(plane, dep.id, failure)
    assert fresh.status is Status.ready and fresh.error is None
    assert "deployment.failed" not in fresh.pending_events
    await plane.make_due(dep.id)
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.ready
    assert plane.endpoint(fresh) is not None


def test_the_transition_table_has_no_way_from_ready_to_failed() -> None:
    dep = Deployment.new(tenant="t", model_id="m/m", now=1.0)
    for status in (Status.selecting_gpu, Status.creating_endpoint, Status.loading_model):
        dep.move_to(status, 1.0)
    dep.move_to(Status.ready, 2.0)
    with pytest.raises(IllegalTransitionError):
        dep.fail(3.0, ErrorInfo(type="ReadyTimeoutError", message="late"))
    # The refused failure left nothing behind on the record.
    assert dep.status is Status.ready and dep.error is None and not dep.pending_events
    dep.move_to(Status.deleting, 4.0)  # the user's DELETE still moves it on


async def test_the_ready_webhook_names_the_endpoint_when_the_create_write_was_lost(
    make_plane: Any,
) -> None:
    """The worker's `ready` lands before the create step's result, and that result is lost
    with its process: the ready event goes out only once the endpoint is known, and names
    it."""
    plane: Plane = await make_plane(VISGATE_LEASE_SECONDS=5)
    plane.services.provider = CallbacksDuringCreate(  # type: ignore[assignment]
        plane.services.provider, plane, READY
    )
    dep = await plane.place(
        Status.creating_endpoint,
        gpu_pools=["ADA_24"],
        vram_gb=8.0,
        user_webhook_url="https://hooks.example.com/visgate",
    )
    [claimed] = await plane.store.deployments.claim_due("process-a", 1, 5)
    await plane.reconciler.run_step(claimed)  # process A dies before writing its result
    await plane.reconciler.process(await _past_its_lease(plane, dep.id, 5))
    await plane.settle(dep.id)

    made = plane.endpoint(dep)
    assert made is not None
    doc = await plane.store.deliveries.backend.get(
        DELIVERIES, delivery_id(dep.id, "deployment.ready")
    )
    assert doc is not None, "no ready webhook was queued"
    data = json.loads(doc["body"])["data"]
    assert data["endpoint_id"] == made["id"]
    assert data["endpoint_url"]
