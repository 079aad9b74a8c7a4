"""One suite, every backend: SQLite and the real Firestore emulator behave the same."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import (
    ConflictError,
    DeploymentNotFoundError,
    IllegalTransitionError,
    LeaseLostError,
    StaleWriteError,
    ValidationError,
)
from visgate.domain.records import WebhookDelivery
from visgate.domain.status import Status
from visgate.store.repositories import Store


def new_dep(tenant: str = "t1", model: str = "org/model", now: float | None = None) -> Deployment:
    return Deployment.new(tenant=tenant, model_id=model, now=now or time.time())


async def test_created_record_reads_back_for_its_tenant_only(store: Store) -> None:
    dep = await store.deployments.create(new_dep())
    got = await store.deployments.get(dep.id, tenant="t1")
    assert got.model_id == "org/model"
    assert got.status is Status.validating
    assert got.version == 1
    with pytest.raises(DeploymentNotFoundError):
        await store.deployments.get(dep.id, tenant="someone-else")
    with pytest.raises(DeploymentNotFoundError):
        await store.deployments.get("dep_missing", tenant="t1")


async def test_same_id_cannot_be_created_twice(store: Store) -> None:
    dep = new_dep()
    await store.deployments.create(dep)
    with pytest.raises(ConflictError):
        await store.deployments.create(dep)


async def test_write_from_a_stale_read_is_refused(store: Store) -> None:
    created = await store.deployments.create(new_dep())
    first = await store.deployments.get(created.id)
    second = await store.deployments.get(created.id)
    first.log(time.time(), "first writer")
    await store.deployments.save(first)
    second.log(time.time(), "second writer")
    with pytest.raises(StaleWriteError):
        await store.deployments.save(second)
    assert [e.message for e in (await store.deployments.get(created.id)).logs][-1] == "first writer"


async def test_illegal_status_move_raises_and_writes_nothing(store: Store) -> None:
    dep = await store.deployments.create(new_dep())
    dep.status = Status.ready  # skipping every step: a bug
    with pytest.raises(IllegalTransitionError):
        await store.deployments.save(dep)
    assert (await store.deployments.get(dep.id)).status is Status.validating


async def test_mutate_retries_over_concurrent_writers(store: Store) -> None:
    dep = await store.deployments.create(new_dep())

    def add_line(d: Deployment) -> None:
        d.log(time.time(), "line")

    await asyncio.gather(
        *(store.deployments.mutate(dep.id, add_line, attempts=30) for _ in range(5))
    )
    lines = [e for e in (await store.deployments.get(dep.id)).logs if e.message == "line"]
    assert len(lines) == 5


async def test_list_is_newest_first_filtered_and_paginates_without_gaps(
    store: Store,
) -> None:
    base = time.time()
    ids = []
    for i in range(23):
        dep = new_dep(now=base + i)
        if i % 3 == 0:
            dep.move_to(Status.failed, base + i)
        ids.append((await store.deployments.create(dep)).id)
    await store.deployments.create(new_dep(tenant="other", now=base + 100))

    seen: list[str] = []
    cursor = None
    while True:
        page = await store.deployments.list(tenant="t1", limit=5, cursor=cursor)
        seen += [d.id for d in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))

    failed = await store.deployments.list(tenant="t1", status=Status.failed, limit=100)
    assert [d.id for d in failed.items] == [i for n, i in enumerate(ids) if n % 3 == 0][::-1]
    with pytest.raises(ValidationError):
        await store.deployments.list(tenant="t1", cursor="not-a-cursor")


async def test_records_due_but_still_leased_never_hide_the_claimable_ones(
    store: Store,
) -> None:
    """A DELETE or a worker callback makes a record due at once while a loop still holds it;
    a burst of those ahead in due order must not starve the records nobody holds."""
    now = time.time()
    held = [await store.deployments.create(new_dep(now=now - 100 + i)) for i in range(6)]
    assert len(await store.deployments.claim_due("busy-loop", 6, 600)) == 6

    def due_now(d: Deployment) -> None:
        d.due_at = now - 50

    for dep in held:
        await store.deployments.mutate(dep.id, due_now)
    free = await store.deployments.create(new_dep(now=now - 10))

    got = await store.deployments.claim_due("other-loop", 2, 600)
    assert [d.id for d in got] == [free.id]


async def test_each_due_record_goes_to_exactly_one_claimant(store: Store) -> None:
    deps = [await store.deployments.create(new_dep()) for _ in range(12)]
    now = time.time() + 1
    results = await asyncio.gather(
        *(store.deployments.claim_due(f"owner-{i}", 5, 30, now=now) for i in range(4))
    )
    claimed = [d.id for batch in results for d in batch]
    assert len(claimed) == len(set(claimed))
    # whatever is left is still claimable, and nothing is handed out twice overall
    rest = await store.deployments.claim_due("late", 100, 30, now=now)
    assert sorted(claimed + [d.id for d in rest]) == sorted(d.id for d in deps)
    assert await store.deployments.claim_due("again", 100, 30, now=now) == []


async def test_leased_record_returns_when_its_holder_dies(store: Store) -> None:
    dep = await store.deployments.create(new_dep())
    now = time.time() + 1
    [held] = await store.deployments.claim_due("a", 10, 30, now=now)
    assert held.lease_owner == "a" and held.lease_token
    assert await store.deployments.claim_due("b", 10, 30, now=now + 29) == []
    [taken] = await store.deployments.claim_due("b", 10, 30, now=now + 31)
    assert taken.id == dep.id and taken.lease_owner == "b"
    held.move_to(Status.selecting_gpu, now)
    with pytest.raises((LeaseLostError, StaleWriteError)):
        await store.deployments.save(held, lease_token=held.lease_token)


async def test_holder_writes_next_step_and_releases(store: Store) -> None:
    await store.deployments.create(new_dep())
    now = time.time() + 1
    [held] = await store.deployments.claim_due("a", 10, 30, now=now)
    token = held.lease_token
    held.move_to(Status.selecting_gpu, now)
    held.lease_owner = held.lease_token = held.lease_expires_at = None
    held.due_at = now + 5
    saved = await store.deployments.save(held, lease_token=token)
    assert saved.status is Status.selecting_gpu and saved.lease_token is None
    assert await store.deployments.claim_due("b", 10, 30, now=now + 1) == []
    [again] = await store.deployments.claim_due("b", 10, 30, now=now + 6)
    assert again.status is Status.selecting_gpu


async def test_api_write_during_a_lease_keeps_the_lease(store: Store) -> None:
    dep = await store.deployments.create(new_dep())
    now = time.time() + 1
    [held] = await store.deployments.claim_due("a", 10, 30, now=now)

    def delete(d: Deployment) -> None:
        d.move_to(Status.deleting, now)
        d.due_at = now

    after = await store.deployments.mutate(dep.id, delete)
    assert after.status is Status.deleting and after.lease_token == held.lease_token
    assert await store.deployments.claim_due("b", 10, 30, now=now + 1) == []  # still leased to "a"
    with pytest.raises(StaleWriteError):
        await store.deployments.save(held, lease_token=held.lease_token)


async def test_extended_lease_keeps_others_out(store: Store) -> None:
    await store.deployments.create(new_dep())
    now = time.time()
    [held] = await store.deployments.claim_due("a", 10, 2, now=now)
    assert await store.deployments.extend_lease(held, 60)
    assert await store.deployments.claim_due("b", 10, 30, now=now + 5) == []
    held.lease_token = "stolen"
    assert not await store.deployments.extend_lease(held, 60)


async def test_a_delivery_queued_leased_is_held_until_its_lease_runs_out(store: Store) -> None:
    now = time.time()
    delivery = WebhookDelivery(
        id="msg_dep_1_ready",
        deployment_id="dep_1",
        tenant="t1",
        key_id=None,
        event_type="deployment.ready",
        url="https://example.com/hook",
        body="{}",
        created_at=now,
        due_at=now,
    )
    held = await store.deliveries.add_leased(delivery, "a", 30)
    assert held is not None and held.lease_owner == "a" and held.lease_token
    assert held.due_at == held.lease_expires_at and held.version == 1
    assert await store.deliveries.add_leased(delivery, "b", 30) is None  # queued before
    assert (await store.deliveries.add(delivery)).lease_owner == "a"
    store.deliveries.clock = lambda: now + 29
    assert await store.deliveries.claim_due("b", 10, 30) == []
    store.deliveries.clock = lambda: now + 31
    [taken] = await store.deliveries.claim_due("b", 10, 30)
    assert taken.lease_owner == "b" and taken.lease_token != held.lease_token
    held.state = "delivered"
    with pytest.raises((LeaseLostError, StaleWriteError)):
        await store.deliveries.save(held, lease_token=held.lease_token)


async def test_request_counter_counts_per_window(store: Store) -> None:
    counts = [await store.rate_limits.count_request("key-a") for _ in range(3)]
    assert counts == [1, 2, 3]
    assert await store.rate_limits.count_request("key-b") == 1


async def test_counter_restarts_after_its_window(document_backend: object) -> None:
    backend = document_backend
    assert await backend.increment("rate_limits", "k", now=100.0, expires_at=160.0) == 1  # type: ignore[attr-defined]
    assert await backend.increment("rate_limits", "k", now=110.0, expires_at=160.0) == 2  # type: ignore[attr-defined]
    assert await backend.increment("rate_limits", "k", now=161.0, expires_at=220.0) == 1  # type: ignore[attr-defined]


async def test_counts_by_status(store: Store) -> None:
    for _ in range(2):
        await store.deployments.create(new_dep())
    failed = new_dep()
    failed.fail(time.time(), ErrorInfo(type="X", message="y"))
    await store.deployments.create(failed)
    assert await store.deployments.count_by_status() == {"validating": 2, "failed": 1}


async def test_store_answers_ping(store: Store) -> None:
    await store.ping()


async def test_a_transaction_writes_all_of_its_documents_or_none(store: Store) -> None:
    backend = store.backend
    await backend.insert("things", {"id": "a", "n": 1, "tenant": "t1", "sort_key": "1"})

    async def move(tx: Any) -> int:
        a = await tx.get("things", "a")
        assert await tx.get("things", "missing") is None
        tx.put("things", {**a, "n": a["n"] + 1})
        tx.insert("things", {"id": "b", "n": 10, "tenant": "t1", "sort_key": "2"})
        return int(a["version"])

    assert await backend.transaction(move) == 1
    a, b = await backend.get("things", "a"), await backend.get("things", "b")
    assert a is not None and (a["n"], a["version"]) == (2, 2)
    assert b is not None and (b["n"], b["version"]) == (10, 1)

    async def fails_after_writing(tx: Any) -> None:
        a = await tx.get("things", "a")
        tx.put("things", {**a, "n": 99})
        tx.delete("things", "b")
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await backend.transaction(fails_after_writing)
    assert (await backend.get("things", "a"))["n"] == 2  # type: ignore[index]
    assert await backend.get("things", "b") is not None

    async def listed(tx: Any) -> list[str]:
        docs = await tx.query("things", where={"tenant": "t1"}, limit=10)
        tx.delete("things", "b")
        return [d["id"] for d in docs]

    assert await backend.transaction(listed) == ["b", "a"]  # newest sort_key first
    assert await backend.get("things", "b") is None

    async def again(tx: Any) -> None:
        tx.insert("things", {"id": "a", "n": 0})

    with pytest.raises(ConflictError):
        await backend.transaction(again)


async def test_racing_transactions_each_see_the_others_writes(store: Store) -> None:
    """Read-modify-write of one document from many transactions at once: none is lost,
    and the document each one writes beside it lands with it."""
    backend = store.backend

    async def bump(n: int) -> None:
        async def fn(tx: Any) -> None:
            doc = await tx.get("counters", "shared") or {"id": "shared", "n": 0, "version": 0}
            tx.put("counters", {**doc, "n": doc["n"] + 1})
            tx.insert("marks", {"id": f"m{n}", "at": doc["n"]})

        await backend.transaction(fn)

    await asyncio.gather(*(bump(n) for n in range(10)))
    shared = await backend.get("counters", "shared")
    assert shared is not None and shared["n"] == 10
    marks = [await backend.get("marks", f"m{n}") for n in range(10)]
    assert sorted(m["at"] for m in marks if m is not None) == list(range(10))
