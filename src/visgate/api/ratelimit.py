"""Per-key fixed-window request limits.

With `STORE=firestore` several instances serve one key, so the count lives in the store
(one counter document per key and minute). With SQLite there is one API process, so an
in-memory window gives the same answer without a write per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from visgate.store.rate_limits import RateLimitCounters

WINDOW_S = 60


def _until_next_window(now: float) -> float:
    """Whole seconds, at least one, until the window that holds `now` ends."""
    return max(1.0, math.ceil((now // WINDOW_S + 1) * WINDOW_S - now))


class RateLimiter(Protocol):
    async def hit(self, key_id: str) -> float | None:
        """Count one request; None if allowed, else seconds until the window reopens."""
        ...


class MemoryRateLimiter:
    def __init__(self, limit: int, *, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = {}

    def blocked(self, key_id: str) -> float | None:
        """Like `hit` without counting: seconds until the window reopens if it is used up."""
        now = self.clock()
        window = int(now // WINDOW_S)
        current, count = self._windows.get(key_id, (window, 0))
        if current == window and count >= self.limit:
            return _until_next_window(now)
        return None

    async def hit(self, key_id: str) -> float | None:
        now = self.clock()
        window = int(now // WINDOW_S)
        current, count = self._windows.get(key_id, (window, 0))
        if current != window:
            count = 0
            if len(self._windows) > 10_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        count += 1
        self._windows[key_id] = (window, count)
        if count > self.limit:
            return _until_next_window(now)
        return None


class StoreRateLimiter:
    def __init__(self, counters: RateLimitCounters, limit: int) -> None:
        self.counters = counters
        self.limit = limit

    async def hit(self, key_id: str) -> float | None:
        count = await self.counters.count_request(key_id, WINDOW_S)
        if count > self.limit:
            return _until_next_window(self.counters.clock())
        return None
