"""Orphan sweeper: provider endpoints named `visgate-*` whose record is missing, deleted or
failed-and-cleaned are deleted. Catches what a crash between "created" and "recorded", or a
teardown that raced a creation, could leave behind. Lists with the operator's key only.
"""

from __future__ import annotations

from dataclasses import dataclass

from visgate.domain.errors import DeploymentNotFoundError
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.providers.base import GpuProvider
from visgate.store.repository import DeploymentStore

log = get_logger(__name__)

PREFIX = "visgate-"
_DEAD = {Status.deleted, Status.failed}


@dataclass(frozen=True, slots=True)
class Orphan:
    endpoint_id: str
    name: str
    reason: str


async def find_orphans(
    store: DeploymentStore, provider: GpuProvider, *, api_key: str
) -> list[Orphan]:
    orphans = []
    for endpoint in await provider.list_endpoints(api_key=api_key):
        if not endpoint.name.startswith(PREFIX):
            continue
        deployment_id = endpoint.name.removeprefix(PREFIX)
        try:
            dep = await store.get(deployment_id)
        except DeploymentNotFoundError:
            orphans.append(Orphan(endpoint.endpoint_id, endpoint.name, "no record"))
            continue
        if dep.status is Status.deleted or (dep.status is Status.failed and not dep.needs_teardown):
            orphans.append(
                Orphan(endpoint.endpoint_id, endpoint.name, f"record is {dep.status.value}")
            )
    return orphans


async def sweep(
    store: DeploymentStore, provider: GpuProvider, *, api_key: str, dry_run: bool = False
) -> list[Orphan]:
    orphans = await find_orphans(store, provider, api_key=api_key)
    for orphan in orphans:
        log.info("orphan_endpoint", name=orphan.name, reason=orphan.reason, dry_run=dry_run)
        if not dry_run:
            await provider.teardown(orphan.name, api_key=api_key)
    return orphans
