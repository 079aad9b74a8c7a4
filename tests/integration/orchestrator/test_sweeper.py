"""The periodic sweep deletes only endpoints this install's records say are dead; ones it
has no record of (maybe another install's, on the same Runpod account) are left alone
unless the operator sweeps explicitly; VISGATE_SWEEP_INTERVAL=0 turns it off."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.fakes.runpod import API_KEY
from tests.integration.orchestrator.conftest import USER_KEY, Plane
from tests.support.waiting import eventually
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.status import Status
from visgate.orchestrator.runner import BackgroundRunner
from visgate.orchestrator.sweeper import sweep, sweep_accounts
from visgate.providers.base import EndpointSpec

STRANGER = "visgate-dep_0000000000000000"  # no record here: another install's?


async def _endpoints(plane: Plane) -> tuple[str, str]:
    """A stranger's endpoint, a dead one of ours (failed and cleaned up) and a live one."""
    assert plane.services.provider is not None
    spec = EndpointSpec(name=STRANGER, image="x", env={}, gpu_pools=["ADA_24"])
    await plane.services.provider.ensure_endpoint(spec, api_key=API_KEY)
    dead = await plane.place(
        Status.failed, error=ErrorInfo(type="WorkerFailedError", message="x"), due_at=None
    )
    live = await plane.place(Status.ready, due_at=None)
    for dep in (dead, live):
        await plane.endpoint_for(dep)
    return f"visgate-{dead.id}", f"visgate-{live.id}"


def _exists(plane: Plane, name: str) -> bool:
    return plane.runpod.state.endpoint(name) is not None


async def test_periodic_sweep_deletes_dead_endpoints_and_only_logs_strangers(
    make_plane: Any,
) -> None:
    plane: Plane = await make_plane(VISGATE_SWEEP_INTERVAL=0.1)
    dead, live = await _endpoints(plane)
    runner = BackgroundRunner(plane.services)
    await runner.start()
    try:
        await eventually(lambda: not _exists(plane, dead), what="the periodic sweep")
        swept = len(plane.runpod.state.calls_of("ListEndpoints"))
        # A few more sweeps: none of them touches the stranger or the live endpoint.
        await eventually(
            lambda: len(plane.runpod.state.calls_of("ListEndpoints")) >= swept + 3,
            what="three more sweeps",
        )
    finally:
        await runner.stop()
    assert _exists(plane, STRANGER)
    assert _exists(plane, live)


async def test_explicit_sweep_still_deletes_endpoints_without_a_record(plane: Plane) -> None:
    dead, live = await _endpoints(plane)
    assert plane.services.provider is not None
    listed = await sweep(plane.store, plane.services.provider, api_key=API_KEY, dry_run=True)
    assert sorted(o.name for o in listed) == sorted([STRANGER, dead])
    assert _exists(plane, STRANGER)

    await sweep(plane.store, plane.services.provider, api_key=API_KEY)
    assert not _exists(plane, STRANGER) and not _exists(plane, dead)
    assert _exists(plane, live)


async def test_sweep_interval_zero_turns_the_periodic_sweep_off(plane: Plane) -> None:
    dead, _ = await _endpoints(plane)
    settings = plane.services.settings.model_copy(update={"sweep_interval_seconds": 0})
    plane.services.settings = settings
    listed_before = len(plane.runpod.state.calls_of("ListEndpoints"))
    runner = BackgroundRunner(plane.services)
    await runner.start()
    try:
        await asyncio.sleep(0.5)
    finally:
        await runner.stop()
    assert _exists(plane, dead)
    assert len(plane.runpod.state.calls_of("ListEndpoints")) == listed_before  # never listed


async def test_the_sweep_reaches_the_accounts_deployments_brought(plane: Plane) -> None:
    """A deleted deployment that ran on its user's own Runpod account keeps its key until the
    final sweep; an endpoint of it found there meanwhile is removed with that key."""
    dep = await plane.place(
        Status.deleted,
        secrets={"runpod_api_key": USER_KEY},
        final_sweep_at=time.time() + 60,
        due_at=None,
    )
    await plane.endpoint_for(dep, key=USER_KEY)  # on the user's account, not the operator's

    swept = await sweep_accounts(plane.services)

    assert [o.name for o in swept] == [f"visgate-{dep.id}"]
    assert not _exists(plane, f"visgate-{dep.id}")


async def test_a_duplicate_beside_a_live_deployments_endpoint_goes_and_its_own_stays(
    plane: Plane,
) -> None:
    dep = await plane.place(Status.ready, due_at=None)
    recorded = await plane.endpoint_for(dep)
    state = plane.runpod.state
    with state.lock:  # a stale create step's second endpoint of the same name
        state.endpoints["dup0000000000"] = {
            **state.endpoints[recorded.endpoint_id],
            "id": "dup0000000000",
        }

    def names_it(d: Deployment) -> None:
        d.endpoint_id = recorded.endpoint_id

    await plane.store.deployments.mutate(dep.id, names_it)

    swept = await sweep_accounts(plane.services)

    assert [(o.endpoint_id, o.duplicate) for o in swept] == [("dup0000000000", True)]
    left = {r["id"] for r in state.endpoints.values() if r["name"] == f"visgate-{dep.id}"}
    assert left == {recorded.endpoint_id}
    assert state.template(f"visgate-{dep.id}") is not None  # the live endpoint's template
