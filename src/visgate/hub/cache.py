"""A TTL cache of successful results that also shares calls still in flight.

A burst of deployments of one model must make one hub call: the first caller starts the
work, later ones await the same task. Only successes are kept; an error reaches every
caller waiting at the time and the next call tries again (a user may accept a gated
model's conditions and retry at once). Small enough that a dependency would not pay.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlightCache(Generic[K, V]):
    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._done: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Task[V]] = {}

    async def get_or_run(self, key: K, run: Callable[[], Awaitable[V]]) -> V:
        hit = self._done.get(key)
        if hit is not None:
            if hit[0] > self._clock():
                return hit[1]
            del self._done[key]
        task = self._inflight.get(key)
        if task is None:

            async def work() -> V:
                return await run()

            task = asyncio.create_task(work())
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._settle(key, t))
        # shield: one caller giving up must not cancel the call the others wait on.
        return await asyncio.shield(task)

    def _settle(self, key: K, task: asyncio.Task[V]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled() or task.exception() is not None:
            return
        if self._ttl_s > 0:
            self._done[key] = (self._clock() + self._ttl_s, task.result())
            self._done.move_to_end(key)
            while len(self._done) > self._max_entries:
                self._done.popitem(last=False)

    def clear(self) -> None:
        self._done.clear()
