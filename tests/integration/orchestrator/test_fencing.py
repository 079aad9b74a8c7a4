"""A stalled instance leaves nothing billing: a create step whose lease was taken over (and
whose deployment was deleted meanwhile) makes nothing more once its held call returns, and
removes what that call made; the final sweep after a teardown removes what a stale step
left, and only then the deployment's Runpod key.

Instance A's create step is held at the fake Runpod (a call in flight while A stalls);
instance B claims the record after A's lease ran out, runs the user's DELETE to `deleted`;
then A's call is answered."""

from __future__ import annotations

import asyncio
import time

from tests.fakes.runpod import API_KEY
from tests.fakes.runpod_knobs import Hold
from tests.integration.orchestrator.conftest import USER_KEY, Plane
from tests.support.waiting import eventually
from visgate.domain.deployment import Deployment
from visgate.domain.errors import SecretNotFoundError
from visgate.domain.status import Status
from visgate.orchestrator.fencing import undo_after_lost_lease
from visgate.orchestrator.reconciler import Reconciler
from visgate.providers.base import endpoint_name

LEASE_S = 30.0


async def _creating(plane: Plane) -> Deployment:
    return await plane.place(
        Status.creating_endpoint,
        gpu_pools=["ADA_24"],
        vram_gb=8.0,
        secrets={"runpod_api_key": USER_KEY},
    )


async def _stalled_create_then_deleted_elsewhere(plane: Plane, hold: Hold) -> Deployment:
    """A claims the record and starts its create step, which the fake holds; B takes the
    record over once A's lease has run out and deletes it; then A's call is answered."""
    dep = await _creating(plane)
    (claimed,) = await plane.store.deployments.claim_due("instance-a", 1, LEASE_S)
    task = asyncio.create_task(plane.reconciler.process(claimed))
    await eventually(lambda: len(hold.caught) == 1, what="A's create call held at the fake")

    await plane.store.deployments.mutate(dep.id, lambda d: d.request_delete(time.time()))
    b = Reconciler(plane.services, owner="instance-b")
    later = time.time() + LEASE_S + 1  # A's lease has run out by then
    (taken,) = await plane.store.deployments.claim_due(b.owner, 1, LEASE_S, now=later)
    assert taken.lease_token is not None
    await b.apply(taken.id, taken.status, taken.lease_token, await b.run_step(taken))
    assert (await plane.store.deployments.get(dep.id)).status is Status.deleted

    hold.release()
    await task
    return dep


def _left_on_runpod(plane: Plane, dep: Deployment) -> list[str]:
    state, name = plane.runpod.state, endpoint_name(dep.id)
    left = []
    if state.endpoint(name) is not None:
        left.append("endpoint")
    if state.template(name) is not None:
        left.append("template")
    return left


async def test_a_template_answered_after_the_delete_is_removed_and_no_endpoint_made(
    plane: Plane,
) -> None:
    hold = plane.runpod.state.hold("saveTemplate")
    dep = await _stalled_create_then_deleted_elsewhere(plane, hold)

    assert _left_on_runpod(plane, dep) == []
    assert plane.runpod.state.created_names("endpoint").count(endpoint_name(dep.id)) == 0
    assert (await plane.store.deployments.get(dep.id)).status is Status.deleted


async def test_two_create_steps_of_one_deployment_leave_one_endpoint(plane: Plane) -> None:
    """A's endpoint call is held; B takes the record over and makes the endpoint; then A's
    call lands and makes a second one of the same name (Runpod keeps endpoint names apart
    only for templates): A's fence sees the lease gone and removes its duplicate."""
    hold = plane.runpod.state.hold("saveEndpoint")
    dep = await _creating(plane)
    (claimed,) = await plane.store.deployments.claim_due("instance-a", 1, LEASE_S)
    task = asyncio.create_task(plane.reconciler.process(claimed))
    await eventually(lambda: len(hold.caught) == 1, what="A's endpoint call held at the fake")
    hold.stop_catching()

    b = Reconciler(plane.services, owner="instance-b")
    later = time.time() + LEASE_S + 1
    (taken,) = await plane.store.deployments.claim_due(b.owner, 1, LEASE_S, now=later)
    assert taken.lease_token is not None
    await b.apply(taken.id, taken.status, taken.lease_token, await b.run_step(taken))
    hold.release()
    await task

    final = await plane.store.deployments.get(dep.id)
    name = endpoint_name(dep.id)
    left = [r["id"] for r in plane.runpod.state.endpoints.values() if r["name"] == name]
    assert plane.runpod.state.created_names("endpoint").count(name) == 2  # the race happened
    assert left == [final.endpoint_id], "a second endpoint of the deployment was left billing"


async def test_the_final_sweep_removes_what_a_stale_step_left_and_then_the_key(
    plane: Plane,
) -> None:
    dep = await plane.place(
        Status.ready,
        secrets={"runpod_api_key": USER_KEY},
        needs_teardown=True,
        gpu_pools=["ADA_24"],
    )
    await plane.endpoint_for(dep, key=USER_KEY)
    await plane.store.deployments.mutate(dep.id, lambda d: d.request_delete(time.time()))
    deleted = await plane.settle(dep.id)
    assert deleted.status is Status.deleted and _left_on_runpod(plane, dep) == []
    # A stale step's call lands after the teardown: the key must still reach it.
    assert await plane.services.secrets.get(dep.secret_refs["runpod_api_key"]) == USER_KEY
    await plane.endpoint_for(dep, key=USER_KEY)

    swept = await plane.after_final_sweep(dep.id)

    assert _left_on_runpod(plane, dep) == []
    assert swept.status is Status.deleted and swept.final_sweep_at is None
    try:
        await plane.services.secrets.get(dep.secret_refs["runpod_api_key"])
        raise AssertionError("the Runpod key outlived the final sweep")
    except SecretNotFoundError:
        pass


async def test_a_stale_duplicate_goes_and_the_recorded_endpoint_stays(plane: Plane) -> None:
    dep = await plane.place(Status.loading_model, gpu_pools=["ADA_24"], vram_gb=8.0)
    stale = await plane.endpoint_for(dep)  # the stalled try's endpoint
    plane.runpod.state.endpoints.pop(stale.endpoint_id)  # hide it while B makes its own
    current = await plane.endpoint_for(dep)
    plane.runpod.state.endpoints[stale.endpoint_id] = {
        **plane.runpod.state.endpoints[current.endpoint_id],
        "id": stale.endpoint_id,
    }

    def recorded(d: Deployment) -> None:
        d.endpoint_id = current.endpoint_id

    await plane.store.deployments.mutate(dep.id, recorded)

    await undo_after_lost_lease(plane.services, dep.id, endpoint_name(dep.id), API_KEY, stale)

    left = {r["id"] for r in plane.runpod.state.endpoints.values()}
    assert left == {current.endpoint_id}
