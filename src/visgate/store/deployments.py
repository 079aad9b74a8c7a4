"""`DeploymentRepository`: deployment records, the same over every backend.

Every write of a deployment goes through `save`, which checks the status move against the
transition table (domain/status.py) and the optimistic version, so an illegal move raises
and a concurrent change is never silently overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from visgate.domain.deployment import Deployment
from visgate.domain.errors import DeploymentNotFoundError, StaleWriteError
from visgate.domain.status import Status, check_transition
from visgate.store.base import DEPLOYMENTS, DocumentBackend, hold_lease
from visgate.store.cursors import decode_cursor, encode_cursor, sort_key


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Deployment]
    next_cursor: str | None


def record_doc(dep: Deployment) -> dict[str, Any]:
    """The record as stored: its fields and the `sort_key` that places it in listings."""
    return {**dep.to_doc(), "sort_key": sort_key(dep.created_at, dep.id)}


class DeploymentRepository:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    async def create(self, dep: Deployment) -> Deployment:
        stored = await self.backend.insert(DEPLOYMENTS, record_doc(dep))
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
        for current, new in pairwise(dep.status_path()):
            check_transition(current, new)
        stored = await self.backend.replace(
            DEPLOYMENTS, record_doc(dep), expected_version=dep.version, lease_token=lease_token
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
        """Keep holding `dep` for `lease_seconds` from now; False when its lease was lost."""
        return await hold_lease(
            self.backend, DEPLOYMENTS, dep.id, dep.lease_token, until=self.clock() + lease_seconds
        )

    async def count_by_status(self) -> dict[str, int]:
        return await self.backend.count_by_status(DEPLOYMENTS)
