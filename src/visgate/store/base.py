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
- `transaction(fn)` runs `fn`'s reads and writes of several documents as one atomic step:
  no other write lands between them, and its writes apply all together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from visgate.domain.errors import StoreUnavailableError, VisgateError

T = TypeVar("T")

LEASE_FIELDS = ("lease_owner", "lease_token", "lease_expires_at")
DEPLOYMENTS = "deployments"  # the kind of deployment records


class Transaction(Protocol):
    """What a `DocumentBackend.transaction` function reads and writes through. Reads come
    first, then writes; the writes take effect together when the function returns, or not
    at all when it raises. The commit fails (and the function runs again) when a document it
    writes changed since it was read; a document only read is checked on SQLite (one lock)
    but not on Firestore (optimistic), so a function writes every document its decision
    rests on, or one that every writer of it also writes."""

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...

    async def query(self, kind: str, *, where: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """As `DocumentBackend.query`, read within the transaction."""
        ...

    def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A new document at version 1; `ConflictError` (here or from the transaction) when
        the id exists."""
        ...

    def put(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Write `doc` whole, new or over the stored one, at `doc["version"] + 1` (`doc` as
        read in this transaction, or version 0 for a new one); returns it as written."""
        ...

    def delete(self, kind: str, doc_id: str) -> None: ...


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

    async def count_by_status(self, kind: str) -> dict[str, int]: ...

    async def purge_expired(self, kind: str, *, now: float) -> int:
        """Delete documents whose `expires_at` has passed (counters, idempotency keys)."""
        ...

    async def transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run `fn` as one atomic transaction and return what it returns. `fn` changes
        nothing but through its `Transaction`, since it may run more than once (Firestore
        runs it again when another writer got in first), and awaits nothing but the
        transaction's reads (SQLite runs it within one `BEGIN IMMEDIATE`, without yielding
        to the event loop). A commit whose outcome is unknown (a timeout) raises
        `StoreUnavailableError`: the caller runs it again or reads back, never guesses."""
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


async def run_transaction(
    backend: DocumentBackend, fn: Callable[[Transaction], Awaitable[T]], *, tries: int = 3
) -> T:
    """`backend.transaction(fn)`, run again after a commit of unknown outcome
    (`StoreUnavailableError`). For functions that are safe to repeat: a second run finds
    what the first wrote and changes nothing more (the quota and idempotency ones are)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(tries),
        retry=retry_if_exception_type(StoreUnavailableError),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await backend.transaction(fn)
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def renewing(renew: Callable[[], Awaitable[object]], every: float) -> AsyncIterator[None]:
    """Keep a lease for as long as the body runs: `renew` every `every` seconds from a task
    that ends with the body. The lease is longer than three periods, so one failed renewal
    (a store hiccup) is made good by the next; a process that dies stops renewing, and what
    it held comes free when its lease runs out."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(VisgateError):
                await renew()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])  # its own cancellation stays inside; ours is not swallowed
