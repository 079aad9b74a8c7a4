"""Firestore's expiring documents, read back raw from the emulator: each carries `expire_at`,
a Timestamp equal to its `expires_at`, for the TTL policies deploy.sh enables; nothing else
does; and the purge leaves a document rewritten since it was read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from tests.support.firestore_emulator import PROJECT
from visgate.domain.deployment import Deployment
from visgate.domain.records import ConsoleSession
from visgate.store.base import DEPLOYMENTS
from visgate.store.console_sessions import CONSOLE_SESSIONS
from visgate.store.firestore import FirestoreBackend
from visgate.store.firestore_expiry import EXPIRING_KINDS, TTL_FIELD, _delete_page
from visgate.store.idempotency import IDEMPOTENCY
from visgate.store.rate_limits import RATE_LIMITS
from visgate.store.repositories import Store

pytestmark = pytest.mark.firestore
PREFIX = "ttl_"


@pytest.fixture
async def backend(firestore_emulator: Any) -> AsyncIterator[FirestoreBackend]:
    firestore_emulator.reset()
    backend = FirestoreBackend(project=PROJECT, prefix=PREFIX)
    yield backend
    await backend.aclose()


@pytest.fixture
async def raw() -> AsyncIterator[firestore.AsyncClient]:
    """A client of its own, reading what is stored, as the TTL policy sees it."""
    client = firestore.AsyncClient(project=PROJECT)
    yield client
    closed = client.close()
    if asyncio.iscoroutine(closed):
        await closed


async def stored(raw: firestore.AsyncClient, kind: str) -> list[dict[str, Any]]:
    return [snap.to_dict() for snap in await raw.collection(PREFIX + kind).get()]


async def test_every_expiring_document_carries_its_expiry_as_a_timestamp(
    backend: FirestoreBackend, raw: firestore.AsyncClient
) -> None:
    store = Store(backend)
    await store.rate_limits.count_request("key-a")
    await store.rate_limits.count_request("key-a")  # the increment keeps it
    await store.rate_limits.count_request("key-b", window_s=3600)
    answered = await store.idempotency.claim("t1", "k-done", "fp", "dep_1")
    assert answered.token is not None
    assert await store.idempotency.renew("t1", "k-done", answered.token)
    assert await store.idempotency.complete("t1", "k-done", 202, {}, token=answered.token)
    guarded = await store.idempotency.claim("t1", "k-guarded", "fp", "dep_2")
    assert guarded.token is not None
    await backend.transaction(store.idempotency.guard("t1", "k-guarded", guarded.token))
    await store.idempotency.claim("t1", "k-fresh", "fp", "dep_3")
    now = time.time()
    session = ConsoleSession(id="s1", key_id="k1", tenant="t1", created_at=now, expires_at=now + 60)
    await store.console_sessions.add(session)

    docs = {kind: await stored(raw, kind) for kind in EXPIRING_KINDS}
    assert {kind: len(found) for kind, found in docs.items()} == {
        RATE_LIMITS: 2,
        IDEMPOTENCY: 3,
        CONSOLE_SESSIONS: 1,
    }
    for found in docs.values():
        for doc in found:
            expire_at = doc[TTL_FIELD]
            assert isinstance(expire_at, datetime) and expire_at.tzinfo is not None
            assert expire_at == datetime.fromtimestamp(doc["expires_at"], tz=UTC)
    # The field is the backend's own: the repositories never see it.
    for doc in docs[IDEMPOTENCY]:
        assert TTL_FIELD not in (await backend.get(IDEMPOTENCY, doc["id"]) or {})


async def test_a_deployments_ttl_is_not_a_document_expiry(
    backend: FirestoreBackend, raw: firestore.AsyncClient
) -> None:
    store = Store(backend)
    dep = Deployment.new(tenant="t1", model_id="org/model", now=time.time(), ttl_seconds=60)
    created = await store.deployments.create(dep)
    assert created.expires_at is not None  # when its endpoint goes, not its record
    [doc] = await stored(raw, DEPLOYMENTS)
    assert doc["expires_at"] == created.expires_at and TTL_FIELD not in doc


async def test_the_purge_leaves_a_document_rewritten_since_it_was_read(
    backend: FirestoreBackend, raw: firestore.AsyncClient
) -> None:
    for key in ("a", "b", "c"):
        await backend.increment(RATE_LIMITS, key, now=100.0, expires_at=160.0)
    query = raw.collection(PREFIX + RATE_LIMITS).where(filter=FieldFilter("expires_at", "<", 200))
    page = await query.get()
    assert len(page) == 3
    await backend.increment(RATE_LIMITS, "b", now=150.0, expires_at=160.0)  # written meanwhile

    assert await _delete_page(backend, page) == 2
    [left] = await stored(raw, RATE_LIMITS)
    assert left["id"] == "b@160" and left["version"] == 2
