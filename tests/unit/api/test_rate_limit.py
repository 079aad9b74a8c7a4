"""The per-key window: the N+1th request of a minute is refused with the seconds left in
that minute, and the next minute opens a fresh budget."""

from __future__ import annotations

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
