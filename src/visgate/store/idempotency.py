"""`IdempotencyRepository`: one record per (tenant, Idempotency-Key), claimed by the first
request and holding its answer for replays.

A claim names the deployment id chosen for the key and a token of the request holding it,
and every change of it is one transaction:

- The claim is a lease the request renews while it runs, so a slow create keeps its key; a
  request that died frees it when the lease runs out.
- The deployment record is written only while the claim is held (`guard`, checked in the
  record's own transaction), so a request whose key was taken over cannot create it.
- A claim is taken over only when the deployment it names does not exist (read in the same
  transaction); when it does, the key made its deployment and that is the answer. So one
  (tenant, key) makes at most one deployment within the day, whatever fails or stalls.
- Only the holder answers (`complete`) or gives the key back (`abandon`), and giving back
  leaves a claim whose deployment exists.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from visgate.domain.deployment import Deployment, new_deployment_id
from visgate.domain.errors import IdempotencyConflictError
from visgate.domain.records import IdempotencyRecord
from visgate.store.base import DEPLOYMENTS, DocumentBackend, Transaction, run_transaction

IDEMPOTENCY = "idempotency_keys"

IDEMPOTENCY_TTL_S = 24 * 3600  # a key replays (and is kept) for a day
# An in-flight claim is a lease its request renews every third of it: a claim left
# unrenewed this long belongs to a request that died (crash, lost instance), and a retry may
# take the key over instead of meeting 409 until the day is out.
IDEMPOTENCY_IN_FLIGHT_LEASE_S = 60.0


def fingerprint(body: dict[str, Any]) -> str:
    """The request body's identity, whatever its key order or spacing."""
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _record_id(tenant: str, key: str) -> str:
    return hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """What `claim` found. `token` set: this request holds the key and creates
    `deployment_id`. Otherwise `record` is someone else's claim or answer, and `deployment`
    the deployment the key already made when its answer was never stored."""

    token: str | None = None
    deployment_id: str | None = None
    record: IdempotencyRecord | None = None
    deployment: Deployment | None = None


class IdempotencyRepository:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock
        self.claim_lease_s = IDEMPOTENCY_IN_FLIGHT_LEASE_S

    async def _run(self, fn: Callable[[Transaction], Awaitable[Any]]) -> Any:
        """Each transaction here is safe to run again after a commit of unknown outcome
        (it finds its own write, or a claim whose token it knows)."""
        return await run_transaction(self.backend, fn)

    async def claim(self, tenant: str, key: str, fingerprint: str, deployment_id: str) -> Claim:
        """Claim the key for this request to create `deployment_id`, or report who holds it.

        A record whose day is over, or an in-flight claim whose lease ran out and whose
        deployment was never written, is taken over; of requests racing for it exactly one
        wins (the transaction), and the others see the winner's claim."""
        token = secrets.token_hex(16)
        record_id = _record_id(tenant, key)

        async def fn(tx: Transaction) -> Claim:
            now = self.clock()
            doc = await tx.get(IDEMPOTENCY, record_id)
            existing = IdempotencyRecord.model_validate(doc) if doc is not None else None
            if existing is not None and existing.expires_at > now:
                if existing.state == "done":
                    return Claim(record=existing)
                if existing.deployment_id is not None:
                    made = await tx.get(DEPLOYMENTS, existing.deployment_id)
                    if made is not None:
                        return Claim(record=existing, deployment=Deployment.from_doc(made))
                if existing.claim_ends > now:
                    return Claim(record=existing)
            mine = IdempotencyRecord(
                id=record_id,
                tenant=tenant,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=now + IDEMPOTENCY_TTL_S,
                lease_until=now + self.claim_lease_s,
                token=token,
                deployment_id=deployment_id,
                version=existing.version if existing is not None else 0,
            )
            tx.put(IDEMPOTENCY, mine.model_dump(mode="json"))
            return Claim(token=token, deployment_id=deployment_id)

        claim: Claim = await self._run(fn)
        if claim.token is None and claim.record is not None and claim.record.token == token:
            # Our own claim, committed by a try whose answer was lost.
            return Claim(token=token, deployment_id=deployment_id)
        return claim

    async def begin(self, tenant: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Claim the key (None), or return the record someone holds."""
        claim = await self.claim(tenant, key, fingerprint, new_deployment_id())
        return None if claim.token is not None else claim.record

    async def _change(
        self,
        tenant: str,
        key: str,
        token: str,
        change: Callable[[Transaction, IdempotencyRecord], Awaitable[bool]],
    ) -> bool:
        """Apply `change` to the claim only while `token` holds it in flight; False else."""
        record_id = _record_id(tenant, key)

        async def fn(tx: Transaction) -> bool:
            doc = await tx.get(IDEMPOTENCY, record_id)
            if doc is None:
                return False
            record = IdempotencyRecord.model_validate(doc)
            if record.state != "in_flight" or record.token != token:
                return False
            return await change(tx, record)

        return bool(await self._run(fn))

    async def renew(self, tenant: str, key: str, token: str) -> bool:
        """Extend the claim's lease; False once this request no longer holds it."""

        async def change(tx: Transaction, record: IdempotencyRecord) -> bool:
            record.lease_until = self.clock() + self.claim_lease_s
            tx.put(IDEMPOTENCY, record.model_dump(mode="json"))
            return True

        return await self._change(tenant, key, token, change)

    def guard(self, tenant: str, key: str, token: str) -> Callable[[Transaction], Awaitable[None]]:
        """A check for the deployment record's transaction: the claim is still this
        request's. A request taken over (it stalled past its lease) writes nothing."""
        record_id = _record_id(tenant, key)

        async def check(tx: Transaction) -> None:
            doc = await tx.get(IDEMPOTENCY, record_id)
            if doc is None or doc.get("state") != "in_flight" or doc.get("token") != token:
                raise IdempotencyConflictError(
                    "a retry with this Idempotency-Key took this request over; retry to get"
                    " its answer",
                    in_flight=True,
                )
            tx.put(IDEMPOTENCY, doc)  # written, so a takeover racing this write conflicts

        return check

    async def complete(
        self, tenant: str, key: str, status_code: int, response: dict[str, Any], *, token: str
    ) -> bool:
        """Store the answer for replays (24 h from now), only while this request holds the
        claim; False when it does not (a takeover's answer counts)."""

        async def change(tx: Transaction, record: IdempotencyRecord) -> bool:
            record.state, record.status_code, record.response = "done", status_code, response
            record.expires_at = self.clock() + IDEMPOTENCY_TTL_S
            record.lease_until = None
            tx.put(IDEMPOTENCY, record.model_dump(mode="json"))
            return True

        return await self._change(tenant, key, token, change)

    async def abandon(self, tenant: str, key: str, *, token: str) -> bool:
        """The request failed before answering: let a retry with the key run afresh. Only
        this request's own claim goes, and not when its deployment exists after all (a
        retry then answers with it). False when nothing was given back."""

        async def change(tx: Transaction, record: IdempotencyRecord) -> bool:
            if record.deployment_id is not None:
                if await tx.get(DEPLOYMENTS, record.deployment_id) is not None:
                    return False
            tx.delete(IDEMPOTENCY, record.id)
            return True

        return await self._change(tenant, key, token, change)

    async def purge_expired(self) -> int:
        return await self.backend.purge_expired(IDEMPOTENCY, now=self.clock())
