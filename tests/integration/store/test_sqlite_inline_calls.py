"""The SQLite backend answers keyed reads and one-row writes on the event loop: these tests
hold the file's write lock from another connection (as another process would) and check
that nothing fails or is lost because of it, and that the WAL stays bounded although the
loop's connection never checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from visgate.domain.deployment import Deployment
from visgate.domain.errors import ConflictError
from visgate.store import sqlite_runner
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend


def _dep(model: str = "o/m") -> Deployment:
    return Deployment.new(tenant="t", model_id=model, now=time.time())


async def _held_write_lock(db: Path) -> sqlite3.Connection:
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE documents SET status = status WHERE kind = 'nothing'")
    return other


async def test_a_write_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    db = tmp_path / "visgate.db"
    store = Store(SqliteBackend(db))
    first = await store.deployments.create(_dep())
    other = await _held_write_lock(db)
    try:
        pending = asyncio.create_task(store.deployments.create(_dep("o/second")))
        await asyncio.sleep(0.2)
        assert not pending.done()  # waiting for the lock, not failed
    finally:
        other.execute("COMMIT")
        other.close()
    second = await asyncio.wait_for(pending, 10)
    assert (await store.deployments.get(second.id)).model_id == "o/second"
    assert (await store.deployments.get(first.id)).id == first.id
    await store.aclose()


async def test_a_read_answers_while_another_process_writes(tmp_path: Path) -> None:
    db = tmp_path / "visgate.db"
    store = Store(SqliteBackend(db))
    dep = await store.deployments.create(_dep())
    other = await _held_write_lock(db)
    try:
        read = await asyncio.wait_for(store.deployments.get(dep.id), 1)
        assert read.id == dep.id
    finally:
        other.execute("ROLLBACK")
        other.close()
    await store.aclose()


async def test_a_refused_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(SqliteBackend(tmp_path / "visgate.db"))
    dep = await store.deployments.create(_dep())
    with pytest.raises(ConflictError):
        await store.deployments.create(dep)
    again = await store.deployments.create(_dep("o/after"))  # no transaction left open
    assert (await store.deployments.get(again.id)).model_id == "o/after"
    await store.aclose()


async def test_the_wal_stays_bounded_under_many_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_runner, "CHECKPOINT_EVERY", 50)
    db = tmp_path / "visgate.db"
    store = Store(SqliteBackend(db))
    for _ in range(1500):
        await store.deployments.create(_dep())
        await asyncio.sleep(0)  # let the thread's checkpoint run beside the writes
    wal = db.with_name(db.name + "-wal")
    # Each commit appends 5-8 pages: unchecked, 1,500 of them grow the WAL past 40 MB;
    # checkpointed every 50 commits, it is reused from its start.
    assert wal.stat().st_size < 8 * 1024 * 1024
    await store.aclose()
