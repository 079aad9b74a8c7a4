"""Runs the reconciler, the webhook deliveries and the sweeper as background tasks of one
process: inside `visgate serve`, or alone as `visgate worker`."""

from __future__ import annotations

import asyncio

from visgate.domain.errors import VisgateError
from visgate.logging import get_logger
from visgate.orchestrator.deliveries import DeliveryWorker
from visgate.orchestrator.reconciler import Reconciler, owner_name
from visgate.orchestrator.sweeper import sweep_accounts
from visgate.services import Services

log = get_logger(__name__)

# Expired counters and idempotency keys are purged at least this often, sweep or not: a run
# removes up to 25,000 documents of each kind (store/firestore_expiry.py), ahead of about
# 10,000 counters that 1,000 busy API keys leave in ten minutes.
PURGE_INTERVAL_S = 600.0
_PERIODIC = frozenset({"housekeeping", "sweeper"})


class BackgroundRunner:
    def __init__(self, services: Services) -> None:
        self.services = services
        owner = owner_name()
        self.reconciler = Reconciler(services, owner=owner)
        self.deliveries = DeliveryWorker(services, owner=owner)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.reconciler.run_forever(self._stop), name="reconciler"),
            asyncio.create_task(self.deliveries.run_forever(self._stop), name="deliveries"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        if self.services.settings.sweep_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._sweeping(), name="sweeper"))
        log.info("background_started", owner=self.reconciler.owner)

    async def stop(self) -> None:
        self._stop.set()
        self.services.poke()
        self.services.poke_deliveries()
        for task in self._tasks:
            if task.get_name() in _PERIODIC:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.deliveries.aclose()

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _housekeeping(self) -> None:
        """Expire old counters and idempotency keys, as often as the sweep runs but never
        less often than `PURGE_INTERVAL_S` (a slow sweep must not let them pile up). A
        failed run is logged and the next one catches up."""
        interval = min(
            self.services.settings.sweep_interval_seconds or PURGE_INTERVAL_S, PURGE_INTERVAL_S
        )
        while True:
            await asyncio.sleep(interval)
            try:
                purged = await self.services.store.purge_expired()
            except VisgateError as exc:
                log.warning("purge_failed", error_type=exc.type, error=exc.message)
                continue
            if purged:
                log.info("purged_expired", documents=purged)

    async def _sweeping(self) -> None:
        """Delete endpoints whose record here says they are dead (VISGATE_SWEEP_INTERVAL;
        0 turns this off). Endpoints with no record are only logged: another install
        sharing the Runpod account may own them; `visgate sweep` deletes those. Every
        account in play is swept: the operator's and the ones deployments brought."""
        settings = self.services.settings
        while True:
            await asyncio.sleep(settings.sweep_interval_seconds)
            try:
                await sweep_accounts(self.services, delete_unknown=False)
            except VisgateError as exc:
                log.warning("sweep_failed", error_type=exc.type, error=exc.message)
            except Exception:  # a bug: say so, and keep sweeping
                log.exception("sweep_crashed")
