"""Tenant quotas hold under real concurrency on every store: SQLite through several
connections (each on its own thread) to one file, Firestore through several clients of the
emulator. Of many requests racing for the last slots, exactly the allowed number wins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.firestore_emulator import PROJECT
from visgate.domain.deployment import Deployment
from visgate.domain.errors import QuotaExceededError, StoreUnavailableError
from visgate.domain.status import Status
from visgate.store.base import DocumentBackend
from visgate.store.quotas import Limits, TenantQuotas
from visgate.store.repositories import Store

CLIENTS = 4


@pytest.fixture
async def backends(
    backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[list[DocumentBackend]]:
    """Several independent connections to one database."""
    made: list[Any] = []
    if backend_kind == "sqlite":
        from visgate.store.sqlite import SqliteBackend

        made = [SqliteBackend(tmp_path / "visgate.db") for _ in range(CLIENTS)]
    else:
        request.getfixturevalue("firestore_emulator").reset()
        from visgate.store.firestore import FirestoreBackend

        made = [FirestoreBackend(project=PROJECT) for _ in range(CLIENTS)]
    yield made
    for backend in made:
        await backend.aclose()


async def _race(
    backends: list[DocumentBackend], requests: int, workers: int, limits: Limits
) -> list[str]:
    """`requests` reservations spread over the connections at once; the ids that won."""
    books = [TenantQuotas(b) for b in backends]

    async def one(n: int) -> str | None:
        try:
            await books[n % len(books)].reserve("acme", f"dep_{n:04d}", workers, limits)
        except QuotaExceededError:
            return None
        return f"dep_{n:04d}"

    won = await asyncio.gather(*(one(n) for n in range(requests)))
    return [w for w in won if w]


async def _settled(quotas: TenantQuotas, limits: Limits) -> tuple[int, int]:
    """The counters once the race is over. While requests race, a refused one recounts the
    held slots, in-flight ones included, so the counters may read high (more refusals,
    never more admissions); the next refusal recounts them exact."""
    with pytest.raises(QuotaExceededError):
        await quotas.reserve("acme", "dep_late", 2, limits)
    usage = await quotas.usage("acme")
    return usage.deployments, usage.workers


async def test_racing_for_the_last_deployment_slots_lets_exactly_the_limit_through(
    backends: list[DocumentBackend],
) -> None:
    limits = Limits(max_deployments=3, max_workers=100)
    won = await _race(backends, 24, 1, limits)
    assert len(won) == 3
    quotas = TenantQuotas(backends[0])
    assert sorted(await quotas.held("acme")) == sorted(won)
    assert await _settled(quotas, limits) == (3, 3)


async def test_racing_for_workers_never_goes_over_the_worker_quota(
    backends: list[DocumentBackend],
) -> None:
    limits = Limits(max_deployments=100, max_workers=5)
    won = await _race(backends, 16, 2, limits)
    assert len(won) == 2  # 2 + 2 fit in 5; a third would make 6
    quotas = TenantQuotas(backends[0])
    assert sorted(await quotas.held("acme")) == sorted(won)
    assert await _settled(quotas, limits) == (2, 4)


async def test_refusal_names_the_limit_and_the_use(backends: list[DocumentBackend]) -> None:
    quotas = TenantQuotas(backends[0])
    limits = Limits(max_deployments=2, max_workers=3)
    await quotas.reserve("acme", "dep_a", 1, limits)
    await quotas.reserve("acme", "dep_b", 2, limits)
    with pytest.raises(QuotaExceededError, match="2 of 2 active deployments"):
        await quotas.reserve("acme", "dep_c", 1, limits)
    with pytest.raises(QuotaExceededError, match="3 of 3 workers"):
        await quotas.reserve("acme", "dep_c", 1, Limits(max_deployments=9, max_workers=3))
    # Another tenant has its own quota.
    await quotas.reserve("other", "dep_x", 3, limits)


async def test_release_is_repeatable_and_frees_the_slot(backends: list[DocumentBackend]) -> None:
    quotas = TenantQuotas(backends[0])
    limits = Limits(max_deployments=1, max_workers=1)
    await quotas.reserve("acme", "dep_a", 1, limits)
    await quotas.reserve("acme", "dep_a", 1, limits)  # the same deployment: no second slot
    await quotas.release("acme", "dep_a")
    await quotas.release("acme", "dep_a")
    await quotas.reserve("acme", "dep_b", 1, limits)
    assert list(await quotas.held("acme")) == ["dep_b"]
    usage = await quotas.usage("acme")
    assert (usage.deployments, usage.workers) == (1, 1)


async def test_slots_left_by_a_crash_are_reclaimed_when_they_would_refuse(
    backends: list[DocumentBackend],
) -> None:
    """A reservation whose POST died before writing its record, and a deployment whose
    release never ran, no longer block the tenant once they are checked."""
    now = [time.time()]
    store = Store(backends[0], clock=lambda: now[0])
    quotas = store.quotas
    limits = Limits(max_deployments=2, max_workers=10)
    await quotas.reserve("acme", "dep_lost", 1, limits)  # never gets a record
    gone = Deployment.new(tenant="acme", model_id="o/m", now=now[0])
    await quotas.reserve("acme", gone.id, 1, limits)
    gone.status = Status.deleted  # stored as deleted, its release lost
    await store.deployments.create(gone)

    with pytest.raises(QuotaExceededError):  # the lost POST may still be writing: kept
        await quotas.reserve("acme", "dep_new", 1, Limits(max_deployments=1, max_workers=10))
    assert "dep_lost" in await quotas.held("acme")
    assert gone.id not in await quotas.held("acme")

    now[0] += 120  # past the grace period
    await quotas.reserve("acme", "dep_new", 1, Limits(max_deployments=1, max_workers=10))
    assert list(await quotas.held("acme")) == ["dep_new"]
    assert (await quotas.usage("acme")).deployments == 1


async def test_a_reservation_whose_commit_answer_was_lost_counts_once(
    backends: list[DocumentBackend],
) -> None:
    """The store commits the reservation but the answer is lost (a timeout); whoever runs
    it again finds it made: the slot counts once, not twice and not zero times."""
    backend: Any = backends[0]
    lost = [True]

    def lose_the_answer(method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await method(*args, **kwargs)
            if lost[0]:
                lost[0] = False
                raise StoreUnavailableError("deadline exceeded")
            return result

        return call

    for name in ("insert", "transaction"):
        if hasattr(backend, name):
            setattr(backend, name, lose_the_answer(getattr(backend, name)))
    quotas = TenantQuotas(backend)
    limits = Limits(max_deployments=3, max_workers=10)
    try:
        await quotas.reserve("acme", "dep_a", 2, limits)
    except StoreUnavailableError:
        await quotas.reserve("acme", "dep_a", 2, limits)  # the caller's own retry
    assert await quotas.held("acme") == {"dep_a": 2}
    usage = await quotas.usage("acme")
    assert (usage.deployments, usage.workers) == (1, 2)


async def test_release_never_frees_a_slot_whose_deployment_still_counts(
    backends: list[DocumentBackend],
) -> None:
    store = Store(backends[0])
    limits = Limits(max_deployments=1, max_workers=10)
    live = Deployment.new(tenant="acme", model_id="o/m", now=time.time())
    await store.quotas.reserve("acme", live.id, 1, limits)
    await store.deployments.create(live)
    await store.quotas.release("acme", live.id)  # a stray or repeated release
    assert await store.quotas.held("acme") == {live.id: 1}
    with pytest.raises(QuotaExceededError):
        await store.quotas.reserve("acme", "dep_other", 1, limits)
