"""Runs the reconciler, the webhook deliveries and the sweeper as background tasks of one
process: inside `visgate serve`, or alone as `visgate worker`."""

from __future__ import annotations

import asyncio
import contextlib

from visgate.domain.errors import VisgateError
from visgate.logging import get_logger
from visgate.orchestrator.deliveries import DeliveryWorker
from visgate.orchestrator.reconciler import Reconciler, owner_name
from visgate.orchestrator.sweeper import sweep
from visgate.services import Services

log = get_logger(__name__)


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
        log.info("background_started", owner=self.reconciler.owner)

    async def stop(self) -> None:
        self._stop.set()
        self.services.poke()
        self.deliveries.wake.set()
        for task in self._tasks:
            if task.get_name() == "housekeeping":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.deliveries.aclose()

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _housekeeping(self) -> None:
        """Expire old counters and idempotency keys; sweep orphan endpoints."""
        settings = self.services.settings
        interval = settings.sweep_interval_seconds
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(VisgateError):
                await self.services.store.purge_expired()
            key = settings.runpod_api_key.get_secret_value() if settings.runpod_api_key else None
            if self.services.provider is not None and key:
                try:
                    await sweep(self.services.store, self.services.provider, api_key=key)
                except VisgateError as exc:
                    log.warning("sweep_failed", error_type=exc.type, error=exc.message)
