"""Endpoint creation notes on the record that it began (a checkpoint written under the lease)
before its first create call: that call may skip the look-ups, a try after a lost answer
looks up by name first, and a DELETE that lands at the checkpoint stops the create."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.orchestrator.conftest import Plane
from visgate.domain.deployment import Deployment
from visgate.domain.status import Status
from visgate.providers.base import EndpointRef, EndpointSpec, Fence, GpuProvider
from visgate.store.deployments import DeploymentRepository
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend


class Watching:
    """The provider, noting for each create call whether it was fresh and what the stored
    record said then: (fresh, create_started, lease owner)."""

    def __init__(self, inner: GpuProvider, plane: Plane) -> None:
        self.inner, self.plane = inner, plane
        self.creates: list[tuple[bool, bool, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def ensure_endpoint(
        self, spec: EndpointSpec, *, api_key: str, fresh: bool = False, fence: Fence | None = None
    ) -> EndpointRef:
        stored = await self.plane.store.deployments.get(spec.name.removeprefix("visgate-"))
        self.creates.append((fresh, stored.create_started, stored.lease_owner))
        return await self.inner.ensure_endpoint(spec, api_key=api_key, fresh=fresh, fence=fence)


def _watch(plane: Plane) -> Watching:
    assert plane.services.provider is not None
    watching = Watching(plane.services.provider, plane)
    plane.services.provider = watching  # type: ignore[assignment]
    return watching


async def test_the_first_create_call_follows_the_checkpoint(plane: Plane) -> None:
    watching = _watch(plane)
    dep = await plane.place(Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0)

    await plane.run()

    assert watching.creates == [(True, True, "unit")]  # fresh; noted and still leased
    final = await plane.store.deployments.get(dep.id)
    assert final.status is Status.loading_model
    assert final.create_started and final.endpoint_id and final.lease_token is None


async def test_a_try_after_a_lost_answer_finds_the_endpoint_by_name(plane: Plane) -> None:
    dep = await plane.place(
        Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0, create_started=True
    )
    made = await plane.endpoint_for(dep)  # by the try whose answer was lost
    watching = _watch(plane)

    await plane.run()

    assert watching.creates == [(False, True, "unit")]
    final = await plane.store.deployments.get(dep.id)
    assert final.endpoint_id == made.endpoint_id
    assert plane.runpod.state.created_names("endpoint").count(f"visgate-{dep.id}") == 1


class DeleteAtCheckpoint(DeploymentRepository):
    """A real repository where the user's DELETE lands just before the checkpoint's write."""

    async def save(self, dep: Deployment, *, lease_token: str | None = None) -> Deployment:
        if lease_token is not None and dep.create_started and dep.lease_token is not None:
            await self.mutate(dep.id, lambda d: d.request_delete(time.time()))
        return await super().save(dep, lease_token=lease_token)


async def test_a_delete_at_the_checkpoint_stops_the_create(make_plane: Any, tmp_path: Any) -> None:
    store = Store(SqliteBackend(tmp_path / "deleting.db"))
    store.deployments = DeleteAtCheckpoint(store.backend)
    plane: Plane = await make_plane(store=store)
    watching = _watch(plane)
    dep = await plane.place(Status.creating_endpoint, gpu_pools=["ADA_24"], vram_gb=8.0)

    await plane.run()

    assert watching.creates == []
    assert (await plane.store.deployments.get(dep.id)).status is Status.deleting
    assert plane.runpod.state.created_names("endpoint") == []
