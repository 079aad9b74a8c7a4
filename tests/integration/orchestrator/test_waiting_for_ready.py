"""From endpoint to ready: one warm-up job makes Runpod start the worker, the ready
timeout holds even when a worker callback beats the create step's write, and scattered
transient errors during a long wait never add up to a failure."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.orchestrator.conftest import USER_KEY, CallbacksDuringCreate, Plane
from visgate.deployments.schemas import WorkerCallback
from visgate.domain.status import Status
from visgate.orchestrator.backoff import MAX_TRANSIENT_ATTEMPTS

WARMUP = {"warmup": True}


def _jobs_on(plane: Plane, endpoint_id: str) -> list[Any]:
    return [j for j in plane.runpod.state.jobs.values() if j.endpoint_id == endpoint_id]


async def test_new_endpoint_gets_one_warm_up_job_with_the_deployments_key(plane: Plane) -> None:
    dep = await plane.place(
        Status.creating_endpoint,
        secrets={"runpod_api_key": USER_KEY},
        gpu_pools=["ADA_24"],
        vram_gb=8.0,
    )
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.loading_model
    assert fresh.endpoint_id
    jobs = _jobs_on(plane, fresh.endpoint_id)
    assert [j.input for j in jobs] == [WARMUP]
    assert fresh.warmup_job_id == jobs[0].id
    assert plane.runpod.state.worker_started(fresh.endpoint_id)  # the job started a worker
    runs = [c for c in plane.runpod.state.calls if c.path.endswith("/run")]
    assert [c.authorization for c in runs] == [f"Bearer {USER_KEY}"]

    for _ in range(3):  # later health polls queue nothing more
        await plane.make_due(dep.id)
        await plane.run()
    assert len(_jobs_on(plane, fresh.endpoint_id)) == 1


async def test_warm_up_refused_at_creation_is_sent_on_the_next_pass(plane: Plane) -> None:
    dep = await plane.place(Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0)
    plane.runpod.state.fail_next(1, status=500, surface="serverless")
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.loading_model
    assert fresh.endpoint_id and fresh.warmup_job_id is None
    assert _jobs_on(plane, fresh.endpoint_id) == []

    await plane.make_due(dep.id)
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert [j.input for j in _jobs_on(plane, fresh.endpoint_id or "")] == [WARMUP]
    assert fresh.warmup_job_id is not None


async def test_callback_before_the_create_write_still_times_out_and_tears_down(
    make_plane: Any,
) -> None:
    plane: Plane = await make_plane(READY_TIMEOUT_SECONDS=10)
    plane.services.provider = CallbacksDuringCreate(  # type: ignore[assignment]
        plane.services.provider, plane, WorkerCallback(status="downloading_model")
    )
    # Entered creating_endpoint 20 s ago (its create step was retried that long).
    dep = await plane.place(
        Status.creating_endpoint, since=time.time() - 20, gpu_pools=["ADA_24"], vram_gb=8.0
    )
    await plane.run()
    raced = await plane.store.deployments.get(dep.id)
    assert raced.status is Status.downloading_model  # the worker's word won
    assert raced.deadline_at is None  # so the create step's deadline was never written
    assert plane.endpoint(raced) is not None

    failed = await plane.settle(dep.id)
    assert failed.status is Status.failed
    assert failed.error is not None and failed.error.type == "ReadyTimeoutError"
    assert plane.endpoint(failed) is None


async def test_successful_health_polls_reset_the_transient_count(plane: Plane) -> None:
    dep = await plane.place(
        Status.loading_model,
        gpu_pools=["ADA_24"],
        vram_gb=8.0,
        needs_teardown=True,
        deadline_at=time.time() + 600,
        warmup_job_id="job-queued-earlier",
        attempts=MAX_TRANSIENT_ATTEMPTS - 1,  # many hiccups earlier in a long wait
    )
    ref = await plane.endpoint_for(dep)
    await plane.store.deployments.mutate(
        dep.id, lambda d: setattr(d, "endpoint_id", ref.endpoint_id)
    )
    await plane.run()  # a healthy poll
    assert (await plane.store.deployments.get(dep.id)).attempts == 0

    plane.runpod.state.fail_next(100, status=503, surface="serverless")
    await plane.make_due(dep.id)
    await plane.run()  # one more hiccup
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.loading_model
    assert fresh.attempts == 1


async def test_the_operators_registry_credential_reaches_the_deployments_template(
    make_plane: Any,
) -> None:
    """A private worker image (Artifact Registry) is pulled with the operator's credential."""
    plane = await make_plane(RUNPOD_REGISTRY_AUTH_ID="cred-artifact-registry")
    dep = await plane.place(Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0)
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.loading_model
    template = plane.runpod.state.template(f"visgate-{dep.id}")
    assert template["containerRegistryAuthId"] == "cred-artifact-registry"


def _graphql_fields(plane: Plane, since: int = 0) -> list[str]:
    calls = plane.runpod.state.calls[since:]
    return [f for c in calls if c.path.startswith("/graphql") for f in c.fields]


async def test_a_first_create_skips_the_look_ups_a_retried_one_reuses_what_exists(
    plane: Plane,
) -> None:
    first = await plane.place(Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0)
    await plane.run()
    assert _graphql_fields(plane) == ["saveTemplate", "saveEndpoint"]  # 2 Runpod calls, not 4
    assert (await plane.store.deployments.get(first.id)).create_started

    # A try that crashed after Runpod made the endpoint, before the id was recorded.
    crashed = await plane.place(
        Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0, create_started=True
    )
    made = await plane.endpoint_for(crashed)
    since = len(plane.runpod.state.calls)
    await plane.run()
    fresh = await plane.store.deployments.get(crashed.id)
    assert fresh.endpoint_id == made.endpoint_id  # found by name, not made twice
    fields = _graphql_fields(plane, since)
    assert fields.count("myself") == 2 and "saveEndpoint" not in fields  # looked up, reused
    assert plane.runpod.state.creations("endpoint").count(made.endpoint_id) == 1
    assert len(plane.runpod.state.creations("endpoint")) == 2  # one per deployment
