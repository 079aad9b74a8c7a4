"""The level-triggered reconciler loop (after dstack's leased pipelines).

Claim due records with a lease; run ONE step per record outside any transaction while a
heartbeat keeps the lease; apply the step's result to the freshest record only if the
lease still holds. A loop that dies simply stops renewing: its records come due again
when their leases run out and any other loop takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from dataclasses import replace

import structlog

from visgate.deployments.service import queue_pending_events
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import (
    DeploymentNotFoundError,
    LeaseLostError,
    StaleWriteError,
    StoreAccessError,
    VisgateError,
)
from visgate.domain.status import Status, can_fail
from visgate.logging import get_logger
from visgate.orchestrator.backoff import MAX_TRANSIENT_ATTEMPTS, STORE_TROUBLE, retry_delay
from visgate.orchestrator.results import StepResult
from visgate.orchestrator.steps import STEPS
from visgate.services import Services

log = get_logger(__name__)


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _transient(exc: VisgateError | Exception) -> StepResult:
    error = ErrorInfo.of(exc)
    retry_after = None
    if isinstance(exc, VisgateError) and exc.headers.get("Retry-After"):
        with contextlib.suppress(ValueError):
            retry_after = float(exc.headers["Retry-After"])

    def retry_later(d: Deployment, now: float) -> None:
        d.attempts += 1
        capped = d.attempts >= MAX_TRANSIENT_ATTEMPTS
        if capped and can_fail(d.status):
            d.fail(now, error)
            return
        delay = retry_delay(d.attempts, retry_after)
        d.due_at = now + delay
        if capped:
            # A status that cannot fail (teardown, a serving deployment) keeps trying; the
            # record keeps its own error, only the logs say the step keeps failing.
            log.warning("step_keeps_failing", error_type=error.type, attempts=d.attempts)
            if d.attempts > MAX_TRANSIENT_ATTEMPTS:
                return  # said once on the record; the logs must not fill with repeats
            message = f"{error.type}: {error.message}; still retrying every {delay:.0f} s"
        else:
            message = f"{error.type}: {error.message}; retrying in {delay:.0f} s (try {d.attempts})"
        d.log(now, message, level="warning")

    return StepResult(advance=retry_later)


def _permanent(exc: VisgateError) -> StepResult:
    return StepResult(advance=lambda d, now: d.fail(now, ErrorInfo.of(exc)))


def _succeeded(result: StepResult) -> StepResult:
    """A step that worked ends the run of transient failures: `attempts` counts only
    consecutive ones, so scattered hiccups over a long wait never add up to a failure."""

    def advance(d: Deployment, now: float) -> None:
        d.attempts = 0
        result.advance(d, now)

    return replace(result, advance=advance)


class Reconciler:
    def __init__(self, services: Services, *, owner: str | None = None) -> None:
        self.services = services
        self.store = services.store.deployments
        self.owner = owner or owner_name()
        settings = services.settings
        self.lease_seconds = settings.lease_seconds
        self.concurrency = settings.reconciler_concurrency
        self.poll_interval = settings.poll_interval_seconds
        self._running: set[asyncio.Task[None]] = set()

    async def run_once(self) -> int:
        """Claim what is due (up to free capacity) and start a task per record."""
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self.store.claim_due(self.owner, free, self.lease_seconds)
        for dep in claimed:
            task = asyncio.create_task(self.process(dep))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claimed)

    async def drain(self) -> None:
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def run_forever(self, stop: asyncio.Event) -> None:
        wake = self.services.wake
        idle_wait = 0.05
        while not stop.is_set():
            wake.clear()
            try:
                claimed = await self.run_once()
            except STORE_TROUBLE as exc:
                log.warning("claim_failed", error_type=exc.type, error=exc.message)
                claimed = 0
            if claimed:
                idle_wait = 0.05
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=idle_wait)
            idle_wait = min(self.poll_interval, idle_wait * 2)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)

    async def process(self, dep: Deployment) -> None:
        """Run one step and write its result. Never raises: a task of the loop that raised
        would die unseen; a record whose write failed comes due again when its lease ends."""
        structlog.contextvars.bind_contextvars(deployment_id=dep.id, status=dep.status.value)
        token = dep.lease_token
        assert token is not None
        try:
            result = await self._step_with_heartbeat(dep)
            await self.apply(dep.id, dep.status, token, result)
        except asyncio.CancelledError:
            # Shutting down: hand the record back now rather than when the lease ends.
            await asyncio.shield(self._release(dep.id, token))
            raise
        except (LeaseLostError, DeploymentNotFoundError):
            log.info("lease_lost_result_dropped")
        except StaleWriteError as exc:
            log.warning("apply_gave_up_will_retry", error=exc.message)
        except STORE_TROUBLE as exc:
            log.warning("apply_failed_will_retry", error=exc.message)
        except Exception:
            log.exception("apply_crashed")

    async def _step_with_heartbeat(self, dep: Deployment) -> StepResult:
        step_done = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(dep, step_done))
        try:
            return await self.run_step(dep)
        finally:
            # Never cancel a lease write mid-transaction: an abandoned Firestore
            # transaction keeps its document locked until the server times it out.
            step_done.set()
            await asyncio.shield(heartbeat)

    async def _release(self, deployment_id: str, token: str) -> None:
        """Clear our lease and make the record due at once; best effort."""
        try:
            fresh = await self.store.get(deployment_id)
            if fresh.lease_token != token:
                return
            fresh.lease_owner = fresh.lease_token = fresh.lease_expires_at = None
            fresh.due_at = time.time()
            await self.store.save(fresh, lease_token=token)
            log.info("lease_released_on_shutdown")
        except Exception as exc:  # the lease simply runs out instead
            log.info("lease_release_failed", error=type(exc).__name__)

    async def run_step(self, dep: Deployment) -> StepResult:
        """The first half of `process`: the record's one step, its errors turned into a
        result (retry later, or fail where the status can still fail)."""
        if dep.is_expired(time.time()):
            return StepResult(advance=lambda d, now: d.request_delete(now, expired=True))
        step = STEPS[dep.status]
        try:
            return _succeeded(await step(self.services, dep))
        except VisgateError as exc:
            if exc.transient or isinstance(exc, StoreAccessError):
                # Not the deployment's fault: fixing the store setup lets it go on.
                log.warning("step_transient_error", error_type=exc.type, error=exc.message)
                return _transient(exc)
            log.info("step_failed", error_type=exc.type, error=exc.message)
            if not can_fail(dep.status):
                return _transient(exc)  # teardown must finish, a ready one keeps serving
            return _permanent(exc)
        except Exception as exc:  # a bug: retry with backoff, fail after the cap
            log.exception("step_crashed")
            return _transient(exc)

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
            if fresh.pending_events:
                await queue_pending_events(self.services, fresh)
                fresh.pending_events = []
            now = time.time()
            result.facts(fresh, now)
            if fresh.status == ran_for:
                result.advance(fresh, now)
            else:
                fresh.due_at = now  # the record moved on (deleted, callback): run its new step
            if fresh.pending_events:
                fresh.due_at = now
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
            if saved.due_at is not None and saved.due_at <= time.time():
                self.services.poke()
            return
        raise StaleWriteError("record kept changing; the step will run again")

    async def _release_quota(self, dep: Deployment) -> None:
        """Give the tenant's slot back. A failure is left to the quota's recount (the
        next refusal checks held slots against their records), not to a retry of a step
        whose result is written already."""
        try:
            await self.services.store.quotas.release(dep.tenant, dep.id)
        except VisgateError as exc:
            log.warning("quota_release_failed", error_type=exc.type, error=exc.message)

    async def _heartbeat(self, dep: Deployment, step_done: asyncio.Event) -> None:
        interval = self.lease_seconds / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(step_done.wait(), timeout=interval)
            if step_done.is_set():
                return
            try:
                extended = await self.store.extend_lease(dep, self.lease_seconds)
            except STORE_TROUBLE as exc:
                log.warning("lease_extension_failed", error=exc.message)
                continue
            if not extended:
                log.warning("lease_extension_refused")
                return
