"""Idempotency records on every backend: a key is claimed once, replays its answer for a
day, and frees itself when the request that claimed it died."""

from __future__ import annotations

import asyncio

from visgate.store.idempotency import IDEMPOTENCY_IN_FLIGHT_LEASE_S, IDEMPOTENCY_TTL_S
from visgate.store.repositories import Store


async def test_idempotency_key_is_held_then_replayed(store: Store) -> None:
    claim = await store.idempotency.claim("t1", "key-1", "fp-a", "dep_1")
    assert claim.token is not None and claim.deployment_id == "dep_1"
    held = await store.idempotency.begin("t1", "key-1", "fp-a")
    assert held is not None and held.state == "in_flight" and held.deployment_id == "dep_1"
    assert await store.idempotency.complete(
        "t1", "key-1", 202, {"deployment_id": "dep_1"}, token=claim.token
    )
    done = await store.idempotency.begin("t1", "key-1", "fp-b")
    assert done is not None and done.state == "done" and done.fingerprint == "fp-a"
    assert done.response == {"deployment_id": "dep_1"}
    other = await store.idempotency.claim("t2", "key-1", "fp-a", "dep_2")  # scoped per tenant
    assert other.token is not None
    assert await store.idempotency.abandon("t2", "key-1", token=other.token)
    assert await store.idempotency.begin("t2", "key-1", "fp-c") is None


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_in_flight_idempotency_claim_is_a_short_lease(document_backend: object) -> None:
    """A request that claimed a key and died frees it after the lease, not after a day."""
    clock = FakeClock()
    store = Store(document_backend, clock=clock)  # type: ignore[arg-type]
    assert await store.idempotency.begin("t1", "key-1", "fp-a") is None
    clock.now += IDEMPOTENCY_IN_FLIGHT_LEASE_S - 1
    held = await store.idempotency.begin("t1", "key-1", "fp-a")
    assert held is not None and held.state == "in_flight"
    clock.now += 2  # past the lease
    assert await store.idempotency.begin("t1", "key-1", "fp-a") is None  # taken over
    taken = await store.idempotency.begin("t1", "key-1", "fp-a")
    assert taken is not None and taken.state == "in_flight"
    assert taken.created_at == clock.now  # the new claim, with a lease of its own


async def test_done_idempotency_answers_replay_for_24_hours(document_backend: object) -> None:
    clock = FakeClock()
    store = Store(document_backend, clock=clock)  # type: ignore[arg-type]
    claim = await store.idempotency.claim("t1", "key-1", "fp-a", "dep_1")
    assert claim.token is not None
    clock.now += 5
    await store.idempotency.complete(
        "t1", "key-1", 202, {"deployment_id": "dep_1"}, token=claim.token
    )
    clock.now += IDEMPOTENCY_TTL_S - 10  # far past the in-flight lease, inside the day
    done = await store.idempotency.begin("t1", "key-1", "fp-a")
    assert done is not None and done.state == "done"
    assert done.response == {"deployment_id": "dep_1"}
    clock.now += 10  # 24 h after the answer
    assert await store.idempotency.begin("t1", "key-1", "fp-b") is None


async def test_an_expired_idempotency_record_is_taken_over_by_one_racer(
    document_backend: object,
) -> None:
    clock = FakeClock()
    store = Store(document_backend, clock=clock)  # type: ignore[arg-type]
    assert await store.idempotency.begin("t1", "key-1", "fp-a") is None
    clock.now += IDEMPOTENCY_IN_FLIGHT_LEASE_S + 1
    results = await asyncio.gather(
        *(store.idempotency.begin("t1", "key-1", "fp-a") for _ in range(4))
    )
    assert sum(r is None for r in results) == 1, results
    assert all(r.state == "in_flight" for r in results if r is not None)
