"""Tenant quotas: a usage document of counters per tenant, and one slot document per
deployment that holds a share of it.

A POST writes its slot (`held`), then adds itself to the tenant's counters in one atomic
step that refuses when a counter would pass its limit (`DocumentBackend.add_within`: one
`UPDATE ... WHERE <sums within limits>` on SQLite, a write preconditioned on the read on
Firestore), so of two requests racing for the last slot exactly one passes, across
processes, with no lock held across the request. The documents stay small whatever the
tenant's size: a POST costs two small writes at any scale.

Releasing marks the slot `released` (a version-checked write, so two releases cannot both
count) and then takes it off the counters. A crash between two of these writes leaves the
counters high, never low (a tenant may be refused once too often, never let past its
quota); a refusal therefore recounts the held slots against their deployments' records
once, dropping slots whose deployment no longer counts or was never written, before
saying no.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from visgate.domain.deployment import Deployment
from visgate.domain.errors import ConflictError, QuotaExceededError, StaleWriteError
from visgate.store.base import DEPLOYMENTS, DocumentBackend
from visgate.store.cursors import every, sort_key

USAGE = "tenant_usage"
SLOTS = "quota_slots"
HELD, RELEASED = "held", "released"

# A slot younger than this without a record may belong to a POST still writing it.
_RESERVATION_GRACE_S = 60.0


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
    version: int = 0


def usage_id(tenant: str) -> str:
    """Tenant names may hold any character; document ids may not."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:32]


class TenantQuotas:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time):
        self.backend = backend
        self.clock = clock

    async def usage(self, tenant: str) -> TenantUsage:
        doc = await self.backend.get(USAGE, usage_id(tenant))
        if doc is None:
            return TenantUsage(id=usage_id(tenant), tenant=tenant)
        return TenantUsage.model_validate(doc)

    async def held(self, tenant: str) -> dict[str, int]:
        """The tenant's held slots: deployment id -> its workers."""
        return {s.id: s.workers for s in await self._held_slots(tenant)}

    async def _held_slots(self, tenant: str) -> list[Slot]:
        where = {"tenant": tenant, "status": HELD}
        return [Slot.model_validate(d) async for d in every(self.backend, SLOTS, where)]

    async def _add(
        self, tenant: str, deployments: int, workers: int, limits: Limits | None = None
    ) -> bool:
        """One atomic change of the counters; False when `limits` would be passed."""
        caps = (
            {"deployments": limits.max_deployments, "workers": limits.max_workers} if limits else {}
        )
        written = await self.backend.add_within(
            USAGE,
            usage_id(tenant),
            deltas={"deployments": deployments, "workers": workers},
            limits=caps,
            base={"tenant": tenant},
        )
        return written is not None

    async def reserve(self, tenant: str, deployment_id: str, workers: int, limits: Limits) -> None:
        """Take a share of the tenant's quota for `deployment_id`, or raise
        `QuotaExceededError` (and hold nothing). A repeat holds nothing more."""
        now = self.clock()
        slot = Slot(
            id=deployment_id,
            tenant=tenant,
            workers=workers,
            created_at=now,
            sort_key=sort_key(now, deployment_id),
        )
        try:
            await self.backend.insert(SLOTS, slot.model_dump(mode="json"))
        except ConflictError:
            return
        try:
            await self._count_in(slot, limits)
        except BaseException:
            await self.backend.delete(SLOTS, deployment_id)
            raise

    async def _count_in(self, slot: Slot, limits: Limits) -> None:
        if await self._add(slot.tenant, 1, slot.workers, limits):
            return
        usage = await self.usage(slot.tenant)
        if await self._recount(usage, own=slot.id) and await self._add(
            slot.tenant, 1, slot.workers, limits
        ):
            return
        usage = await self.usage(slot.tenant)
        raise QuotaExceededError(usage.refusal(slot.workers, limits) or "tenant quota reached")

    async def release(self, tenant: str, deployment_id: str) -> None:
        """Give the deployment's share back; nothing to do when it holds none. Repeatable."""
        doc = await self.backend.get(SLOTS, deployment_id)
        if doc is None or doc.get("status") != HELD:
            return
        slot = Slot.model_validate(doc)
        try:
            await self._mark_released(slot)
        except StaleWriteError:
            return  # released (or removed) by someone else meanwhile
        await self._add(tenant, -1, -slot.workers)
        await self.backend.delete(SLOTS, deployment_id)

    async def _mark_released(self, slot: Slot) -> None:
        doc = {**slot.model_dump(mode="json"), "status": RELEASED}
        await self.backend.replace(SLOTS, doc, expected_version=slot.version)

    async def _recount(self, usage: TenantUsage, *, own: str) -> bool:
        """Counters from the held slots, after releasing the slots whose deployment no
        longer counts (or got no record within the grace period). `own`, the slot of the
        request recounting, is held but not counted yet, so it is left out. True when the
        counters were lowered.

        Slots of requests still in flight are counted too: the counters may read high for
        a moment during a burst at the limit (one refusal too many, never one admission too
        many), and the next refusal recounts them exact."""
        now = self.clock()
        deployments = workers = 0
        for slot in await self._held_slots(usage.tenant):
            if slot.id == own:
                continue
            doc = await self.backend.get(DEPLOYMENTS, slot.id)
            young = now - slot.created_at <= _RESERVATION_GRACE_S
            if (doc is None and not young) or (
                doc is not None and not Deployment.from_doc(doc).counts_against_quota
            ):
                try:
                    await self._mark_released(slot)
                except StaleWriteError:
                    pass
                await self.backend.delete(SLOTS, slot.id)
                continue
            deployments += 1
            workers += slot.workers
        lowered = deployments < usage.deployments or workers < usage.workers
        if usage.version == 0 or (deployments, workers) == (usage.deployments, usage.workers):
            return False
        usage.deployments, usage.workers = deployments, workers
        try:
            await self.backend.replace(
                USAGE, usage.model_dump(mode="json"), expected_version=usage.version
            )
        except StaleWriteError:
            pass  # changed meanwhile: the caller tries once more with what is there
        return lowered
