"""API keys by name, on every backend: a name belongs to one key, however many keys there
are and however many creates race for it; keys stored before name documents existed are
still found and revoked."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from visgate.domain.errors import ConflictError
from visgate.domain.records import ApiKey
from visgate.store.api_keys import API_KEY_NAMES, API_KEYS, name_id
from visgate.store.cursors import listed_doc
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend


def key(name: str, key_id: str | None = None, created_at: float | None = None) -> ApiKey:
    return ApiKey(
        id=key_id or f"hash-{name}",
        name=name,
        tenant=name,
        created_at=time.time() if created_at is None else created_at,
    )


def _insert_rows(db: Path, keys: list[ApiKey]) -> None:
    """Many stored keys at once, written straight into the database file (one transaction
    instead of one call each), the way keys stored before name documents look."""
    rows = [
        (API_KEYS, k.id, k.tenant, listed_doc(k)["sort_key"], json.dumps(listed_doc(k)))
        for k in keys
    ]
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO documents (kind, id, tenant, sort_key, version, body)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                rows,
            )
    finally:
        conn.close()


async def test_keys_past_the_ten_thousandth_are_found_and_revoked(tmp_path: Path) -> None:
    db = tmp_path / "visgate.db"
    store = Store(SqliteBackend(db))
    try:
        await store.api_keys.add(key("first", created_at=1.0))  # the oldest of all
        await store.backend.insert(API_KEYS, listed_doc(key("legacy", created_at=2.0)))
        _insert_rows(db, [key(f"k{i}", created_at=10.0 + i) for i in range(10_000)])

        for name in ("first", "legacy"):
            revoked = await store.api_keys.revoke(name)
            assert revoked is not None and revoked.revoked_at is not None
            found = await store.api_keys.by_name(name)
            assert found is not None and found.revoked_at is not None
        assert len(await store.api_keys.list()) == 10_002
    finally:
        await store.aclose()


async def test_a_key_stored_without_a_name_document_is_found_and_keeps_its_name(
    store: Store,
) -> None:
    await store.backend.insert(API_KEYS, listed_doc(key("legacy")))
    assert await store.backend.get(API_KEY_NAMES, name_id("legacy")) is None

    found = await store.api_keys.by_name("legacy")
    assert found is not None and found.id == "hash-legacy"
    with pytest.raises(ConflictError, match="legacy"):
        await store.api_keys.add(key("legacy", key_id="hash-other"))
    revoked = await store.api_keys.revoke("legacy")
    assert revoked is not None and revoked.revoked_at is not None
    assert await store.api_keys.by_name("nobody") is None


async def test_of_racing_creates_with_one_name_exactly_one_succeeds(store: Store) -> None:
    results = await asyncio.gather(
        *(store.api_keys.add(key("x", key_id=f"hash-{i}")) for i in range(4)),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, ApiKey)]
    assert len(made) == 1, results
    assert all(isinstance(r, ConflictError) for r in results if r not in made)
    assert [k.id for k in await store.api_keys.list()] == [made[0].id]
    found = await store.api_keys.by_name("x")
    assert found is not None and found.id == made[0].id


async def test_a_name_left_by_a_create_that_died_is_free_after_a_minute(
    document_backend: object,
) -> None:
    now = [1_000_000.0]
    store = Store(document_backend, clock=lambda: now[0])  # type: ignore[arg-type]
    doc = {"id": name_id("x"), "name": "x", "key_id": "hash-never-written", "created_at": now[0]}
    await store.backend.insert(API_KEY_NAMES, doc)

    with pytest.raises(ConflictError):  # its create may still be writing the key
        await store.api_keys.add(key("x"))
    now[0] += 61
    made = await store.api_keys.add(key("x"))
    found = await store.api_keys.by_name("x")
    assert found is not None and found.id == made.id
