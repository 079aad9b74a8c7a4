"""`DocumentBackend`: the small storage protocol both databases implement.

Records are JSON documents grouped by kind. A few fields are indexed for the queries the
service makes: `tenant`, `status`, `sort_key` (listing order), `due_at` (reconciler work),
`expires_at` (counters, idempotency). Rules every backend keeps:

- `version` is the optimistic-concurrency counter: `insert` sets 1, `replace` succeeds only
  if the stored version equals `expected_version` and bumps it, else `StaleWriteError`.
- Leases: `claim_due` hands each due, unleased document to exactly ONE caller, setting
  `lease_owner`, `lease_token` (unique per claim), `lease_expires_at` and moving `due_at` to
  the lease's end, so a holder that dies makes the record due again when its lease runs out.
- `replace(..., lease_token=T)` is the holder's write: it also fails with `LeaseLostError`
  when the stored token is not T, and it writes the lease fields the caller passes (so a
  holder releases by sending them cleared). Without a token, lease fields are left as stored.
- `extend_lease` moves a held lease's end without bumping `version`.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol, runtime_checkable

LEASE_FIELDS = ("lease_owner", "lease_token", "lease_expires_at")
DEPLOYMENTS = "deployments"  # the kind of deployment records


@runtime_checkable
class DocumentBackend(Protocol):
    async def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a new document (`doc["id"]` required); `ConflictError` if the id exists."""
        ...

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...

    async def replace(
        self,
        kind: str,
        doc: dict[str, Any],
        *,
        expected_version: int,
        lease_token: str | None = None,
    ) -> dict[str, Any]:
        """Write `doc` over the stored one; returns it with the new version."""
        ...

    async def delete(self, kind: str, doc_id: str) -> None: ...

    async def query(
        self,
        kind: str,
        *,
        where: dict[str, Any],
        limit: int,
        after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Documents matching every `where` equality, by `sort_key` descending, after a cursor.
        `where` may name `tenant`, `status` and `name`."""
        ...

    async def claim_due(
        self, kind: str, *, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[dict[str, Any]]: ...

    async def extend_lease(
        self, kind: str, doc_id: str, *, lease_token: str, expires_at: float
    ) -> bool:
        """False when the lease is no longer held by that token."""
        ...

    async def increment(self, kind: str, doc_id: str, *, now: float, expires_at: float) -> int:
        """Add one to a counter and return its new value. Once `expires_at` has passed, the
        next call (carrying the next window's `expires_at`) starts again at 1."""
        ...

    async def add_within(
        self,
        kind: str,
        doc_id: str,
        *,
        deltas: dict[str, int],
        limits: dict[str, int],
        base: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Add `deltas` to integer fields of one document in one atomic step, only if every
        field named in `limits` stays at or below its limit; a result below 0 is stored as 0.
        A missing document starts as `base` with the fields at 0. Returns the document as
        written (its version bumped), or None when a limit would be passed (nothing is
        written). A quota check that two racing callers can never both pass."""
        ...

    async def count_by_status(self, kind: str) -> dict[str, int]: ...

    async def purge_expired(self, kind: str, *, now: float) -> int:
        """Delete documents whose `expires_at` has passed (counters, idempotency keys)."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailableError` if the database does not answer."""
        ...

    async def aclose(self) -> None: ...


def lease_fields(doc_id: str, owner: str, until: float) -> dict[str, Any]:
    """The fields a claim writes: `owner` holds the document until `until`, under a token
    unique to this claim, and the document comes due again when the lease runs out.
    (SQLite's `claim_due` writes the same in SQL.)"""
    return {
        "lease_owner": owner,
        "lease_token": f"{secrets.token_hex(8)}:{doc_id}",
        "lease_expires_at": until,
        "due_at": until,
    }


async def hold_lease(
    backend: DocumentBackend, kind: str, doc_id: str, lease_token: str | None, *, until: float
) -> bool:
    """Extend a claimed document's lease to `until`; False when it is no longer held (or
    was never claimed: no token), so the caller stops and drops its result."""
    if lease_token is None:
        return False
    return await backend.extend_lease(kind, doc_id, lease_token=lease_token, expires_at=until)
