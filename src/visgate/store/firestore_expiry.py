"""Firestore's side of expiring records: the TTL field and the purge.

Idempotency records, request counters and console sessions expire: their `expires_at` (unix seconds, a float
the queries compare) says when. Firestore's TTL policies delete a document once a chosen
field holds a *Timestamp* in the past, and ignore a document whose field holds anything
else, so every document of an expiring kind also carries `expire_at`, the same instant as a
timezone-aware `datetime`; deploy.sh enables the policy on that field for each kind here.
The field is the backend's own: it is added on every write and dropped on every read, so the
repositories see the same documents as on SQLite. A deployment's `expires_at` is its ttl,
when its endpoint is torn down, not when its record goes: deployments carry no `expire_at`.

TTL deletes within about a day of expiry; `purge` removes what has expired at once, in pages,
so that a busy install (one counter per API key per minute) never outgrows it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.base_query import FieldFilter

from visgate.store.console_sessions import CONSOLE_SESSIONS
from visgate.store.firestore_tx import CHANGED
from visgate.store.idempotency import IDEMPOTENCY
from visgate.store.rate_limits import RATE_LIMITS

if TYPE_CHECKING:
    from visgate.store.firestore import FirestoreBackend

TTL_FIELD = "expire_at"
# The kinds whose `expires_at` is when the document itself may go; deploy.sh enables a TTL
# policy on `TTL_FIELD` for each (tests/integration/deploy checks the two lists agree).
EXPIRING_KINDS = frozenset({IDEMPOTENCY, RATE_LIMITS, CONSOLE_SESSIONS})

PURGE_PAGE = 500  # the most writes one Firestore batch commit takes
# Pages one purge run deletes at most (25,000 documents per kind), so one run cannot hold the
# housekeeping loop for long; what is left goes in the next run, or by the TTL policy.
PURGE_PAGES = 50


def with_ttl(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as Firestore stores it: with `expire_at` beside `expires_at` where the kind
    expires, so the TTL policy can delete it."""
    expires_at = doc.get("expires_at")
    if kind not in EXPIRING_KINDS or not isinstance(expires_at, int | float):
        return doc
    return {**doc, TTL_FIELD: datetime.fromtimestamp(expires_at, tz=UTC)}


def plain(snap: Any) -> dict[str, Any]:
    """A stored document as the repositories know it: without the backend's `expire_at`."""
    doc: dict[str, Any] = snap.to_dict() or {}
    doc.pop(TTL_FIELD, None)
    return doc


async def purge(backend: FirestoreBackend, kind: str, *, now: float) -> int:
    """Delete the documents of `kind` whose `expires_at` is before `now`, a page of up to
    `PURGE_PAGE` per batch, until none is left or `PURGE_PAGES` pages went. Returns how many
    were deleted."""
    query = (
        backend._collection(kind)
        .where(filter=FieldFilter("expires_at", "<", now))
        .select(["expires_at"])  # the reference and update time are all a delete needs
        .limit(PURGE_PAGE)
    )
    purged = 0
    for _ in range(PURGE_PAGES):
        page = await backend._guard(query.get())
        if page:
            purged += await _delete_page(backend, page)
        if len(page) < PURGE_PAGE:
            break
    return purged


async def _delete_page(backend: FirestoreBackend, page: list[Any]) -> int:
    """Delete one page in one batch, each document on the condition that it is as read: an
    expired idempotency key claimed afresh since the query is rewritten, and stays. Such a
    change fails the whole batch, so that page goes again one document at a time."""
    client = backend._client
    batch = client.batch()
    for snap in page:
        batch.delete(snap.reference, option=client.write_option(last_update_time=snap.update_time))
    try:
        await backend._guard(batch.commit(), passthrough=CHANGED)
    except CHANGED:
        deleted = await asyncio.gather(*(_delete_one(backend, snap) for snap in page))
        return sum(deleted)
    return len(page)


async def _delete_one(backend: FirestoreBackend, snap: Any) -> int:
    """1 when the document was deleted as read; 0 when it changed or went meanwhile."""
    option = backend._client.write_option(last_update_time=snap.update_time)
    try:
        await backend._guard(snap.reference.delete(option=option), passthrough=CHANGED)
    except CHANGED:
        return 0
    return 1
