"""Console sessions on every backend: stored, read and deleted by id; an expired one is never
handed out, even before the purge removes it; the purge takes the expired ones and keeps the
live ones. (That a Firestore session document carries `expire_at` for the TTL policy is
checked with the other expiring kinds, in test_firestore_expiry.py.)"""

from __future__ import annotations

from tests.support.clock import ManualClock
from visgate.domain.records import ConsoleSession
from visgate.store.console_sessions import CONSOLE_SESSIONS
from visgate.store.repositories import Store


def session(clock: ManualClock, name: str, seconds: float = 3600) -> ConsoleSession:
    return ConsoleSession(
        id=f"sha-{name}",
        key_id=f"key-{name}",
        tenant=f"tenant-{name}",
        created_at=clock(),
        expires_at=clock() + seconds,
    )


def store_with_clock(document_backend: object) -> tuple[Store, ManualClock]:
    clock = ManualClock()
    return Store(document_backend, clock=clock), clock  # type: ignore[arg-type]


async def test_a_session_is_stored_read_and_deleted(document_backend: object) -> None:
    store, clock = store_with_clock(document_backend)
    sessions = store.console_sessions
    added = await sessions.add(session(clock, "a"))
    await sessions.add(session(clock, "b"))

    got = await sessions.get("sha-a")
    assert got is not None
    assert (got.id, got.key_id, got.tenant) == ("sha-a", "key-a", "tenant-a")
    assert got.expires_at == added.expires_at == clock() + 3600
    assert await sessions.get("sha-unknown") is None

    await sessions.delete("sha-a")
    assert await sessions.get("sha-a") is None
    assert await sessions.get("sha-b") is not None  # only that one
    await sessions.delete("sha-a")  # deleting again is harmless


async def test_an_expired_session_is_never_handed_out(document_backend: object) -> None:
    store, clock = store_with_clock(document_backend)
    sessions = store.console_sessions
    await sessions.add(session(clock, "short", seconds=60))

    clock.advance(59)
    assert await sessions.get("sha-short") is not None
    clock.advance(1)  # its last instant is over
    assert await sessions.get("sha-short") is None
    # Still stored until the purge, but not handed out.
    assert await store.backend.get(CONSOLE_SESSIONS, "sha-short") is not None


async def test_the_purge_removes_expired_sessions_and_keeps_live_ones(
    document_backend: object,
) -> None:
    store, clock = store_with_clock(document_backend)
    sessions = store.console_sessions
    for i in range(3):
        await sessions.add(session(clock, f"old-{i}", seconds=60))
    for i in range(2):
        await sessions.add(session(clock, f"live-{i}", seconds=7200))
    clock.advance(120)

    assert await store.purge_expired() == 3  # the store's purge includes console sessions
    assert await sessions.purge_expired() == 0
    for i in range(3):
        assert await store.backend.get(CONSOLE_SESSIONS, f"sha-old-{i}") is None
    for i in range(2):
        assert await sessions.get(f"sha-live-{i}") is not None
    clock.advance(7200)
    assert await sessions.purge_expired() == 2
