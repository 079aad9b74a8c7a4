"""The webhook lookup pool: a bounded pool of its own, a per-tenant cap on lookups holding a
thread, a slot given up only when the lookup's thread finishes (not when its caller stops
waiting), and waiting for a slot counted in the URL check's timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.waiting import eventually
from visgate.domain.errors import ValidationError
from visgate.webhooks import resolver, urls
from visgate.webhooks.resolver import LookupPool

PUBLIC = "93.184.216.34"


class Gates:
    """A blocking lookup: a name starting with `slow` holds its thread until `open()`."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started: list[str] = []
        self.lock = threading.Lock()

    def lookup(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.started.append(host)
        if host.startswith("slow"):
            self.gate.wait(10)
        if host.startswith("missing"):
            raise OSError("no such host")
        return [PUBLIC]

    def count(self) -> int:
        with self.lock:
            return len(self.started)

    def open(self) -> None:
        self.gate.set()


@pytest.fixture
def gates() -> Iterator[Gates]:
    made = Gates()
    yield made
    made.open()  # never leave a pool thread blocked for the next test


@pytest.fixture
def pool(gates: Gates) -> Iterator[LookupPool]:
    made = LookupPool(threads=6, per_tenant=2, lookup=gates.lookup)
    yield made
    gates.open()
    made.shutdown()


async def test_a_tenant_holds_at_most_its_share_of_threads(pool: LookupPool, gates: Gates) -> None:
    futures = [pool.submit(f"slow-{i}.test", 443, tenant="a") for i in range(5)]
    await eventually(lambda: gates.count() == 2, within=2, what="two lookups on threads")
    assert (pool.running("a"), pool.queued("a")) == (2, 3)
    # Another tenant's lookup is not queued behind them.
    assert await asyncio.wait_for(pool.resolve("fast.test", 443, tenant="b"), 1) == [PUBLIC]
    assert gates.count() == 3
    gates.open()
    assert [await asyncio.wrap_future(f) for f in futures] == [[PUBLIC]] * 5
    await eventually(lambda: pool.running("a") == 0, within=2, what="the slots given back")
    assert pool.queued("a") == 0


async def test_a_slot_is_given_up_when_the_thread_finishes_not_when_the_caller_gives_up(
    pool: LookupPool, gates: Gates
) -> None:
    for i in range(2):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.resolve(f"slow-{i}.test", 443, tenant="a"), 0.05)
    # Both callers stopped waiting, but their lookups still hold their threads.
    assert pool.running("a") == 2
    third = pool.submit("fast.test", 443, tenant="a")
    await asyncio.sleep(0.1)
    assert not third.done() and pool.queued("a") == 1  # still behind the hung lookups
    gates.open()
    assert await asyncio.wait_for(asyncio.wrap_future(third), 2) == [PUBLIC]
    await eventually(lambda: pool.running("a") == 0, within=2, what="the slots given back")


async def test_a_queued_lookup_whose_caller_gave_up_leaves_the_lane_and_never_runs(
    pool: LookupPool, gates: Gates
) -> None:
    holding = [pool.submit(f"slow-{i}.test", 443, tenant="a") for i in range(2)]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.resolve("abandoned.test", 443, tenant="a"), 0.05)
    assert pool.queued("a") == 0
    gates.open()
    for future in holding:
        await asyncio.wrap_future(future)
    await eventually(lambda: pool.running("a") == 0, within=2, what="the slots given back")
    assert "abandoned.test" not in gates.started


async def test_a_lookup_error_reaches_the_caller_and_frees_the_slot(
    pool: LookupPool, gates: Gates
) -> None:
    with pytest.raises(OSError, match="no such host"):
        await pool.resolve("missing.test", 443, tenant="a")
    await eventually(lambda: pool.running("a") == 0, within=2, what="the slot given back")


async def test_lookups_without_a_tenant_share_one_lane(pool: LookupPool, gates: Gates) -> None:
    for i in range(3):
        pool.submit(f"slow-{i}.test", 443, tenant=None)
    await eventually(lambda: gates.count() == 2, within=2, what="two lookups on threads")
    assert (pool.running(None), pool.queued(None)) == (2, 1)


def test_a_pool_needs_a_thread_and_a_share() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LookupPool(threads=0)
    with pytest.raises(ValueError, match="at least 1"):
        LookupPool(per_tenant=0)


class RefusingExecutor(ThreadPoolExecutor):
    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the event loop's default executor was used")


async def test_the_system_resolver_never_uses_the_default_executor() -> None:
    loop = asyncio.get_running_loop()
    refusing = RefusingExecutor(max_workers=1)
    loop.set_default_executor(refusing)
    target = await urls.resolve_safe_target("http://localhost:9/", allow_private=True, tenant="a")
    assert "127.0.0.1" in target.addresses or "::1" in target.addresses


async def test_waiting_for_a_slot_counts_in_the_check_timeout(
    monkeypatch: pytest.MonkeyPatch, gates: Gates
) -> None:
    shared = LookupPool(threads=4, per_tenant=1, lookup=gates.lookup)
    monkeypatch.setattr(resolver, "_shared", shared)
    monkeypatch.setattr(urls, "RESOLVE_TIMEOUT_SECONDS", 0.2)
    try:
        hung = asyncio.create_task(
            urls.check_webhook_url("https://slow.example.com/", allow_private=False, tenant="a")
        )
        await eventually(lambda: gates.count() == 1, within=2, what="the slow lookup started")
        started = time.perf_counter()
        with pytest.raises(ValidationError, match="did not resolve in time"):
            await urls.check_webhook_url(
                "https://fast.example.com/", allow_private=False, tenant="a"
            )
        assert time.perf_counter() - started < 1
        assert "fast.example.com" not in gates.started  # it never got a slot
        # Another tenant's check does not wait for tenant a's slot.
        await urls.check_webhook_url("https://fast.example.com/", allow_private=False, tenant="b")
        with pytest.raises(ValidationError, match="did not resolve in time"):
            await hung
    finally:
        gates.open()
        shared.shutdown()
