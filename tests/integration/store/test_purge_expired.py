"""The purge keeps up on every backend: one run removes every expired counter and
idempotency record, however many (Firestore pages through them), and nothing live."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from tests.support.clock import ManualClock
from visgate.store.idempotency import IDEMPOTENCY_TTL_S
from visgate.store.repositories import Store


async def in_chunks(calls: Iterable[Callable[[], Awaitable[object]]], size: int = 100) -> None:
    """Run the calls `size` at a time: quick on the emulator, gentle on SQLite."""
    pending = list(calls)
    for start in range(0, len(pending), size):
        await asyncio.gather(*(call() for call in pending[start : start + size]))


async def test_one_purge_removes_every_expired_counter_and_keeps_the_live_ones(
    document_backend: object,
) -> None:
    clock = ManualClock()
    store = Store(document_backend, clock=clock)  # type: ignore[arg-type]
    counters = store.rate_limits
    # 1,200 keys busy in one minute: more than one page (500) of expired counters later.
    await in_chunks(lambda i=i: counters.count_request(f"old-key-{i:04d}") for i in range(1200))
    clock.advance(120)  # two windows on: every one of those has expired
    await in_chunks(lambda i=i: counters.count_request(f"new-key-{i}") for i in range(5))

    assert await store.purge_expired() == 1200
    assert await store.purge_expired() == 0  # nothing expired was left behind
    for i in range(5):  # the live counters kept their counts
        assert await counters.count_request(f"new-key-{i}") == 2
    clock.advance(120)
    assert await counters.purge_expired() == 5


async def test_one_purge_removes_every_expired_idempotency_record(
    document_backend: object,
) -> None:
    clock = ManualClock()
    store = Store(document_backend, clock=clock)  # type: ignore[arg-type]
    keys = store.idempotency
    await in_chunks(
        lambda i=i: keys.claim("t1", f"old-{i:03d}", "fp", f"dep_old_{i}") for i in range(520)
    )
    clock.advance(IDEMPOTENCY_TTL_S + 1)  # the day is out for all of them
    live = await keys.claim("t1", "live", "fp", "dep_live")
    assert live.token is not None

    assert await store.purge_expired() == 520
    assert await store.purge_expired() == 0
    held = await keys.begin("t1", "live", "fp")  # still held by its request
    assert held is not None and held.token == live.token
