"""Removing what a deployment made: the `failed` step's cleanup and the `deleting` step.

Both are repeatable. The endpoint and template go first (with the deployment's own key),
the secrets last, so the key that reaches the endpoint is never gone while something may
still be left on the provider.
"""

from __future__ import annotations

from visgate.deployments.service import provider_key
from visgate.domain.deployment import Deployment
from visgate.domain.errors import SecretNotFoundError
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.orchestrator.results import LogLine, Move, StepResult, provider_of, wait
from visgate.providers.base import endpoint_name
from visgate.services import Services

log = get_logger(__name__)


def came_through_failed(dep: Deployment) -> bool:
    """The record was `failed` before its current status, so the failed step's cleanup ran:
    it deletes the secrets only once "nothing left to remove" is on the record."""
    return any(event.status is Status.failed for event in dep.history[:-1])


def may_hold_resources(dep: Deployment) -> bool:
    """Whether the provider may still hold something of this deployment.

    Pools or an endpoint id count even without `needs_teardown` (a delete can land while
    the create step is still running), except after a failed record's cleanup.
    """
    if dep.needs_teardown:
        return True
    return not came_through_failed(dep) and bool(dep.gpu_pools or dep.endpoint_id)


async def teardown_provider(services: Services, dep: Deployment) -> None:
    """Scale to zero and delete the endpoint and template. Repeatable.

    A deployment's own Runpod key is deleted only after this has succeeded (both steps
    below keep that order), so a key that is gone means an earlier try already removed
    everything it could reach, and its final write was lost; retrying could never succeed.
    """
    try:
        key = await provider_key(services, dep)
    except SecretNotFoundError:
        log.warning("teardown_key_gone", after_failed_cleanup=came_through_failed(dep))
        return
    await provider_of(services).teardown(endpoint_name(dep.id), api_key=key)


async def teardown(services: Services, dep: Deployment) -> None:
    """Remove the endpoint, its template, and the deployment's secrets. Repeatable."""
    if may_hold_resources(dep):
        await teardown_provider(services, dep)
    await services.secrets.delete_for(dep.id)


async def clean_up_failed(services: Services, dep: Deployment) -> StepResult:
    """Two passes: remove cloud resources (recorded), then the deployment's secrets.

    The secrets outlive the resources' record, so the key that reaches the endpoint is
    never gone while the record still says something may be left.
    """
    if not dep.needs_teardown:
        await services.secrets.delete_for(dep.id)
        return wait(None)
    await teardown_provider(services, dep)
    # Due at once: the next pass removes the secrets.
    return StepResult(resources_removed=True, logs=(LogLine("cloud resources removed"),))


async def delete(services: Services, dep: Deployment) -> StepResult:
    await teardown(services, dep)
    return StepResult(
        resources_removed=True,
        transition=Move(Status.deleted, "endpoint, template and secrets removed"),
        events=("deployment.deleted",),
        due_in=None,
    )
