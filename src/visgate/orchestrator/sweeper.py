"""Orphan sweeper: provider endpoints named `visgate-*` that no live record owns are deleted.

Catches what a crash between "created" and "recorded", or a teardown that raced a creation,
could leave behind. Lists with the operator's key only.

Two levels of certainty: an endpoint whose record here is deleted, or failed and cleaned,
is surely ours and surely dead. One with no record at all may belong to another install
sharing the Runpod account (a laptop on SQLite beside production), so only the operator's
explicit `visgate sweep` deletes those; the periodic sweep just logs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from visgate.domain.errors import DeploymentNotFoundError
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.providers.base import GpuProvider
from visgate.store.repositories import Store

log = get_logger(__name__)

PREFIX = "visgate-"
NO_RECORD = "no record"


@dataclass(frozen=True, slots=True)
class Orphan:
    endpoint_id: str
    name: str
    reason: str


async def find_orphans(
    store: Store, provider: GpuProvider, *, api_key: str, delete_unknown: bool = True
) -> list[Orphan]:
    """Endpoints to delete; record-less ones only with `delete_unknown` (else logged)."""
    orphans = []
    for endpoint in await provider.list_endpoints(api_key=api_key):
        if not endpoint.name.startswith(PREFIX):
            continue
        deployment_id = endpoint.name.removeprefix(PREFIX)
        try:
            dep = await store.deployments.get(deployment_id)
        except DeploymentNotFoundError:
            if delete_unknown:
                orphans.append(Orphan(endpoint.endpoint_id, endpoint.name, NO_RECORD))
            else:
                log.info(
                    "sweep_unknown_endpoint", name=endpoint.name, endpoint_id=endpoint.endpoint_id
                )
            continue
        if dep.status is Status.deleted or (dep.status is Status.failed and not dep.needs_teardown):
            orphans.append(
                Orphan(endpoint.endpoint_id, endpoint.name, f"record is {dep.status.value}")
            )
    return orphans


async def sweep(
    store: Store,
    provider: GpuProvider,
    *,
    api_key: str,
    dry_run: bool = False,
    delete_unknown: bool = True,
) -> list[Orphan]:
    """Delete (or with `dry_run`, list) orphans. The periodic runner passes
    `delete_unknown=False`; the operator's `visgate sweep` keeps the default."""
    orphans = await find_orphans(store, provider, api_key=api_key, delete_unknown=delete_unknown)
    for orphan in orphans:
        log.info("orphan_endpoint", name=orphan.name, reason=orphan.reason, dry_run=dry_run)
        if not dry_run:
            await provider.teardown(orphan.name, api_key=api_key)
    return orphans
