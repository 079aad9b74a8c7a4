"""Fencing: a step proves it still holds its record's lease right before every call that
makes something billable, and a step that learns it lost the lease after making something
removes what it made unless the record still wants it.

A lease is only a promise about time. An instance can stall past its lease (a frozen VM, a
long pause, a store brownout that refuses two extensions) while a provider call is in
flight; meanwhile another instance claims the record and, say, runs its DELETE. Without a
fence the stalled step would wake, create an endpoint, and only then find its result
refused: an endpoint nobody records, billing by the second. The fence is one lease
extension, a write that succeeds only while this claim's token is the stored one; a step
that passed its last fence and then stalled is caught after its call, by the fence before
its next call or by the refused write of its result, and cleans up with the key it holds
in memory (the record's own secrets may be deleted by then).
"""

from __future__ import annotations

from visgate.domain.deployment import Deployment
from visgate.domain.errors import DeploymentNotFoundError, LeaseLostError, VisgateError
from visgate.domain.status import HOLDS_RESOURCES
from visgate.logging import get_logger
from visgate.providers.base import EndpointRef, Fence
from visgate.services import Services

log = get_logger(__name__)


async def hold(services: Services, dep: Deployment) -> None:
    """Raise `LeaseLostError` unless this claim of `dep` still holds its lease (extended)."""
    if not await services.store.deployments.extend_lease(dep, services.settings.lease_seconds):
        raise LeaseLostError("the lease on this deployment was lost; stopping before the call")


def fence_for(services: Services, dep: Deployment) -> Fence:
    async def fence() -> None:
        await hold(services, dep)

    return fence


async def undo_after_lost_lease(
    services: Services, deployment_id: str, name: str, key: str, made: EndpointRef | None
) -> None:
    """Remove what a step made once its lease was lost, if the record no longer wants it.

    Gone, failed, deleting or deleted: everything called `name` goes, with `key` (the one
    the step used). Still one that holds resources: the current lease holder adopts what
    carries the name (every create looks up by name first), so only an endpoint
    beside the one the record names goes (a duplicate). Never raises: what it cannot
    remove now, the deletion's final sweep and the periodic sweeper find by name."""
    provider = services.provider
    if provider is None:
        return
    try:
        try:
            fresh: Deployment | None = await services.store.deployments.get(deployment_id)
        except DeploymentNotFoundError:
            fresh = None
        if fresh is None or fresh.status not in HOLDS_RESOURCES:
            await provider.teardown(name, api_key=key)
            log.warning("stale_step_cleaned_up", name=name, record=_status(fresh))
        elif made is not None and fresh.endpoint_id and fresh.endpoint_id != made.endpoint_id:
            await provider.teardown(name, api_key=key, endpoint_id=made.endpoint_id)
            log.warning("stale_step_duplicate_removed", name=name, endpoint_id=made.endpoint_id)
    except VisgateError as exc:
        log.warning("stale_step_cleanup_failed", name=name, error_type=exc.type, error=exc.message)


def _status(dep: Deployment | None) -> str:
    return dep.status.value if dep is not None else "gone"
