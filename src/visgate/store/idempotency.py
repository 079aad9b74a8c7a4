"""`IdempotencyRepository`: one record per (tenant, Idempotency-Key), claimed by the first
request and holding its answer for replays."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from visgate.domain.errors import ConflictError, StaleWriteError
from visgate.domain.records import IdempotencyRecord
from visgate.store.base import DocumentBackend

IDEMPOTENCY = "idempotency_keys"

IDEMPOTENCY_TTL_S = 24 * 3600  # a done answer replays for a day
# An in-flight claim is a lease: creating a deployment takes milliseconds, so a claim still
# unanswered after a minute belongs to a request that died (crash, lost instance) and a
# retry may take the key over instead of meeting 409 until the day is out.
IDEMPOTENCY_IN_FLIGHT_LEASE_S = 60.0


def fingerprint(body: dict[str, Any]) -> str:
    """The request body's identity, whatever its key order or spacing."""
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _record_id(tenant: str, key: str) -> str:
    return hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()


class IdempotencyRepository:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    async def begin(self, tenant: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Claim the key for this request (None), or return the record someone holds.

        A record past its `expires_at` (a done answer after 24 h, an in-flight claim whose
        request died) is taken over with a write conditioned on the version read, so of two
        requests racing for it exactly one wins; the loser sees the winner's claim."""
        record = IdempotencyRecord(
            id=_record_id(tenant, key),
            tenant=tenant,
            fingerprint=fingerprint,
            created_at=0.0,  # set at each try, from the store's clock
            expires_at=0.0,
        )
        retrying = AsyncRetrying(
            stop=stop_after_attempt(4),
            retry=retry_if_exception_type(StaleWriteError),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._claim(record)
        except StaleWriteError:
            raise StaleWriteError("idempotency key is being raced; retry") from None
        raise AssertionError("unreachable")

    async def _claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """One try: insert a fresh claim, else take over an expired record at its version.
        `StaleWriteError` when the record changed (or vanished) under us: try again."""
        now = self.clock()
        record.created_at, record.expires_at = now, now + IDEMPOTENCY_IN_FLIGHT_LEASE_S
        try:
            await self.backend.insert(IDEMPOTENCY, record.model_dump(mode="json"))
            return None
        except ConflictError:
            pass
        doc = await self.backend.get(IDEMPOTENCY, record.id)
        if doc is None:
            raise StaleWriteError("idempotency record deleted meanwhile")
        existing = IdempotencyRecord.model_validate(doc)
        if existing.expires_at > now:
            return existing
        await self.backend.replace(
            IDEMPOTENCY, record.model_dump(mode="json"), expected_version=existing.version
        )
        return None

    async def complete(
        self, tenant: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        """Store the answer for replays (24 h from now). A record someone already completed
        (a takeover that finished first) keeps its answer."""
        doc = await self.backend.get(IDEMPOTENCY, _record_id(tenant, key))
        if doc is None:
            return
        record = IdempotencyRecord.model_validate(doc)
        if record.state == "done":
            return
        record.state, record.status_code, record.response = "done", status_code, response
        record.expires_at = self.clock() + IDEMPOTENCY_TTL_S
        await self.backend.replace(
            IDEMPOTENCY, record.model_dump(mode="json"), expected_version=record.version
        )

    async def abandon(self, tenant: str, key: str) -> None:
        """The first request failed before answering: let a retry with the key run afresh."""
        await self.backend.delete(IDEMPOTENCY, _record_id(tenant, key))

    async def purge_expired(self) -> int:
        return await self.backend.purge_expired(IDEMPOTENCY, now=self.clock())
