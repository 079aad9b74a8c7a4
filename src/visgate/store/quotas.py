"""Tenant quotas: a usage document of counters per tenant, and one slot document per
deployment that holds a share of it.

The counters are the sum of the held slots, always: every change of a slot (taking it,
releasing it) changes the counters in the same transaction
(`DocumentBackend.transaction`), so no interleaving of requests, processes or crashes
counts a slot twice or not at all. Of two requests racing for the last slot exactly one
passes. A POST under its limit reads and writes two small documents, whatever the tenant's
size; only a refusal reads further (the recount below).

A slot belongs to the POST that took it (its `holder`) until the POST ends: the POST renews
the slot's lease while it runs, and writes its deployment record in a transaction that
checks it still holds the slot (`bind`). From then on the record decides: the slot is held
while the record counts (`Deployment.counts_against_quota`). A refusal recounts before
saying no: it releases, one transaction each, the slots whose record no longer counts and
the record-less slots whose lease ran out (their POST died, or stalled so long that it
could no longer write its record: its `bind` fails and it undoes). A slot is never released
while its record exists and counts, and a record is never written for a slot not held.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from visgate.domain.deployment import Deployment
from visgate.domain.errors import QuotaExceededError, TransientError
from visgate.store.base import DEPLOYMENTS, DocumentBackend, Transaction, run_transaction
from visgate.store.cursors import every, sort_key
from visgate.store.deployments import record_doc

USAGE = "tenant_usage"
SLOTS = "quota_slots"
HELD = "held"

# How long a slot outlives its POST's last renewal. The POST renews every third of it, so
# only a POST that died (or stalled for this long) loses its slot.
SLOT_LEASE_S = 60.0
# Slots the recount's final check reads in one transaction; a tenant holding more is
# beyond any quota this service hands out, and its counters are left as they are.
_RESYNC_LIMIT = 1000

# A check run inside `bind`'s transaction (the idempotency claim still held): it raises to
# refuse the write.
Guard = Callable[[Transaction], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    max_deployments: int
    max_workers: int


class TenantUsage(BaseModel):
    id: str
    tenant: str
    deployments: int = 0
    workers: int = 0
    version: int = 0

    def refusal(self, workers: int, limits: Limits) -> str | None:
        """Why one more deployment of `workers` does not fit, or None."""
        if self.deployments + 1 > limits.max_deployments:
            return (
                f"tenant quota reached: {self.deployments} of {limits.max_deployments}"
                " active deployments in use; delete one or ask the operator for a higher limit"
            )
        if self.workers + workers > limits.max_workers:
            return (
                f"tenant worker quota reached: {self.workers} of {limits.max_workers} workers"
                f" in use, and this deployment asks for {workers}; lower max_workers,"
                " delete a deployment, or ask the operator for a higher limit"
            )
        return None


class Slot(BaseModel):
    id: str  # the deployment's id
    tenant: str
    workers: int
    status: str = HELD
    created_at: float
    sort_key: str
    holder: str = ""  # the POST that took it
    lease_until: float = 0.0  # until then a record-less slot is its POST's
    version: int = 0


def usage_id(tenant: str) -> str:
    """Tenant names may hold any character; document ids may not."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:32]


def _held_by(slot: dict[str, Any], holder: str) -> bool:
    """The slot is held, by the POST `holder`."""
    return slot.get("status") == HELD and slot.get("holder") == holder


class TenantQuotas:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time):
        self.backend = backend
        self.clock = clock
        self.slot_lease_s = SLOT_LEASE_S

    async def usage(self, tenant: str) -> TenantUsage:
        doc = await self.backend.get(USAGE, usage_id(tenant))
        if doc is None:
            return TenantUsage(id=usage_id(tenant), tenant=tenant)
        return TenantUsage.model_validate(doc)

    async def held(self, tenant: str) -> dict[str, int]:
        """The tenant's held slots: deployment id -> its workers."""
        where = {"tenant": tenant, "status": HELD}
        return {d["id"]: int(d["workers"]) async for d in every(self.backend, SLOTS, where)}

    async def _run(self, fn: Callable[[Transaction], Awaitable[Any]]) -> Any:
        """Every quota transaction is safe to run again after a commit of unknown outcome."""
        return await run_transaction(self.backend, fn)

    async def reserve(
        self, tenant: str, deployment_id: str, workers: int, limits: Limits, *, holder: str = ""
    ) -> None:
        """Take a share of the tenant's quota for `deployment_id` on behalf of `holder` (the
        POST), or raise `QuotaExceededError` and hold nothing. The slot and the counters
        change in one transaction, so a slot that exists is counted: a repeat (a retried
        transaction whose commit was lost from view) counts once, never twice or not at all."""
        refusal = await self._run(
            lambda tx: self._take(tx, tenant, deployment_id, workers, limits, holder)
        )
        if refusal is None:
            return
        await self.recount(tenant)
        refusal = await self._run(
            lambda tx: self._take(tx, tenant, deployment_id, workers, limits, holder)
        )
        if refusal is not None:
            raise QuotaExceededError(refusal)

    async def _take(
        self,
        tx: Transaction,
        tenant: str,
        deployment_id: str,
        workers: int,
        limits: Limits,
        holder: str,
    ) -> str | None:
        usage_doc = await tx.get(USAGE, usage_id(tenant))
        slot_doc = await tx.get(SLOTS, deployment_id)
        if slot_doc is not None and slot_doc.get("status") == HELD:
            return None  # taken already, and counted with it
        usage = TenantUsage.model_validate(usage_doc or {"id": usage_id(tenant), "tenant": tenant})
        refusal = usage.refusal(workers, limits)
        if refusal is not None:
            return refusal
        now = self.clock()
        slot = Slot(
            id=deployment_id,
            tenant=tenant,
            workers=workers,
            created_at=now,
            sort_key=sort_key(now, deployment_id),
            holder=holder,
            lease_until=now + self.slot_lease_s,
            version=int((slot_doc or {}).get("version") or 0),
        )
        usage.deployments, usage.workers = usage.deployments + 1, usage.workers + workers
        tx.put(SLOTS, slot.model_dump(mode="json"))
        tx.put(USAGE, usage.model_dump(mode="json"))
        return None

    async def renew(self, deployment_id: str, holder: str) -> bool:
        """Extend the POST's hold on its record-less slot; False once it no longer holds it."""

        async def fn(tx: Transaction) -> bool:
            doc = await tx.get(SLOTS, deployment_id)
            if doc is None or not _held_by(doc, holder):
                return False
            tx.put(SLOTS, {**doc, "lease_until": self.clock() + self.slot_lease_s})
            return True

        return bool(await self._run(fn))

    async def bind(self, dep: Deployment, holder: str, *, guard: Guard | None = None) -> Deployment:
        """Write the deployment's record, only while `holder` still holds its slot (and
        `guard` passes), in one transaction: a POST whose slot was reclaimed cannot write a
        record that nothing counts. A record already there is this POST's own earlier write
        (ids are new per POST) and is returned as it is."""
        doc = record_doc(dep)

        async def fn(tx: Transaction) -> dict[str, Any]:
            existing = await tx.get(DEPLOYMENTS, dep.id)
            if existing is not None:
                return existing
            slot = await tx.get(SLOTS, dep.id)
            if guard is not None:
                await guard(tx)
            if slot is None or not _held_by(slot, holder):
                raise TransientError(
                    "this request stalled until its quota reservation ran out; retry it"
                )
            tx.put(SLOTS, slot)  # written, so a release racing this write conflicts with it
            return tx.insert(DEPLOYMENTS, doc)

        return Deployment.from_doc(await self._run(fn))

    async def undo(self, tenant: str, deployment_id: str, holder: str) -> Deployment | None:
        """Take back a POST that failed: its record if that was written after all (the
        create succeeded: a commit whose answer was lost), else release its slot (when it
        still holds it) and return None. One transaction, so a record written meanwhile
        either shows here or can no longer be written."""

        async def fn(tx: Transaction) -> dict[str, Any] | None:
            record = await tx.get(DEPLOYMENTS, deployment_id)
            if record is not None:
                return record
            slot = await tx.get(SLOTS, deployment_id)
            if slot is not None and _held_by(slot, holder):
                await self._release_in(tx, tenant, slot)
            return None

        record = await self._run(fn)
        return Deployment.from_doc(record) if record is not None else None

    async def release(self, tenant: str, deployment_id: str) -> None:
        """Give the deployment's share back: its record no longer counts (or there is none).
        Nothing to do when it holds none; repeatable. A record that still counts keeps it."""
        await self._run(lambda tx: self._settle(tx, tenant, deployment_id, ignore_lease=True))

    async def recount(self, tenant: str) -> None:
        """Release the tenant's slots that no longer hold anything: the record stopped
        counting, or there is no record and the POST's lease ran out. What the scan finds is
        checked again in each slot's own transaction. Then the counters are checked against
        the held slots in one transaction (a repair for counters written by older versions)."""
        now = self.clock()
        where = {"tenant": tenant, "status": HELD}
        async for doc in every(self.backend, SLOTS, where):
            slot = Slot.model_validate(doc)
            record = await self.backend.get(DEPLOYMENTS, slot.id)
            if record is None and slot.lease_until > now:
                continue  # its POST is still writing the record
            if record is not None and Deployment.from_doc(record).counts_against_quota:
                continue
            await self._run(lambda tx, s=slot: self._settle(tx, tenant, s.id, ignore_lease=False))
        await self._run(lambda tx: self._resync(tx, tenant))

    async def _settle(
        self, tx: Transaction, tenant: str, deployment_id: str, *, ignore_lease: bool
    ) -> None:
        """Release one slot if nothing holds it: its record no longer counts, or it has no
        record and (unless `ignore_lease`) its POST's lease ran out."""
        record = await tx.get(DEPLOYMENTS, deployment_id)
        slot = await tx.get(SLOTS, deployment_id)
        if slot is None or slot.get("status") != HELD:
            return
        if record is not None:
            if Deployment.from_doc(record).counts_against_quota:
                return
        elif not ignore_lease and float(slot.get("lease_until") or 0.0) > self.clock():
            return
        await self._release_in(tx, tenant, slot)

    async def _release_in(self, tx: Transaction, tenant: str, slot: dict[str, Any]) -> None:
        """Drop the slot and take it off the counters, within the caller's transaction (after
        its other reads: this reads the counters, then writes)."""
        doc = await tx.get(USAGE, usage_id(tenant))
        usage = TenantUsage.model_validate(doc or {"id": usage_id(tenant), "tenant": tenant})
        usage.deployments = max(0, usage.deployments - 1)
        usage.workers = max(0, usage.workers - int(slot.get("workers") or 0))
        tx.delete(SLOTS, str(slot["id"]))
        tx.put(USAGE, usage.model_dump(mode="json"))

    async def _resync(self, tx: Transaction, tenant: str) -> None:
        doc = await tx.get(USAGE, usage_id(tenant))
        slots = await tx.query(SLOTS, where={"tenant": tenant, "status": HELD}, limit=_RESYNC_LIMIT)
        if doc is None or len(slots) >= _RESYNC_LIMIT:
            return
        usage = TenantUsage.model_validate(doc)
        counted = (len(slots), sum(int(s.get("workers") or 0) for s in slots))
        if counted != (usage.deployments, usage.workers):
            usage.deployments, usage.workers = counted
            tx.put(USAGE, usage.model_dump(mode="json"))
