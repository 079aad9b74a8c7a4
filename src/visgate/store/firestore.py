"""Firestore backend: one collection per kind, Google's async client.

Writes that depend on what is stored (versions, leases, counters) are optimistic: read,
decide, write on the condition that nothing changed since the read (`last_update_time`),
and decide again when something did. A change of several documents together
(`transaction`) commits them as one atomic batch under the same conditions
(firestore_tx.py). No document lock is held, so a slow or cancelled caller never blocks the
others, which Firestore's own transactions (pessimistic locks) would. Composite indexes the
queries need are in `firestore.indexes.json` at the repository root. Expiring records carry a
Timestamp twin of `expires_at` for Firestore's TTL policies, and are purged in pages
(firestore_expiry.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from visgate.domain.errors import (
    ConflictError,
    LeaseLostError,
    StaleWriteError,
    StoreAccessError,
    StoreUnavailableError,
)
from visgate.domain.status import Status
from visgate.store.base import LEASE_FIELDS, Transaction, lease_fields
from visgate.store.firestore_expiry import plain, purge, with_ttl
from visgate.store.firestore_tx import CHANGED, Contended, FirestoreTx

T = TypeVar("T")

# Worth another try: the service, a lock or a quota is briefly unavailable. `ServerError`
# covers ServiceUnavailable, DeadlineExceeded, InternalServerError and Unknown.
_TRANSIENT = (gexc.ServerError, gexc.Aborted, gexc.TooManyRequests, gexc.RetryError)


def _access_error(exc: gexc.GoogleAPICallError, project: str) -> StoreAccessError:
    """A refusal a retry will not fix, told as what the operator has to change."""
    detail = exc.message or type(exc).__name__
    if isinstance(exc, gexc.PermissionDenied):
        hint = (
            f"the service account needs Firestore access on project {project} "
            "(role roles/datastore.user)"
        )
    elif isinstance(exc, gexc.Unauthenticated):
        hint = "check the service account / application default credentials"
    elif isinstance(exc, gexc.NotFound):
        hint = f"create the Firestore database (Native mode) in project {project}"
    elif isinstance(exc, gexc.FailedPrecondition):
        hint = "deploy the indexes in firestore.indexes.json, or check the database mode"
    else:
        hint = "the request was refused; see the message"
    return StoreAccessError(f"firestore refused the call ({type(exc).__name__}: {detail}): {hint}")


# Pages of due records read per claim while looking past leased ones (bounded: a claim
# that finds nothing free now finds it on the next poll).
_CLAIM_PAGES = 5


class FirestoreBackend:
    def __init__(
        self,
        *,
        project: str,
        prefix: str = "",
        client: firestore.AsyncClient | None = None,
        transaction_attempts: int = 20,
    ) -> None:
        self._client = client or firestore.AsyncClient(project=project)
        self._project = project
        self._prefix = prefix
        self._attempts = transaction_attempts

    def _collection(self, kind: str) -> Any:
        return self._client.collection(f"{self._prefix}{kind}")

    @staticmethod
    def _to_store(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc` as written: with its TTL field where `kind` expires (firestore_expiry.py).
        Here for firestore_tx.py, which cannot import firestore_expiry.py (that module
        imports it); this module calls `with_ttl` and `plain` directly."""
        return with_ttl(kind, doc)

    @staticmethod
    def _from_store(snap: Any) -> dict[str, Any]:
        """A stored document as read: without the TTL field, as on every other backend."""
        return plain(snap)

    async def _guard(
        self,
        awaitable: Awaitable[T],
        *,
        passthrough: tuple[type[gexc.GoogleAPICallError], ...] = (),
    ) -> T:
        """Google API errors as the store's own: transient ones `StoreUnavailableError`,
        every other refusal `StoreAccessError` (never a bare 500). `passthrough` names the
        answers the caller handles itself (AlreadyExists on create, a failed precondition)."""
        try:
            return await awaitable
        except passthrough:
            raise
        except _TRANSIENT as exc:
            raise StoreUnavailableError(f"firestore: {exc.message}") from exc
        except gexc.GoogleAPICallError as exc:
            raise _access_error(exc, self._project) from exc
        except ValueError as exc:  # the client's "failed to commit after N attempts"
            if "attempt" in str(exc).lower():
                raise StoreUnavailableError(f"firestore: {exc}") from exc
            raise

    async def transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """`fn` as one optimistic transaction (`FirestoreTx`): run, commit its writes in one
        atomic batch conditioned on what it read, and run it again (after a little jitter)
        when another writer got there first."""

        async def attempt() -> T:
            tx = FirestoreTx(self)
            result = await fn(tx)
            await tx.commit()
            return result

        try:
            async for retry in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_random(0, 0.02),
                retry=retry_if_exception_type(Contended),
                reraise=True,
            ):
                with retry:
                    return await attempt()
        except Contended:
            raise StoreUnavailableError(
                f"firestore: a transaction kept meeting other writers over {self._attempts} tries"
            ) from None
        raise AssertionError("unreachable")

    async def _compare_and_set(
        self, ref: Any, decide: Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, T]]
    ) -> T:
        """Read, decide, write only if nobody wrote in between (`last_update_time`
        precondition). Optimistic: no document lock is held, so a slow or cancelled caller
        never blocks the others, which transactions (pessimistic on Firestore) would."""
        for _ in range(self._attempts):
            snap = await self._guard(ref.get())
            if not snap.exists:
                fields, result = decide(None)
                if fields is not None:
                    raise StaleWriteError(f"{ref.id} no longer exists")
                return result
            fields, result = decide(plain(snap))
            if fields is None:
                return result
            option = self._client.write_option(last_update_time=snap.update_time)
            try:
                await self._guard(ref.update(fields, option=option), passthrough=CHANGED)
            except CHANGED:
                await asyncio.sleep(random.uniform(0, 0.02))  # noqa: S311 (jitter)
                continue  # written (or deleted) since we read it: decide again
            return result
        raise StoreUnavailableError(
            f"firestore: {ref.id} kept changing under {self._attempts} tries"
        )

    async def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        new = {**doc, "version": 1}
        try:
            await self._guard(
                self._collection(kind).document(new["id"]).create(with_ttl(kind, new)),
                passthrough=(gexc.AlreadyExists,),
            )
        except gexc.AlreadyExists as exc:
            raise ConflictError(f"{kind} {new['id']} already exists") from exc
        return new

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        snap = await self._guard(self._collection(kind).document(doc_id).get())
        return plain(snap) if snap.exists else None

    async def replace(
        self,
        kind: str,
        doc: dict[str, Any],
        *,
        expected_version: int,
        lease_token: str | None = None,
    ) -> dict[str, Any]:
        ref = self._collection(kind).document(doc["id"])

        def decide(current: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
            if current is None:
                raise StaleWriteError(f"{kind} {doc['id']} no longer exists")
            if lease_token is not None and current.get("lease_token") != lease_token:
                raise LeaseLostError(f"lease on {kind} {doc['id']} was lost")
            if current.get("version") != expected_version:
                raise StaleWriteError(f"{kind} {doc['id']} changed since it was read")
            fields = {
                k: v for k, v in doc.items() if lease_token is not None or k not in LEASE_FIELDS
            }
            fields["version"] = expected_version + 1
            return with_ttl(kind, fields), {**current, **fields}

        return await self._compare_and_set(ref, decide)

    async def delete(self, kind: str, doc_id: str) -> None:
        await self._guard(self._collection(kind).document(doc_id).delete())

    async def query(
        self, kind: str, *, where: dict[str, Any], limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        q = self._collection(kind)
        for name, value in where.items():
            q = q.where(filter=FieldFilter(name, "==", value))
        q = q.order_by("sort_key", direction=firestore.Query.DESCENDING)
        if after is not None:
            q = q.start_after({"sort_key": after})
        snaps = await self._guard(q.limit(limit).get())
        return [plain(s) for s in snaps]

    async def claim_due(
        self, kind: str, *, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[dict[str, Any]]:
        expires = now + lease_seconds
        refs = await self._claimable(kind, now=now, wanted=limit * 2)
        random.shuffle(refs)  # claimants racing for the same rows collide less

        def decide(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, Any]:
            if doc is None:
                return None, None
            due, lease_end = doc.get("due_at"), doc.get("lease_expires_at")
            if due is None or due > now or (lease_end is not None and lease_end > now):
                return None, None
            fields = {**lease_fields(doc["id"], owner, expires), "version": doc["version"] + 1}
            return fields, {**doc, **fields}

        async def claim_one(ref: Any) -> dict[str, Any] | None:
            try:
                return await self._compare_and_set(ref, decide)  # type: ignore[no-any-return]
            except (StoreUnavailableError, StaleWriteError):
                return None  # lost the race for this one; someone else has it

        claimed: list[dict[str, Any]] = []
        while refs and len(claimed) < limit:
            batch, refs = refs[: limit - len(claimed)], refs[limit - len(claimed) :]
            results = await asyncio.gather(*(claim_one(ref) for ref in batch))
            claimed += [doc for doc in results if doc is not None]
        return claimed

    async def _claimable(self, kind: str, *, now: float, wanted: int) -> list[Any]:
        """Due records nobody holds, oldest first. Firestore cannot filter on a second range
        field, so leased ones (made due at once by a DELETE or a callback while a loop holds
        them) are skipped here, paging on so that a run of them cannot hide the rest."""
        query = (
            self._collection(kind)
            .where(filter=FieldFilter("due_at", "<=", now))
            .order_by("due_at")
            .limit(wanted)
        )
        refs: list[Any] = []
        last = None
        for _ in range(_CLAIM_PAGES):
            page = await self._guard((query.start_after(last) if last else query).get())
            for snap in page:
                lease_end = plain(snap).get("lease_expires_at")
                if lease_end is None or lease_end <= now:
                    refs.append(snap.reference)
            if len(page) < wanted or len(refs) >= wanted:
                break
            last = page[-1]
        return refs

    async def extend_lease(
        self, kind: str, doc_id: str, *, lease_token: str, expires_at: float
    ) -> bool:
        ref = self._collection(kind).document(doc_id)

        def decide(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            if doc is None or doc.get("lease_token") != lease_token:
                return None, False
            due = doc.get("due_at")
            return {"lease_expires_at": expires_at, "due_at": max(due or 0.0, expires_at)}, True

        try:
            return await self._compare_and_set(ref, decide)
        except StaleWriteError:
            return False

    async def increment(self, kind: str, doc_id: str, *, now: float, expires_at: float) -> int:
        """One atomic server-side increment, one round trip: the commit answers with the value
        the `Increment` produced (`WriteResult.transform_results`), so the count is exact and
        no request waits on a document lock or a read. A counter is one document per
        (`doc_id`, `expires_at`): the next window's `expires_at` starts a fresh one at 1, and
        `purge_expired` or the TTL policy on its `expire_at` removes old ones."""
        ref = self._collection(kind).document(f"{doc_id}@{int(expires_at)}")
        fields = {"id": ref.id, "expires_at": expires_at, "version": firestore.Increment(1)}
        result = await self._guard(ref.set(with_ttl(kind, fields), merge=True))
        return int(result.transform_results[0].integer_value)

    async def count_by_status(self, kind: str) -> dict[str, int]:
        async def count(status: Status) -> tuple[str, int]:
            result = await self._guard(
                self._collection(kind)
                .where(filter=FieldFilter("status", "==", status.value))
                .count()
                .get()
            )
            return status.value, int(result[0][0].value)

        pairs = await asyncio.gather(*(count(s) for s in Status))
        return {name: n for name, n in pairs if n}

    async def purge_expired(self, kind: str, *, now: float) -> int:
        """Everything expired, in batched pages up to a bound per run (firestore_expiry.py)."""
        return await purge(self, kind, now=now)

    async def ping(self) -> None:
        await self._guard(self._collection("health").document("ping").get(timeout=5.0))

    async def aclose(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result
