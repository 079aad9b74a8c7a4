"""`ConsoleSessions`: web console sign-ins, one document per session, read on every console
request and purged (or dropped by Firestore's TTL policy) once expired."""

from __future__ import annotations

import time
from collections.abc import Callable

from visgate.domain.records import ConsoleSession
from visgate.store.base import DocumentBackend

CONSOLE_SESSIONS = "console_sessions"


class ConsoleSessions:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    async def add(self, session: ConsoleSession) -> ConsoleSession:
        stored = await self.backend.insert(CONSOLE_SESSIONS, session.model_dump(mode="json"))
        return ConsoleSession.model_validate(stored)

    async def get(self, session_id: str) -> ConsoleSession | None:
        """The session, or None when there is none or it has expired (an expired one waits
        for the purge; it is never handed out)."""
        doc = await self.backend.get(CONSOLE_SESSIONS, session_id)
        if doc is None:
            return None
        session = ConsoleSession.model_validate(doc)
        return session if session.expires_at > self.clock() else None

    async def delete(self, session_id: str) -> None:
        await self.backend.delete(CONSOLE_SESSIONS, session_id)

    async def purge_expired(self) -> int:
        return await self.backend.purge_expired(CONSOLE_SESSIONS, now=self.clock())
