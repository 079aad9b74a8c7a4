"""`Store`: one repository per record type, all over the same `DocumentBackend`.

The service holds one `Store` (`services.store`) and reaches each record type through its
repository: `store.deployments`, `store.api_keys`, `store.idempotency`,
`store.rate_limits`, `store.deliveries`, `store.quotas`, `store.blocked_teardowns`,
`store.console_sessions`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from visgate.store.api_keys import ApiKeyRepository
from visgate.store.base import DocumentBackend
from visgate.store.blocked_teardowns import BlockedTeardowns
from visgate.store.console_sessions import ConsoleSessions
from visgate.store.deliveries import DeliveryRepository
from visgate.store.deployments import DeploymentRepository
from visgate.store.idempotency import IdempotencyRepository
from visgate.store.quotas import TenantQuotas
from visgate.store.rate_limits import RateLimitCounters


class Store:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.deployments = DeploymentRepository(backend, clock=clock)
        self.api_keys = ApiKeyRepository(backend, clock=clock)
        self.idempotency = IdempotencyRepository(backend, clock=clock)
        self.rate_limits = RateLimitCounters(backend, clock=clock)
        self.deliveries = DeliveryRepository(backend, clock=clock)
        self.quotas = TenantQuotas(backend, clock=clock)
        self.blocked_teardowns = BlockedTeardowns(backend)
        self.console_sessions = ConsoleSessions(backend, clock=clock)

    async def purge_expired(self) -> int:
        """Drop idempotency records, request counters and console sessions whose time is over."""
        return (
            await self.idempotency.purge_expired()
            + await self.rate_limits.purge_expired()
            + await self.console_sessions.purge_expired()
        )

    async def ping(self) -> None:
        await self.backend.ping()

    async def aclose(self) -> None:
        await self.backend.aclose()
