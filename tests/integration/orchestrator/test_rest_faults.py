"""Runpod REST v2 faults through the reconciler: each ends in a settled record — a clear error,
or a retry that later finishes — with nothing left behind on the fake Runpod."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.orchestrator.conftest import Plane
from visgate.domain.deployment import Deployment
from visgate.domain.status import Status


@pytest.fixture
async def rest(make_plane: Any) -> Plane:
    plane: Plane = await make_plane(RUNPOD_API="rest")
    yield plane
    assert plane.runpod.state.contract_violations == []


async def _to_loading(plane: Plane) -> Deployment:
    dep = await plane.place(Status.selecting_gpu, vram_gb=12.0)
    return await plane.settle(dep.id)


def _nothing_left(plane: Plane) -> bool:
    state = plane.runpod.state
    return not state.endpoints and not state.templates


async def test_a_field_runpod_refuses_fails_with_runpods_words_and_leaves_nothing(
    rest: Plane,
) -> None:
    rest.runpod.state.fail_next(1, 422, surface="rest", field="createEndpoint")
    failed = await _to_loading(rest)
    assert failed.status is Status.failed
    assert failed.error is not None and failed.error.type == "RunpodAPIError"
    assert "HTTP 422" in failed.error.message
    await rest.settle(failed.id)  # teardown of what the try had made (the template)
    assert _nothing_left(rest)


async def test_a_429_burst_is_waited_out(rest: Plane) -> None:
    rest.runpod.state.fail_next(3, 429, retry_after=0, surface="rest")
    dep = await _to_loading(rest)
    assert dep.status is Status.loading_model, dep.error
    assert len(rest.runpod.state.creations("endpoint")) == 1


async def test_5xx_past_the_providers_retries_is_retried_later_then_finishes(
    rest: Plane,
) -> None:
    rest.runpod.state.fail_next(50, 503, surface="rest", field="createEndpoint")
    dep = await _to_loading(rest)
    assert dep.status is Status.creating_endpoint
    assert dep.due_at is not None and dep.due_at > time.time()  # backing off, not stuck
    assert any("retrying" in entry.message for entry in dep.logs)

    rest.runpod.state.clear_faults()
    await rest.make_due(dep.id)
    done = await rest.settle(dep.id)
    assert done.status is Status.loading_model
    assert len(rest.runpod.state.creations("endpoint")) == 1


async def test_a_connection_lost_mid_create_does_not_make_a_second_endpoint(
    rest: Plane,
) -> None:
    rest.runpod.state.lose_answer_next("createEndpoint")  # made on Runpod, the answer lost
    dep = await _to_loading(rest)
    assert dep.status is Status.loading_model, dep.error
    [endpoint_id] = rest.runpod.state.creations("endpoint")
    assert dep.endpoint_id == endpoint_id


async def test_a_template_still_bound_is_retried_until_the_delete_finishes(
    rest: Plane,
) -> None:
    dep = await _to_loading(rest)
    rest.runpod.state.template_release_lag = 50  # Runpod keeps refusing for a while

    def delete(d: Deployment) -> bool:
        d.request_delete(time.time())
        return True

    await rest.store.deployments.mutate(dep.id, delete)
    deleting = await rest.settle(dep.id)
    assert deleting.status is Status.deleting
    assert rest.endpoint(dep) is None and rest.runpod.state.templates  # endpoint first

    rest.runpod.state.template_release_lag = 0
    with rest.runpod.state.lock:
        rest.runpod.state._release_lag.clear()
    await rest.make_due(dep.id)
    deleted = await rest.settle(dep.id)
    assert deleted.status is Status.deleted
    assert _nothing_left(rest)
