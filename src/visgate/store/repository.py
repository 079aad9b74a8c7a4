"""`DeploymentStore`: the domain's view of storage, the same over every backend.

Every write of a deployment goes through `save`, which checks the status move against the
transition table (domain/status.py) and the optimistic version, so an illegal move raises
and a concurrent change is never silently overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from visgate.domain.deployment import Deployment
from visgate.domain.errors import (
    ConflictError,
    DeploymentNotFoundError,
    StaleWriteError,
    ValidationError,
)
from visgate.domain.records import ApiKey, IdempotencyRecord, WebhookDelivery
from visgate.domain.status import Status, check_transition
from visgate.store.base import DEPLOYMENTS, DocumentBackend
from visgate.store.quotas import TenantQuotas

API_KEYS = "api_keys"
IDEMPOTENCY = "idempotency_keys"
RATE_LIMITS = "rate_limits"
DELIVERIES = "webhook_deliveries"

IDEMPOTENCY_TTL_S = 24 * 3600  # a done answer replays for a day
# An in-flight claim is a lease: creating a deployment takes milliseconds, so a claim still
# unanswered after a minute belongs to a request that died (crash, lost instance) and a
# retry may take the key over instead of meeting 409 until the day is out.
IDEMPOTENCY_IN_FLIGHT_LEASE_S = 60.0


def sort_key(created_at: float, doc_id: str) -> str:
    """Newest-first listing order that never ties: zero-padded time, then the id."""
    return f"{created_at:017.6f}|{doc_id}"


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        key = ""
    if "|" not in key:
        raise ValidationError(
            "cursor is not one this service issued",
            [{"field": "cursor", "message": "invalid cursor"}],
        )
    return key


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Deployment]
    next_cursor: str | None


class DeploymentStore:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock
        self.quotas = TenantQuotas(backend, clock=clock)

    # --- deployments -------------------------------------------------------------------

    @staticmethod
    def _doc(dep: Deployment) -> dict[str, Any]:
        doc = dep.to_doc()
        doc["sort_key"] = sort_key(dep.created_at, dep.id)
        return doc

    async def create(self, dep: Deployment) -> Deployment:
        stored = await self.backend.insert(DEPLOYMENTS, self._doc(dep))
        return Deployment.from_doc(stored)

    async def get(self, deployment_id: str, *, tenant: str | None = None) -> Deployment:
        """The record; another tenant's id answers exactly like a missing one (404)."""
        doc = await self.backend.get(DEPLOYMENTS, deployment_id)
        if doc is None or (tenant is not None and doc.get("tenant") != tenant):
            raise DeploymentNotFoundError(f"deployment {deployment_id} not found")
        return Deployment.from_doc(doc)

    async def save(self, dep: Deployment, *, lease_token: str | None = None) -> Deployment:
        """Write `dep` if every status move since it was read is legal and nobody else wrote
        it meanwhile."""
        path = dep.status_path()
        for current, new in pairwise(path):
            check_transition(current, new)
        stored = await self.backend.replace(
            DEPLOYMENTS, self._doc(dep), expected_version=dep.version, lease_token=lease_token
        )
        return Deployment.from_doc(stored)

    async def mutate(
        self,
        deployment_id: str,
        change: Callable[[Deployment], bool | Awaitable[bool | None] | None],
        *,
        tenant: str | None = None,
        attempts: int = 8,
    ) -> Deployment:
        """Read, apply `change`, write; re-read and re-apply when another writer got there first.

        `change` returns False to skip the write (nothing to do), anything else to write.
        """
        for attempt in range(attempts):
            dep = await self.get(deployment_id, tenant=tenant)
            result = change(dep)
            if isinstance(result, Awaitable):
                result = await result
            if result is False:
                return dep
            try:
                return await self.save(dep)
            except StaleWriteError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    async def list(
        self,
        *,
        tenant: str,
        status: Status | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        where: dict[str, Any] = {"tenant": tenant}
        if status is not None:
            where["status"] = status.value
        after = decode_cursor(cursor) if cursor else None
        docs = await self.backend.query(DEPLOYMENTS, where=where, limit=limit + 1, after=after)
        items = [Deployment.from_doc(d) for d in docs[:limit]]
        next_cursor = encode_cursor(docs[limit - 1]["sort_key"]) if len(docs) > limit else None
        return Page(items=items, next_cursor=next_cursor)

    async def claim_due(
        self, owner: str, limit: int, lease_seconds: float, *, now: float | None = None
    ) -> list[Deployment]:
        docs = await self.backend.claim_due(
            DEPLOYMENTS,
            owner=owner,
            now=self.clock() if now is None else now,
            limit=limit,
            lease_seconds=lease_seconds,
        )
        return [Deployment.from_doc(d) for d in docs]

    async def extend_lease(self, dep: Deployment, lease_seconds: float) -> bool:
        return await self._extend(DEPLOYMENTS, dep.id, dep.lease_token, lease_seconds)

    async def _extend(
        self, kind: str, doc_id: str, lease_token: str | None, lease_seconds: float
    ) -> bool:
        assert lease_token is not None
        return await self.backend.extend_lease(
            kind, doc_id, lease_token=lease_token, expires_at=self.clock() + lease_seconds
        )

    async def count_by_status(self) -> dict[str, int]:
        return await self.backend.count_by_status(DEPLOYMENTS)

    # --- API keys ------------------------------------------------------------------------

    async def add_api_key(self, key: ApiKey) -> ApiKey:
        if await self.api_key_by_name(key.name) is not None:
            raise ValidationError(
                f"an API key named {key.name!r} exists already",
                [{"field": "name", "message": "name taken"}],
            )
        doc = {**key.model_dump(mode="json"), "sort_key": sort_key(key.created_at, key.id)}
        return ApiKey.model_validate(await self.backend.insert(API_KEYS, doc))

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        doc = await self.backend.get(API_KEYS, key_hash)
        return ApiKey.model_validate(doc) if doc else None

    async def api_keys(self) -> list[ApiKey]:
        docs = await self.backend.query(API_KEYS, where={}, limit=10_000)
        return [ApiKey.model_validate(d) for d in docs]

    async def api_key_by_name(self, name: str) -> ApiKey | None:
        return next((k for k in await self.api_keys() if k.name == name), None)

    async def revoke_api_key(self, name: str) -> ApiKey | None:
        key = await self.api_key_by_name(name)
        if key is None or key.revoked_at is not None:
            return key
        key.revoked_at = self.clock()
        doc = {**key.model_dump(mode="json"), "sort_key": sort_key(key.created_at, key.id)}
        stored = await self.backend.replace(API_KEYS, doc, expected_version=key.version)
        return ApiKey.model_validate(stored)

    # --- idempotency ----------------------------------------------------------------------

    @staticmethod
    def _idempotency_id(tenant: str, key: str) -> str:
        return hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()

    async def idempotency_begin(
        self, tenant: str, key: str, fingerprint: str
    ) -> IdempotencyRecord | None:
        """Claim the key for this request (None), or return the record someone holds.

        A record past its `expires_at` (a done answer after 24 h, an in-flight claim whose
        request died) is taken over with a write conditioned on the version read, so of two
        requests racing for it exactly one wins; the loser sees the winner's claim."""
        record = IdempotencyRecord(
            id=self._idempotency_id(tenant, key),
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
                    return await self._idempotency_claim(record)
        except StaleWriteError:
            raise StaleWriteError("idempotency key is being raced; retry") from None
        raise AssertionError("unreachable")

    async def _idempotency_claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
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

    async def idempotency_complete(
        self, tenant: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        """Store the answer for replays (24 h from now). A record someone already completed
        (a takeover that finished first) keeps its answer."""
        doc = await self.backend.get(IDEMPOTENCY, self._idempotency_id(tenant, key))
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

    async def idempotency_abandon(self, tenant: str, key: str) -> None:
        """The first request failed before answering: let a retry with the key run afresh."""
        await self.backend.delete(IDEMPOTENCY, self._idempotency_id(tenant, key))

    # --- rate limits ----------------------------------------------------------------------

    async def count_request(self, key_id: str, window_s: int = 60) -> int:
        now = self.clock()
        window = int(now // window_s)
        return await self.backend.increment(
            RATE_LIMITS, f"{key_id[:16]}:{window}", now=now, expires_at=(window + 1) * window_s
        )

    # --- webhook deliveries -----------------------------------------------------------------

    async def add_delivery(self, delivery: WebhookDelivery) -> WebhookDelivery:
        doc = {
            **delivery.model_dump(mode="json"),
            "sort_key": sort_key(delivery.created_at, delivery.id),
        }
        try:
            stored = await self.backend.insert(DELIVERIES, doc)
        except ConflictError:
            existing = await self.backend.get(DELIVERIES, delivery.id)
            assert existing is not None
            stored = existing
        return WebhookDelivery.model_validate(stored)

    async def claim_due_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[WebhookDelivery]:
        docs = await self.backend.claim_due(
            DELIVERIES, owner=owner, now=self.clock(), limit=limit, lease_seconds=lease_seconds
        )
        return [WebhookDelivery.model_validate(d) for d in docs]

    async def extend_delivery_lease(self, delivery: WebhookDelivery, lease_seconds: float) -> bool:
        return await self._extend(DELIVERIES, delivery.id, delivery.lease_token, lease_seconds)

    async def save_delivery(
        self, delivery: WebhookDelivery, *, lease_token: str | None
    ) -> WebhookDelivery:
        doc = {
            **delivery.model_dump(mode="json"),
            "sort_key": sort_key(delivery.created_at, delivery.id),
        }
        stored = await self.backend.replace(
            DELIVERIES, doc, expected_version=delivery.version, lease_token=lease_token
        )
        return WebhookDelivery.model_validate(stored)

    async def purge_expired(self) -> int:
        now = self.clock()
        return sum(
            [await self.backend.purge_expired(kind, now=now) for kind in (IDEMPOTENCY, RATE_LIMITS)]
        )

    async def ping(self) -> None:
        await self.backend.ping()

    async def aclose(self) -> None:
        await self.backend.aclose()


def fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
