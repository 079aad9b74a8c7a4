"""Removing what a deployment made: the `failed` step's cleanup, the `deleting` step and
the final sweep after both.

All are repeatable. The endpoint and template go first (with the deployment's own key),
the secrets last, so the key that reaches the endpoint is never gone while something may
still be left on the provider. A teardown is final only when no stale holder can still
act: the secrets stay until one more by-name sweep, two leases after the teardown
(fencing.py says why a stale step can act no later than that).
"""

from __future__ import annotations

import time
from dataclasses import replace

from visgate.deployments.service import provider_key
from visgate.domain.deployment import Deployment, ErrorInfo, TeardownBlocked
from visgate.domain.errors import SecretNotFoundError, VisgateError
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.orchestrator.backoff import blocked_delay
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


def final_sweep_delay(services: Services) -> float:
    """How long a teardown keeps the provider key before its final by-name sweep: two
    leases. A step that held the record before the teardown claimed it lost its lease by
    then, so it can no longer pass a fence; only a call already in flight when it stalled
    can still land, and this sweep (or that step's own undo) removes what it made."""
    return 2 * services.settings.lease_seconds


async def _remove_resources(services: Services, dep: Deployment) -> StepResult:
    """Tear down now; the final sweep (and the secrets' removal) is due two leases later."""
    await teardown_provider(services, dep)
    delay = final_sweep_delay(services)
    return StepResult(
        resources_removed=True, fields={"final_sweep_at": time.time() + delay}, due_in=delay
    )


async def clean_up_failed(services: Services, dep: Deployment) -> StepResult:
    """Remove cloud resources (recorded), then, after the final sweep, the secrets.

    The secrets outlive the resources' record, so the key that reaches the endpoint is
    never gone while the record still says something may be left.
    """
    if dep.needs_teardown:
        removed = await _remove_resources(services, dep)
        return replace(removed, logs=(LogLine("cloud resources removed"),))
    if dep.final_sweep_at is not None:
        return await final_sweep(services, dep)
    await services.secrets.delete_for(dep.id)
    return wait(None)


async def delete(services: Services, dep: Deployment) -> StepResult:
    """Tear down, and write `deleted` at once; the provider key stays until the final
    sweep (`final_sweep_delay` later) when anything may have been made."""
    held = may_hold_resources(dep) or dep.final_sweep_at is not None
    if held:
        removed = await _remove_resources(services, dep)
        return replace(
            removed,
            transition=Move(Status.deleted, "endpoint and template removed"),
            events=("deployment.deleted",),
        )
    await services.secrets.delete_for(dep.id)
    return StepResult(
        resources_removed=True,
        transition=Move(Status.deleted, "nothing was created; secrets removed"),
        events=("deployment.deleted",),
        due_in=None,
    )


async def final_sweep(services: Services, dep: Deployment) -> StepResult:
    """Once more by name, after any stale holder's lease has run out, then the secrets:
    from here on nothing of this deployment can act on the provider."""
    if dep.final_sweep_at is None:
        return wait(None)
    left = dep.final_sweep_at - time.time()
    if left > 0:
        return wait(left)
    try:
        await teardown_provider(services, dep)
    except VisgateError as exc:
        if exc.transient:
            raise
        # The teardown itself went through; a key revoked since only ends this extra check.
        log.warning("final_sweep_refused", error_type=exc.type, error=exc.message)
    await services.secrets.delete_for(dep.id)
    swept = LogLine("final sweep: nothing of it is left on the provider; secrets removed")
    return StepResult(fields={"final_sweep_at": None}, logs=(swept,), due_in=None)


# Statuses whose step removes cloud resources: a refusal there is a blocked teardown.
TEARDOWN_STATUSES = (Status.deleting, Status.failed)


def blocked(dep: Deployment, exc: BaseException) -> StepResult:
    """A teardown the provider refused (or kept failing past the retry cap): say on the
    record what may be left on which account and why, tell the user once
    (`deployment.teardown_blocked`), and try again on a long, growing interval."""
    now = time.time()
    attempts = dep.attempts + 1
    delay = blocked_delay(attempts)
    error = ErrorInfo.of(exc)
    account = "user" if "runpod_api_key" in dep.secret_refs else "operator"
    name = endpoint_name(dep.id)
    endpoint = f"endpoint {name}" + (f" ({dep.endpoint_id})" if dep.endpoint_id else "")
    first = dep.teardown_blocked is None
    since = dep.teardown_blocked.since if dep.teardown_blocked else now
    state = TeardownBlocked(
        since=since,
        account=account,
        left=[endpoint, f"template {name}"],
        error=error,
        retry_at=now + delay,
    )
    lines: tuple[LogLine, ...] = ()
    if first:
        whose = (
            "the Runpod account of the key given as user_runpod_key"
            if account == "user"
            else "the operator's Runpod account"
        )
        message = (
            f"teardown blocked: could not remove {endpoint} and its template on {whose}"
            f" ({error.type}: {error.message}); it may still be billing. Restore the key's"
            " access or delete the endpoint in the Runpod console, then DELETE again to retry"
            f" at once; retried by itself every {delay / 60:.0f} min and less often after"
        )
        lines = (LogLine(message, level="error"),)
    log.warning("teardown_blocked", error_type=error.type, attempts=attempts, first=first)
    return StepResult(
        due_in=delay,
        fields={"attempts": attempts, "teardown_blocked": state},
        logs=lines,
        events=("deployment.teardown_blocked",) if first else (),
    )
