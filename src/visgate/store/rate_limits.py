"""`RateLimitCounters`: request counts per API key and fixed window, shared by every API
instance that uses the same database."""

from __future__ import annotations

import time
from collections.abc import Callable

from visgate.store.base import DocumentBackend

RATE_LIMITS = "rate_limits"


class RateLimitCounters:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    async def count_request(self, key_id: str, window_s: int = 60) -> int:
        """Count one request of `key_id`; the number made in the current window, this one
        included."""
        now = self.clock()
        window = int(now // window_s)
        return await self.backend.increment(
            RATE_LIMITS, f"{key_id[:16]}:{window}", now=now, expires_at=(window + 1) * window_s
        )

    async def purge_expired(self) -> int:
        return await self.backend.purge_expired(RATE_LIMITS, now=self.clock())
