"""The level-triggered reconciler: a leased loop (leased_loop.py) over deployment records.

It runs ONE step per claimed record outside any transaction while the heartbeat keeps the
lease, then applies the step's result (plain data, results.py) to the freshest record only
if the lease still holds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import structlog

from visgate.deployments.service import queue_pending_events
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import (
    DeploymentNotFoundError,
    LeaseLostError,
    StaleWriteError,
    StoreAccessError,
    TransientError,
    VisgateError,
)
from visgate.domain.status import Status, can_fail
from visgate.logging import get_logger
from visgate.orchestrator.backoff import MAX_TRANSIENT_ATTEMPTS, STORE_TROUBLE, retry_delay
from visgate.orchestrator.leased_loop import LeasedLoop
from visgate.orchestrator.results import Expire, Fail, LogLine, StepResult, set_fields
from visgate.orchestrator.steps import STEPS
from visgate.orchestrator.teardown import TEARDOWN_STATUSES, blocked
from visgate.services import Services

log = get_logger(__name__)

MAX_CHECKPOINTS = 3  # a step checkpoints once; more means a step that never goes on


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _transient(dep: Deployment, exc: Exception) -> StepResult:
    """Retry later with backoff; after the cap, fail where the status still may fail.

    Counted from the record as claimed: while the lease holds, only a status change (which
    resets the count and makes the loop skip this result) touches `attempts`."""
    error = ErrorInfo.of(exc)
    retry_after = None
    if isinstance(exc, VisgateError) and exc.headers.get("Retry-After"):
        with contextlib.suppress(ValueError):
            retry_after = float(exc.headers["Retry-After"])
    attempts = dep.attempts + 1
    capped = attempts >= MAX_TRANSIENT_ATTEMPTS
    if capped and can_fail(dep.status):
        return StepResult(transition=Fail(error))
    if capped and dep.status in TEARDOWN_STATUSES:
        return blocked(dep, exc)
    delay = retry_delay(attempts, retry_after)
    lines: tuple[LogLine, ...] = ()
    if capped:
        # A status that cannot fail (teardown, a serving deployment) keeps trying; the
        # record keeps its own error, only the logs say the step keeps failing.
        log.warning("step_keeps_failing", error_type=error.type, attempts=attempts)
        if attempts == MAX_TRANSIENT_ATTEMPTS:  # said once on the record, not at every try
            message = f"{error.type}: {error.message}; still retrying every {delay:.0f} s"
            lines = (LogLine(message, level="warning"),)
    else:
        message = f"{error.type}: {error.message}; retrying in {delay:.0f} s (try {attempts})"
        lines = (LogLine(message, level="warning"),)
    return StepResult(due_in=delay, fields={"attempts": attempts}, logs=lines)


def _succeeded(result: StepResult) -> StepResult:
    """A step that worked ends the run of transient failures: `attempts` counts only
    consecutive ones, so scattered hiccups over a long wait never add up to a failure."""
    return replace(result, fields={**result.fields, "attempts": 0})


class Reconciler(LeasedLoop[Deployment, StepResult]):
    name = "reconciler"
    wake_coalesce_s = 0.005  # a step's first Runpod or hub call takes far longer

    def __init__(self, services: Services, *, owner: str | None = None) -> None:
        settings = services.settings
        super().__init__(
            owner=owner or owner_name(),
            concurrency=settings.reconciler_concurrency,
            lease_seconds=settings.lease_seconds,
            poll_interval=settings.poll_interval_seconds,
            wake=services.wakes.reconciler,
        )
        self.services = services
        self.store = services.store.deployments

    async def claim(self, limit: int) -> list[Deployment]:
        return await self.store.claim_due(self.owner, limit, self.lease_seconds)

    async def extend(self, item: Deployment) -> bool:
        return await self.store.extend_lease(item, self.lease_seconds)

    async def work(self, item: Deployment) -> StepResult:
        structlog.contextvars.bind_contextvars(deployment_id=item.id, status=item.status.value)
        return await self.run_step(item)

    async def settle(self, item: Deployment, outcome: StepResult) -> None:
        token = item.lease_token
        assert token is not None
        try:
            await self.apply(item.id, item.status, token, outcome)
        except (LeaseLostError, DeploymentNotFoundError):
            log.info("lease_lost_result_dropped")
            if outcome.undo is not None:
                await outcome.undo()
        except StaleWriteError as exc:
            log.warning("apply_gave_up_will_retry", error=exc.message)
        except STORE_TROUBLE as exc:
            log.warning("apply_failed_will_retry", error=exc.message)

    async def release(self, item: Deployment) -> None:
        """Clear our lease and make the record due at once; best effort."""
        try:
            fresh = await self.store.get(item.id)
            if fresh.lease_token != item.lease_token:
                return
            fresh.lease_owner = fresh.lease_token = fresh.lease_expires_at = None
            fresh.due_now()
            await self.store.save(fresh, lease_token=item.lease_token)
            log.info("lease_released_on_shutdown")
        except Exception as exc:  # the lease simply runs out instead
            log.info("lease_release_failed", error=type(exc).__name__)

    async def run_step(self, dep: Deployment) -> StepResult:
        """The first half of `process`: the record's one step, its checkpoints written, its
        errors turned into a result (retry later, or fail where the status can still fail)."""
        if dep.is_expired(time.time()):
            return StepResult(transition=Expire())
        step = STEPS[dep.status]
        try:
            for _ in range(MAX_CHECKPOINTS):
                result = await step(self.services, dep)
                if result.checkpoint is None:
                    return _succeeded(result)
                dep = await self._write_checkpoint(dep, result.checkpoint.fields)
                step = result.checkpoint.then
            raise RuntimeError(f"the {dep.status.value} step kept asking for checkpoints")
        except LeaseLostError:  # a fence refused: another claim owns the record now
            log.info("lease_lost_step_stopped")
            return StepResult(due_in=None)
        except VisgateError as exc:
            if exc.transient or isinstance(exc, StoreAccessError):
                # Not the deployment's fault: fixing the store setup lets it go on.
                log.warning("step_transient_error", error_type=exc.type, error=exc.message)
                return _transient(dep, exc)
            log.info("step_failed", error_type=exc.type, error=exc.message)
            if dep.status in TEARDOWN_STATUSES:
                return blocked(dep, exc)  # the provider refuses: say so, retry rarely
            if not can_fail(dep.status):
                return _transient(dep, exc)  # a ready one keeps serving
            return StepResult(transition=Fail(ErrorInfo.of(exc)))
        except Exception as exc:  # a bug: retry with backoff, fail after the cap
            log.exception("step_crashed")
            return _transient(dep, exc)

    async def _write_checkpoint(self, dep: Deployment, fields: Mapping[str, Any]) -> Deployment:
        """Write a step's checkpoint under the lease, keeping the lease; the record as
        written (with its new version) is what the step goes on with."""
        set_fields(dep, fields)
        try:
            return await self.store.save(dep, lease_token=dep.lease_token)
        except (StaleWriteError, LeaseLostError) as exc:  # a callback or DELETE wrote first
            raise TransientError(f"the record changed at a checkpoint ({exc.message})") from exc

    async def apply(
        self, deployment_id: str, ran_for: Status, token: str, result: StepResult
    ) -> None:
        """The second half of `process`: write a step's result to the freshest record, only
        under the lease it ran under. Facts (an endpoint that now exists) are recorded
        always; the step's decision only if the record is still in the status the step ran
        for: a step that ran for an older status applies nothing that contradicts a newer
        one (a worker's `ready`, a DELETE). Raises LeaseLostError when the lease is gone."""
        for _ in range(10):
            fresh = await self.store.get(deployment_id)
            if fresh.lease_token != token:
                raise LeaseLostError("lease lost before the result was written")
            was_blocked = fresh.teardown_blocked is not None
            now = time.time()
            result.facts.record(fresh, now, self.services.catalogue)
            held: list[str] = []  # a ready event waits for its endpoint to be known
            if fresh.pending_events:
                held = await queue_pending_events(self.services, fresh)
                fresh.pending_events = list(held)
            if fresh.status == ran_for:
                result.advance(fresh, now)
            else:
                fresh.due_now()  # the record moved on (deleted, callback): run its new step
            if len(fresh.pending_events) > len(held) and fresh.due_at is None:
                fresh.due_now()  # new events are queued below, and again at the next pass
            fresh.keep_expiry_due()
            fresh.lease_owner = fresh.lease_token = fresh.lease_expires_at = None
            try:
                saved = await self.store.save(fresh, lease_token=token)
            except StaleWriteError:
                continue
            if saved.status != ran_for:
                log.info("status_changed", new_status=saved.status.value)
            if saved.pending_events:
                await queue_pending_events(self.services, saved)
            if not saved.counts_against_quota:
                await self._release_quota(saved)
            if was_blocked != (saved.teardown_blocked is not None):
                await self._note_blocked(saved)
            if saved.due_at is not None and saved.due_at <= time.time():
                self.services.poke()
            return
        raise StaleWriteError("record kept changing; the step will run again")

    async def _note_blocked(self, dep: Deployment) -> None:
        """Keep the operator's list of blocked teardowns in step with the record; a failure
        only logs (the record itself says it on GET)."""
        blocked_teardowns = self.services.store.blocked_teardowns
        try:
            if dep.teardown_blocked is not None:
                await blocked_teardowns.mark(dep)
            else:
                await blocked_teardowns.clear(dep.id)
        except VisgateError as exc:
            log.warning("blocked_teardown_note_failed", error_type=exc.type, error=exc.message)

    async def _release_quota(self, dep: Deployment) -> None:
        """Give the tenant's slot back. A failure is left to the quota's recount (the
        next refusal checks held slots against their records), not to a retry of a step
        whose result is written already."""
        try:
            await self.services.store.quotas.release(dep.tenant, dep.id)
        except VisgateError as exc:
            log.warning("quota_release_failed", error_type=exc.type, error=exc.message)
