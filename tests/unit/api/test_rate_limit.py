"""The per-key window: the N+1th request of a minute is refused with the seconds left in
that minute, and the next minute opens a fresh budget."""

from __future__ import annotations

import asyncio
import tracemalloc

from visgate.api.ratelimit import MemoryRateLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_refused_with_the_seconds_left_then_the_next_window_opens() -> None:
    clock = Clock(999_980.5)  # 20.5 s into a minute window (999_960 = 16_666 * 60)
    limiter = MemoryRateLimiter(3, clock=clock)
    assert [await limiter.hit("k") for _ in range(3)] == [None, None, None]
    assert await limiter.hit("k") == 40  # ceil(60 - 20.5): when the window reopens
    assert await limiter.hit("other") is None  # budgets are per key

    clock.now = 1_000_019.2
    assert await limiter.hit("k") == 1  # never 0: a client must not retry at once
    clock.now = 1_000_020.0
    assert await limiter.hit("k") is None


def _held_bytes_after(limiter: MemoryRateLimiter, clock: Clock, names: list[str]) -> int:
    """Bytes still allocated after each name made one request, all within one minute."""

    async def flood() -> None:
        for i, name in enumerate(names):
            clock.now = 999_960.0 + i * 0.0002
            await limiter.hit(name)

    tracemalloc.start()
    try:
        asyncio.run(flood())
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_under_100_000_unique_addresses() -> None:
    names = [f"198.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(200_000)]
    clock = Clock(999_960.0)
    first = _held_bytes_after(MemoryRateLimiter(300, clock=clock), clock, names[:100_000])
    clock = Clock(999_960.0)
    twice = _held_bytes_after(MemoryRateLimiter(300, clock=clock), clock, names)
    # Twice the callers, about the same memory: the limiter stopped growing.
    assert twice < first * 1.2, (first, twice)
    assert twice < 16 * 2**20


async def test_a_new_window_forgets_the_last_ones_callers() -> None:
    clock = Clock(999_960.0)
    limiter = MemoryRateLimiter(2, clock=clock)
    for i in range(1_000):
        await limiter.hit(f"addr-{i}")
    clock.now += 60  # the next window: nobody from the last one comes back
    await limiter.hit("someone-new")
    assert len(limiter) == 1


async def test_the_cap_forgets_the_caller_seen_first() -> None:
    clock = Clock(999_960.0)
    limiter = MemoryRateLimiter(1, clock=clock, max_entries=3)
    for name in ("a", "b", "c"):
        await limiter.hit(name)
    assert limiter.blocked("a") is not None
    await limiter.hit("d")  # pushes out "a"
    assert limiter.blocked("a") is None
    assert limiter.blocked("d") is not None and limiter.blocked("b") is not None
