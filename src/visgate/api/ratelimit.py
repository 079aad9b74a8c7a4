"""Per-key fixed-window request limits.

With `STORE=firestore` several instances serve one key, so the count lives in the store
(one counter document per key and minute). With SQLite there is one API process, so an
in-memory window gives the same answer without a write per request.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from visgate.store.rate_limits import RateLimitCounters

WINDOW_S = 60
# ~150 bytes a caller: a few MB at most, on instances with 1 GiB.
MAX_ENTRIES = 50_000


def _until_next_window(now: float) -> float:
    """Whole seconds, at least one, until the window that holds `now` ends."""
    return max(1.0, math.ceil((now // WINDOW_S + 1) * WINDOW_S - now))


class RateLimiter(Protocol):
    async def hit(self, key_id: str) -> float | None:
        """Count one request; None if allowed, else seconds until the window reopens."""
        ...


class MemoryRateLimiter:
    """Counts for the current window only, at most `max_entries` of them.

    Bounded whatever the traffic: a new window drops every count of the last one at once,
    and past `max_entries` callers in one window the one seen first is forgotten (it may
    then get through again this window; memory, not the limit, is what the cap protects).
    """

    def __init__(
        self,
        limit: int,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.limit = limit
        self.clock = clock
        self.max_entries = max_entries
        self._window = -1
        self._counts: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    def _current(self, now: float) -> None:
        window = int(now // WINDOW_S)
        if window != self._window:
            self._window = window
            self._counts = OrderedDict()

    def blocked(self, key_id: str) -> float | None:
        """Like `hit` without counting: seconds until the window reopens if it is used up."""
        now = self.clock()
        self._current(now)
        if self._counts.get(key_id, 0) >= self.limit:
            return _until_next_window(now)
        return None

    async def hit(self, key_id: str) -> float | None:
        now = self.clock()
        self._current(now)
        count = self._counts.get(key_id, 0) + 1
        if count == 1 and len(self._counts) >= self.max_entries:
            self._counts.popitem(last=False)
        self._counts[key_id] = count
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
