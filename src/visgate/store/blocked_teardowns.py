"""`BlockedTeardowns`: one small document per deployment whose teardown the provider keeps
refusing (a revoked key, a refused delete), written when it becomes blocked and removed
when the teardown goes through. The operator's `visgate blocked` and the
`visgate_teardowns_blocked` gauge read these few documents instead of scanning every
failed or deleting record."""

from __future__ import annotations

from pydantic import BaseModel

from visgate.domain.deployment import Deployment
from visgate.domain.errors import ConflictError
from visgate.store.base import DocumentBackend
from visgate.store.cursors import every, sort_key

BLOCKED_TEARDOWNS = "blocked_teardowns"


class BlockedTeardown(BaseModel):
    id: str  # the deployment's id
    tenant: str
    deployment_status: str
    since: float
    account: str
    left: list[str]
    error_type: str
    error_message: str


class BlockedTeardowns:
    def __init__(self, backend: DocumentBackend) -> None:
        self.backend = backend

    async def mark(self, dep: Deployment) -> None:
        """Note `dep` as blocked (it carries `teardown_blocked`); a repeat keeps the first."""
        blocked = dep.teardown_blocked
        if blocked is None:
            return
        entry = BlockedTeardown(
            id=dep.id,
            tenant=dep.tenant,
            deployment_status=dep.status.value,
            since=blocked.since,
            account=blocked.account,
            left=blocked.left,
            error_type=blocked.error.type,
            error_message=blocked.error.message,
        )
        doc = {**entry.model_dump(mode="json"), "sort_key": sort_key(entry.since, entry.id)}
        try:
            await self.backend.insert(BLOCKED_TEARDOWNS, doc)
        except ConflictError:
            return

    async def clear(self, deployment_id: str) -> None:
        await self.backend.delete(BLOCKED_TEARDOWNS, deployment_id)

    async def all(self) -> list[BlockedTeardown]:
        """Every blocked teardown, newest first."""
        return [
            BlockedTeardown.model_validate(doc)
            async for doc in every(self.backend, BLOCKED_TEARDOWNS, {})
        ]

    async def count(self) -> int:
        """How many there are (a few documents, read whole: no count query needed)."""
        return len(await self.all())
