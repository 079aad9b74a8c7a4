"""Teardown always finishes: a failed or deleting record whose teardown keeps failing is
retried at the maximum backoff for ever, keeps its own error, and never sticks; a failed
deployment's secrets always go, and deleting it afterwards needs nothing it no longer has."""

from __future__ import annotations

import time

import pytest

from tests.fakes.hub_seed import VALID_TOKEN
from tests.integration.orchestrator.conftest import USER_KEY, Plane
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import SecretNotFoundError
from visgate.domain.status import Status
from visgate.orchestrator.backoff import MAX_DELAY_S, MAX_TRANSIENT_ATTEMPTS

WORKER_ERROR = ErrorInfo(type="WorkerFailedError", message="CUDA out of memory while loading")


async def _failed_with_endpoint(plane: Plane, **fields: object) -> Deployment:
    dep = await plane.place(
        Status.failed,
        secrets={"runpod_api_key": USER_KEY},
        error=WORKER_ERROR,
        needs_teardown=True,
        gpu_pools=["ADA_24"],
        vram_gb=8.0,
        **fields,
    )
    await plane.endpoint_for(dep, key=USER_KEY)
    return dep


async def test_failed_record_whose_teardown_keeps_failing_keeps_its_error_and_backs_off(
    plane: Plane,
) -> None:
    dep = await _failed_with_endpoint(plane, attempts=MAX_TRANSIENT_ATTEMPTS - 1)
    plane.runpod.state.fail_next(10_000, status=503, surface="graphql")

    waits = []
    for _ in range(3):  # the try that reaches the cap, and two past it
        await plane.make_due(dep.id)
        started = time.time()
        await plane.run()
        fresh = await plane.store.deployments.get(dep.id)
        assert fresh.status is Status.failed
        assert fresh.error == WORKER_ERROR  # the user still sees why it failed
        assert fresh.lease_token is None
        assert fresh.due_at is not None and fresh.due_at >= started + MAX_DELAY_S - 1
        waits.append(fresh.due_at - started)
    assert plane.endpoint(dep) is not None  # nothing was torn down: Runpod never answered
    assert min(waits) >= 600 - 1  # a blocked teardown waits long (test_teardown_blocked.py)
    assert fresh.teardown_blocked is not None
    assert fresh.teardown_blocked.error.type == "RunpodUnavailableError"
    blocked = [e for e in fresh.logs if e.message.startswith("teardown blocked")]
    assert len(blocked) == 1  # said once on the record, not once per try


async def test_deleting_record_is_retried_past_the_cap_and_deleted_once_teardown_works(
    plane: Plane,
) -> None:
    dep = await plane.place(
        Status.deleting,
        secrets={"runpod_api_key": USER_KEY},
        needs_teardown=True,
        gpu_pools=["ADA_24"],
        attempts=MAX_TRANSIENT_ATTEMPTS - 1,
    )
    await plane.endpoint_for(dep, key=USER_KEY)
    plane.runpod.state.api_keys.discard(USER_KEY)  # the user's key stops working

    for _ in range(2):
        await plane.make_due(dep.id)
        started = time.time()
        await plane.run()
        fresh = await plane.store.deployments.get(dep.id)
        assert fresh.status is Status.deleting
        assert fresh.lease_token is None  # handed back, so any loop can take it again
        assert fresh.due_at is not None and fresh.due_at >= started + MAX_DELAY_S - 1

    plane.runpod.state.api_keys.add(USER_KEY)
    await plane.make_due(dep.id)
    done = await plane.settle(dep.id)
    assert done.status is Status.deleted
    assert plane.endpoint(dep) is None


async def test_delete_of_a_failed_deployment_with_its_own_key_reaches_deleted(
    plane: Plane,
) -> None:
    dep = await _failed_with_endpoint(plane)
    cleaned = await plane.settle(dep.id)
    assert plane.endpoint(dep) is None
    assert cleaned.needs_teardown is False
    assert await plane.services.secrets.get(dep.secret_refs["runpod_api_key"]) == USER_KEY
    await plane.after_final_sweep(dep.id)
    with pytest.raises(SecretNotFoundError):  # the user's key went with the resources
        await plane.services.secrets.get(dep.secret_refs["runpod_api_key"])

    def begin_delete(d: Deployment) -> None:  # what DELETE /v1/deployments/{id} writes
        d.move_to(Status.deleting, time.time(), "delete requested")
        d.due_at = time.time()

    await plane.store.deployments.mutate(dep.id, begin_delete)
    deleted = await plane.settle(dep.id)
    assert deleted.status is Status.deleted
    assert deleted.error == WORKER_ERROR


async def test_deployment_failing_validation_drops_the_users_secrets(plane: Plane) -> None:
    dep = await plane.place(
        Status.validating,
        model_id="nobody/does-not-exist",
        secrets={"hf_token": VALID_TOKEN, "runpod_api_key": USER_KEY},
    )
    failed = await plane.settle(dep.id)
    assert failed.status is Status.failed
    assert failed.error is not None and failed.error.type == "HuggingFaceModelNotFoundError"
    for ref in dep.secret_refs.values():
        with pytest.raises(SecretNotFoundError):
            await plane.services.secrets.get(ref)
    assert plane.runpod.state.calls == []  # nothing was made, so nothing was torn down


async def test_delete_whose_final_write_was_lost_after_its_key_went_still_ends_deleted(
    plane: Plane,
) -> None:
    """An earlier try removed the endpoint and then the user's key, but lost its lease
    before writing `deleted`: the next try must not wait for ever on a key it cannot get."""
    dep = await plane.place(Status.ready, secrets={"runpod_api_key": USER_KEY})
    await plane.endpoint_for(dep, key=USER_KEY)
    await plane.services.provider.teardown(f"visgate-{dep.id}", api_key=USER_KEY)  # type: ignore[union-attr]
    await plane.services.secrets.delete_for(dep.id)

    def begin_delete(d: Deployment) -> None:
        d.needs_teardown = True
        d.move_to(Status.deleting, time.time(), "delete requested")
        d.due_at = time.time()

    await plane.store.deployments.mutate(dep.id, begin_delete)
    deleted = await plane.settle(dep.id)
    assert deleted.status is Status.deleted
    assert plane.endpoint(dep) is None
