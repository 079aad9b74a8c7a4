"""`Idempotency-Key` for POST, after the IETF httpapi draft and Stripe's practice.

Same key and body within 24 h: the first answer again, no second deployment. Same key,
other body: 422. Same key while the first request is still running: 409. Keys are
scoped per tenant. A first request that failed releases its key so a retry can run; one
that died without answering holds it only for its in-flight lease (60 s), not for the day.
"""

from __future__ import annotations

from typing import Any

from visgate.domain.errors import IdempotencyConflictError
from visgate.store.idempotency import IdempotencyRepository


class IdempotentCall:
    def __init__(
        self, records: IdempotencyRepository, tenant: str, key: str, fingerprint: str
    ) -> None:
        self.records = records
        self.tenant = tenant
        self.key = key
        self.fingerprint = fingerprint

    async def begin(self) -> dict[str, Any] | None:
        """None: this request owns the key and runs. A dict: the stored answer to replay."""
        existing = await self.records.begin(self.tenant, self.key, self.fingerprint)
        if existing is None:
            return None
        if existing.fingerprint != self.fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was used with a different request body"
            )
        if existing.state != "done" or existing.response is None:
            raise IdempotencyConflictError(
                "a request with this Idempotency-Key is still in progress; retry shortly",
                in_flight=True,
            )
        return existing.response

    async def complete(self, status_code: int, response: dict[str, Any]) -> None:
        await self.records.complete(self.tenant, self.key, status_code, response)

    async def abandon(self) -> None:
        await self.records.abandon(self.tenant, self.key)
