"""Which due deployment the reconciler takes first: a burst of new POSTs must not hold back the
later steps of deployments that arrived before it (first come, first ready)."""

from __future__ import annotations

import time

from tests.integration.orchestrator.conftest import Plane
from visgate.domain.deployment import Deployment
from visgate.domain.status import Status
from visgate.orchestrator.results import Move, StepResult


async def test_the_next_step_of_an_earlier_deployment_goes_before_newer_arrivals(
    plane: Plane,
) -> None:
    store = plane.store.deployments
    first = await store.create(Deployment.new(tenant="t", model_id="o/m", now=time.time() - 5))
    [claimed] = await store.claim_due("unit", 1, 60)
    assert claimed.id == first.id
    for _ in range(20):  # POSTs that arrive while its first step runs
        await store.create(Deployment.new(tenant="t", model_id="o/m", now=time.time()))

    step = StepResult(transition=Move(Status.selecting_gpu, "model checked"))
    await plane.reconciler.apply(first.id, Status.validating, claimed.lease_token or "", step)

    [taken] = await store.claim_due("unit", 1, 60)
    assert (taken.id, taken.status) == (first.id, Status.selecting_gpu)


async def test_a_delete_of_an_earlier_deployment_is_taken_before_newer_arrivals(
    plane: Plane,
) -> None:
    store = plane.store.deployments
    loading = await plane.place(Status.loading_model, due_at=None)
    for _ in range(20):
        await store.create(Deployment.new(tenant="t", model_id="o/m", now=time.time()))

    await store.mutate(loading.id, lambda d: d.request_delete(time.time()))

    [taken] = await store.claim_due("unit", 1, 60)
    assert (taken.id, taken.status) == (loading.id, Status.deleting)
